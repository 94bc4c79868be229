"""Asymmetric domain prompts (ADPs, METHOD.md §3): learnable context tokens per modality and slot.

Training only: inference never runs the text tower. Slot ``live_slot`` is the single live slot
shared by every domain; the other slots are the spoof slots of the source domains in order.
"""
from __future__ import annotations

from typing import Callable, List, Sequence

import torch
from torch import nn

_SENSORS = {
    "rgb": "captured by a color camera",
    "depth": "captured by a depth camera",
    "ir": "captured by an infrared camera",
}
_LIVE = (
    "a photo of a real face {sensor}",
    "a photo of a bona fide face {sensor}",
    "an image of a live human face {sensor}",
    "a genuine person standing in front of the camera {sensor}",
    "a real human face with natural skin {sensor}",
    "a live face of a person {sensor}",
    "a photo of an authentic face {sensor}",
    "a close-up of a living person's face {sensor}",
    "a natural face of a real person {sensor}",
)
_SPOOF = (
    "a photo of a spoof face {sensor}",
    "a photo of a fake face {sensor}",
    "an image of a presentation attack {sensor}",
    "a printed photo of a face held up {sensor}",
    "a face shown on a screen {sensor}",
    "a face wearing a mask {sensor}",
    "a photo of an attack face {sensor}",
    "a counterfeit face presented to the camera {sensor}",
    "an artificial replica of a face {sensor}",
)
_DOMAIN_SUFFIX = " within the deployment environment of"


def prompt_sentences(modality: str, live: bool, prompt_length: int) -> List[str]:
    """The hand-written sentences of one class and modality, each ending in ``prompt_length`` placeholders."""
    placeholders = " ".join(["X"] * prompt_length)
    return [t.format(sensor=_SENSORS[modality]) + f"{_DOMAIN_SUFFIX} {placeholders}" for t in (_LIVE if live else _SPOOF)]


class DomainPrompts(nn.Module):
    """The ADP context vectors P_m ∈ R^{S×L×E_text} and the tokenised sentences they fill in.

    Args:
        tokenizer: open_clip tokenizer (callable: list of str → LongTensor (n, context_length)).
        modalities: modality names in order.
        width: text token embedding width E_text.
        slots, length, live_slot: S, L and the index of the shared live slot.
    """

    def __init__(
        self, tokenizer: Callable[[Sequence[str]], torch.Tensor], modalities: Sequence[str], width: int,
        slots: int = 5, length: int = 5, live_slot: int = 1,
    ) -> None:
        super().__init__()
        if not 0 <= live_slot < slots:
            raise ValueError(f"DomainPrompts: live_slot {live_slot} is outside 0..{slots - 1}")
        self.slots, self.length, self.live_slot = slots, length, live_slot
        self.contexts = nn.ParameterList(
            [nn.Parameter(torch.randn(slots, length, width) * 0.02) for _ in modalities]
        )
        per_modality = []
        for modality in modalities:
            per_slot = [tokenizer(prompt_sentences(modality, s == live_slot, length)) for s in range(slots)]
            per_modality.append(torch.stack(per_slot))
        tokens = torch.stack(per_modality)  # (M, S, n_sentences, context)
        eot = tokens.argmax(dim=-1)  # CLIP's end-of-text token has the largest id
        # Causal attention: tokens after the last EOT never reach the pooled output, so drop them.
        tokens = tokens[..., : int(eot.max()) + 1]
        self.register_buffer("tokens", tokens, persistent=False)
        self.register_buffer("eot", eot, persistent=False)
        offsets = torch.arange(-length, 0)
        self.register_buffer("placeholder_index", eot[..., None] + offsets, persistent=False)

    def context_embeddings(self, token_embeddings: torch.Tensor) -> torch.Tensor:
        """Replace the placeholder embeddings by the learnable context.

        Args:
            token_embeddings: (M, S, n_sentences, T, W) embeddings of ``self.tokens``.
        """
        context = torch.stack(list(self.contexts))  # (M, S, L, W)
        context = context[:, :, None].expand(-1, -1, token_embeddings.shape[2], -1, -1)
        index = self.placeholder_index[..., None].expand(-1, -1, -1, -1, token_embeddings.shape[-1])
        return token_embeddings.scatter(3, index, context)
