"""ReGrad: rebalanced modality gradient modulation (METHOD.md §4), vectorised.

Per trainable tensor θ owned by modality m, with per-modality gradients g_k and the fused g_f:
  same(a, b) = (a·b/|b|²)·b if a·b > 0 else a − (a·b/|b|²)·b   (dot products over the tensor)
  m fast: Δ = c_m·same(g_m, s) + s, with s = Σ_{k≠m} g_k
  m slow: Δ = g_m + Σ_{k≠m} c_k·same(g_k, g_m)
  final gradient g_f + Δ; shared tensors get g_f.
All tensors of one owner are flattened into one vector with a segment id per tensor, so the dot
products are segment sums (index_add_) and the fast/slow choice is a torch.where: three passes in
total, no Python loop over parameters and no host sync.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch

NUM_MODALITIES = 3


def _segment_sum(values: torch.Tensor, segments: torch.Tensor, count: int) -> torch.Tensor:
    return torch.zeros(count, dtype=values.dtype, device=values.device).index_add_(0, segments, values)


def _same(a: torch.Tensor, b: torch.Tensor, segments: torch.Tensor, count: int) -> torch.Tensor:
    """same(a, b) per segment; a zero b gives a (nothing to project on)."""
    dot = _segment_sum(a * b, segments, count)
    norm = _segment_sum(b * b, segments, count)
    coef = torch.where(norm > 0, dot / norm.clamp_min(torch.finfo(norm.dtype).tiny), torch.zeros_like(dot))
    projection = coef[segments] * b
    return torch.where((dot > 0)[segments], projection, a - projection)


def regrad_combine(
    fused_grads: Sequence[torch.Tensor],
    modality_grads: Sequence[Optional[Sequence[torch.Tensor]]],
    owner: Sequence[Optional[int]],
    certainty: torch.Tensor,
    fast: Union[int, torch.Tensor, None],
) -> List[torch.Tensor]:
    """Final gradients of every trainable tensor (METHOD.md §4, step 4).

    Args:
        fused_grads: P tensors, ∂L_fused/∂θ.
        modality_grads: 3 entries, each P tensors ∂L_m/∂θ, or None where modality m is absent from
            the batch: an absent modality contributes nothing to the others, and the tensors it owns
            get g_f only (Δ = 0).
        owner: per tensor, the owning modality index or None for shared tensors (they get g_f).
        certainty: (3,) c_m.
        fast: index of the fast modality (int or 0-d tensor; -1 or None = no fast modality, so every
            modality takes the slow rule).

    Returns:
        P tensors, the gradients to assign to ``param.grad``.
    """
    if len(modality_grads) != NUM_MODALITIES:
        raise ValueError(f"modality_grads: expected {NUM_MODALITIES} entries, got {len(modality_grads)}")
    if len(owner) != len(fused_grads):
        raise ValueError(f"owner: expected {len(fused_grads)} entries (one per tensor), got {len(owner)}")
    device = fused_grads[0].device
    fast_t = torch.as_tensor(-1 if fast is None else fast, device=device)
    certainty = certainty.to(device=device, dtype=fused_grads[0].dtype)
    result = list(fused_grads)
    for m in range(NUM_MODALITIES):
        indices = [p for p, o in enumerate(owner) if o == m]
        if not indices or modality_grads[m] is None:
            continue
        sizes = [fused_grads[p].numel() for p in indices]
        segments = torch.repeat_interleave(torch.arange(len(indices), device=device),
                                           torch.tensor(sizes, device=device))

        def flat(grads: Sequence[torch.Tensor]) -> torch.Tensor:
            return torch.cat([grads[p].reshape(-1) for p in indices])

        own = flat(modality_grads[m])
        others = {k: flat(g) for k, g in enumerate(modality_grads) if k != m and g is not None}
        others_sum = sum(others.values(), torch.zeros_like(own))
        fast_delta = certainty[m] * _same(own, others_sum, segments, len(indices)) + others_sum
        slow_delta = own + sum((certainty[k] * _same(g, own, segments, len(indices)) for k, g in others.items()),
                               torch.zeros_like(own))
        combined = flat(fused_grads) + torch.where(fast_t == m, fast_delta, slow_delta)
        for p, piece in zip(indices, torch.split(combined, sizes)):
            result[p] = piece.view_as(fused_grads[p])
    return result


class ConvergenceTracker:
    """Exponential moving average of each modality's loss; the fast modality has the strictly lowest.

    ē_m ← β·ē_m + (1−β)·L_m from ē_m = 0, updated only where the modality was present (the
    reference's ``+=`` made the average grow without bound). Everything stays on the device.
    """

    def __init__(self, beta: float = 0.5) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta: expected a value in [0, 1), got {beta}")
        self.beta = beta
        self.ema: Optional[torch.Tensor] = None
        self.seen: Optional[torch.Tensor] = None

    def update(self, losses: torch.Tensor, present: torch.Tensor) -> None:
        losses = losses.detach()
        if self.ema is None:
            self.ema = torch.zeros_like(losses)
            self.seen = torch.zeros_like(present, dtype=torch.bool)
        self.ema = torch.where(present, self.beta * self.ema + (1.0 - self.beta) * losses, self.ema)
        self.seen = self.seen | present

    @property
    def fast(self) -> torch.Tensor:
        """0-d tensor: the index of the strictly lowest EMA among the modalities seen, else -1."""
        if self.ema is None:
            return torch.tensor(-1)
        values = torch.where(self.seen, self.ema, torch.full_like(self.ema, float("inf")))
        lowest = values.min()
        unique = (values == lowest).sum() == 1
        return torch.where(unique & torch.isfinite(lowest), values.argmin(), torch.tensor(-1, device=values.device))


def modality_gradients(
    loss_fused: torch.Tensor, losses: torch.Tensor, params: Sequence[torch.Tensor]
) -> Tuple[List[torch.Tensor], List[List[torch.Tensor]]]:
    """∂L_fused/∂θ and ∂L_m/∂θ for every tensor, from one batched backward over the four losses.

    Falls back to four ordinary backward passes where an operator has no batching rule.

    Returns:
        ``(fused_grads, [rgb_grads, depth_grads, ir_grads])``; a tensor a loss does not reach gets zeros.
    """
    stacked = torch.cat([loss_fused.reshape(1), losses.reshape(-1)])
    try:
        grads = torch.autograd.grad(stacked, list(params), grad_outputs=torch.eye(len(stacked), device=stacked.device),
                                    is_grads_batched=True, allow_unused=True, retain_graph=True)
        per_loss = [[g[i] if g is not None else torch.zeros_like(p) for g, p in zip(grads, params)]
                    for i in range(len(stacked))]
    except RuntimeError:  # no vmap rule for some operator: one backward per loss instead
        per_loss = [
            [g if g is not None else torch.zeros_like(p)
             for g, p in zip(torch.autograd.grad(loss, list(params), allow_unused=True, retain_graph=True), params)]
            for loss in stacked
        ]
    return per_loss[0], per_loss[1:]
