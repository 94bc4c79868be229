"""Training losses of MMDG++ (METHOD.md §3): fused cross entropy and the per-modality ADP losses."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def adp_targets(labels: torch.Tensor, domains: torch.Tensor, slots: int, live_slot: int) -> torch.Tensor:
    """Prompt-slot target per sample: the shared live slot for live samples, else the spoof slot of
    the sample's source domain (slots other than ``live_slot``, in order: 0, 2, 3, 4 for S=5, live 1)."""
    spoof_slots = torch.tensor([s for s in range(slots) if s != live_slot], device=labels.device)
    if bool((domains < 0).any()) or bool((domains >= spoof_slots.numel()).any()):
        raise ValueError(f"domains: expected source-domain indices in 0..{spoof_slots.numel() - 1}, got {domains.tolist()}")
    return torch.where(labels == 1, torch.full_like(labels, live_slot), spoof_slots[domains])


def adp_losses(
    features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor, labels: torch.Tensor,
    domains: torch.Tensor, mask: torch.Tensor, live_slot: int,
) -> torch.Tensor:
    """Per-modality 5-way cross entropy over logit_scale·cos(v_m, t_{m,s}) (METHOD.md §3).

    Args:
        features: (B, 3, E) L2-normalised modality features.
        text_features: (3, S, E) L2-normalised slot features.
        logit_scale: scalar temperature.
        labels: (B,) 1 = live, 0 = attack.
        domains: (B,) source-domain index of each sample.
        mask: (B, 3) presence; samples missing modality m are excluded from L_m.
        live_slot: index of the shared live slot.

    Returns:
        (3,) losses; a modality absent from the whole batch has loss 0.
    """
    targets = adp_targets(labels, domains, text_features.shape[1], live_slot)
    logits = logit_scale * torch.einsum("bme,mse->bms", features, text_features)  # (B, 3, S)
    per_sample = F.cross_entropy(logits.permute(0, 2, 1), targets[:, None].expand(-1, 3), reduction="none")  # (B, 3)
    weights = mask.to(per_sample.dtype)
    return (per_sample * weights).sum(0) / weights.sum(0).clamp_min(1.0)


def modality_certainty(certainty: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ReGrad's c_m: mean over the present samples of the model's certainty (detached), 0 if none."""
    weights = mask.to(certainty.dtype)
    return ((certainty.detach() * weights).sum(0) / weights.sum(0).clamp_min(1.0))



def symmetric_prompt_losses(
    features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor, labels: torch.Tensor,
    mask: torch.Tensor, live_slot: int,
) -> torch.Tensor:
    """The ablation without asymmetric domain prompts: per modality, a 2-way cross entropy between the
    live slot and one spoof slot shared by every domain (the first non-live slot); masked as ``adp_losses``."""
    spoof_slot = 0 if live_slot != 0 else 1
    pair = text_features[:, [spoof_slot, live_slot]]  # (3, 2, E): index 1 = live
    return adp_losses(features, pair, logit_scale, labels, torch.zeros_like(labels), mask, live_slot=1)
