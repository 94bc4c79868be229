"""U-Adapter++ building blocks (METHOD.md §2), one small module per idea.

Each piece is testable by hand on tiny tensors: the certainty formula, the Gaussian query,
token selection, certainty-scaled attention and the central-difference convolution. `UAdapter`
composes them for one modality in one transformer block.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """CLIP's QuickGELU, x·σ(1.702x) (METHOD.md §2.1)."""
    return x * torch.sigmoid(1.702 * x)


def certainty_from_uncertainty(uncertainty: torch.Tensor, rate: float) -> torch.Tensor:
    """Certainty c = exp(−r·u) (METHOD.md §2.2); u is detached so no gradient flows through it."""
    return torch.exp(-rate * uncertainty.detach())


class GaussianQuery(nn.Module):
    """A query with a learned Gaussian: mean μ = Wμ·q, log-variance λ = Wλ·q (METHOD.md §2.2).

    Training draws ``num_samples`` reparameterised samples μ + exp(λ/2)·ε and returns their mean
    and the channel-averaged sample variance. Evaluation is deterministic: μ and mean(exp(λ)), so
    the same frame always scores the same (the reference keeps sampling at test time).
    """

    def __init__(self, dim: int, num_samples: int) -> None:
        super().__init__()
        self.mean = nn.Linear(dim, dim, bias=False)
        self.log_var = nn.Linear(dim, dim, bias=False)
        self.num_samples = num_samples

    def forward(self, q: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.mean(q), self.log_var(q)
        if not self.training:
            return mu, log_var.exp().mean(-1)
        eps = torch.randn((self.num_samples,) + mu.shape, dtype=mu.dtype, device=mu.device)
        draws = mu + torch.exp(0.5 * log_var) * eps  # (K, ..., d)
        return draws.mean(0), draws.var(0).mean(-1)


def select_tokens(
    q1: torch.Tensor, c1: torch.Tensor, q2: torch.Tensor, c2: torch.Tensor, stochastic: bool
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per token, take the query (and its certainty) of the more certain source (METHOD.md §2.2).

    Evaluation picks source 1 (the partner) only where c1 > c2: a tie keeps the adapter's own
    query. Training picks source 1 with probability c1/(c1+c2) (the reference computes
    (c1+c2)/c1 ≥ 1 and so always picks source 1).

    Args:
        q1, q2: (..., N, d) queries of the two sources.
        c1, c2: (..., N) their certainties in (0, 1].
        stochastic: sample the choice (training) instead of taking the larger certainty.
    """
    if stochastic:
        prob_first = c1 / (c1 + c2).clamp_min(torch.finfo(c1.dtype).tiny)
        pick_first = torch.rand_like(c1) < prob_first
    else:
        pick_first = c1 > c2
    return torch.where(pick_first[..., None], q1, q2), torch.where(pick_first, c1, c2)


class CertaintyScaledAttention(nn.Module):
    """Multi-head attention whose logits per query row are scaled by that query's certainty.

    softmax((q·kᵀ/√head)·c_row) with k = Wk·x, v = Wv·x, then an output linear (METHOD.md §2.2):
    unreliable query tokens get flatter attention. Wk and Wv are bias-free as METHOD.md writes them;
    only the output linear has a bias.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"CertaintyScaledAttention: dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor, certainty: torch.Tensor) -> torch.Tensor:
        batch, num_tokens, dim = query.shape
        head_dim = dim // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, -1, self.heads, head_dim).transpose(1, 2)  # (B, heads, N, head_dim)

        # Scaling row i's logits by c_i equals scaling query i by c_i: (c_i·q_i)·k_j. That lets the
        # fused attention kernel do the work without materialising the N×N logits.
        q = split(query * certainty[..., None])
        k, v = split(self.key(tokens)), split(self.value(tokens))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, num_tokens, dim)
        return self.out(out)


class UncertainCrossAttention(nn.Module):
    """Uncertainty-guided cross attention of U-Adapter++ (METHOD.md §2.2).

    Queries come from the partner (source 1, Wq1) and from the adapter's own tokens (source 2,
    Wq2); each gets a Gaussian, a certainty, and per token the more certain one attends over the
    own tokens. Returns the attended tokens and the chosen certainty per token. The query linears
    Wq1, Wq2 are bias-free (METHOD.md: q1 = Wq1·qy, q2 = Wq2·kv): a bias would shift μ and λ, and
    with them every certainty and every token choice.
    """

    def __init__(self, dim: int, heads: int, rate: float, num_samples: int) -> None:
        super().__init__()
        self.rate = rate
        self.query_partner = nn.Linear(dim, dim, bias=False)
        self.query_own = nn.Linear(dim, dim, bias=False)
        self.gauss_partner = GaussianQuery(dim, num_samples)
        self.gauss_own = GaussianQuery(dim, num_samples)
        self.attend = CertaintyScaledAttention(dim, heads)

    def forward(self, own: torch.Tensor, partner: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        q1, u1 = self.gauss_partner(self.query_partner(partner))
        q2, u2 = self.gauss_own(self.query_own(own))
        c1 = certainty_from_uncertainty(u1, self.rate)
        c2 = certainty_from_uncertainty(u2, self.rate)
        query, certainty = select_tokens(q1, c1, q2, c2, stochastic=self.training)
        return self.attend(query, own, certainty), certainty


class CentralDifferenceConv(nn.Module):
    """Central-difference 3×3 convolution: conv(z) − θ·conv_1×1(z; Σ kernel) (METHOD.md §2.4)."""

    def __init__(self, dim: int, theta: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=False)
        self.theta = theta

    def kernel(self) -> torch.Tensor:
        """The equivalent single 3×3 kernel: the 1×1 term only touches the centre tap."""
        weight = self.conv.weight
        return weight - self.theta * F.pad(weight.sum(dim=(2, 3), keepdim=True), (1, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel(), padding=1)


class UAdapter(nn.Module):
    """U-Adapter++ of one modality in one block, applied to every partner at once (METHOD.md §2).

    Args:
        width: ViT width D.
        grid: patch grid side (14 for 224 px / 16 px patches).
        dim: inner width d.
        heads, rate, num_samples, theta: attention heads, certainty rate r, draws K, CDC θ.
    """

    def __init__(
        self, width: int, grid: int, dim: int = 8, heads: int = 8, rate: float = 2.5, num_samples: int = 50,
        theta: float = 0.5,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.down_kv = nn.Linear(width, dim)
        self.down_q = nn.Linear(width, dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.norm_q = nn.LayerNorm(dim)
        self.cross = UncertainCrossAttention(dim, heads, rate, num_samples)
        self.mlp = nn.Linear(dim, dim)
        self.cdc = CentralDifferenceConv(dim, theta)
        self.up = nn.Linear(dim, width)
        for down in (self.down_kv, self.down_q):
            nn.init.xavier_uniform_(down.weight)
            nn.init.zeros_(down.bias)
        # Zero up-projection: training starts from exactly CLIP's behaviour.
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def _central_difference(self, h: torch.Tensor) -> torch.Tensor:
        """CDC on the patch grid and, separately, on the class token as a 1×1 map."""
        batch, num_tokens, dim = h.shape
        kernel = self.cdc.kernel()
        # On a zero-padded 1×1 map a 3×3 convolution sees only its centre tap.
        cls = h[:, :1] @ kernel[:, :, 1, 1].t()
        patches = h[:, 1:].transpose(1, 2).reshape(batch, dim, self.grid, self.grid)
        patches = F.conv2d(patches, kernel, padding=1).reshape(batch, dim, num_tokens - 1).transpose(1, 2)
        return torch.cat([cls, patches], dim=1)

    def forward(
        self, own: torch.Tensor, partners: torch.Tensor, own_present: torch.Tensor, partner_present: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Sum of the adapter's outputs over its partners, and its class-token certainty.

        Args:
            own: (B, N, D) ln_2 output of this modality.
            partners: (P, B, N, D) ln_2 outputs of the partner modalities.
            own_present: (B,) bool; where False the output and certainty are zero.
            partner_present: (P, B) bool; where False that partner's query path reads the own
                tokens instead (self attention).

        Returns:
            (B, N, D) adapter output summed over partners and (B,) class-token certainty averaged
            over partners.
        """
        num_partners, batch, num_tokens, _ = partners.shape
        kv = self.norm_kv(quick_gelu(self.down_kv(own)))  # (B, N, d)
        qy = self.norm_q(quick_gelu(self.down_q(partners)))  # (P, B, N, d)
        qy = torch.where(partner_present[:, :, None, None], qy, kv)
        kv = kv.expand(num_partners, *kv.shape).reshape(num_partners * batch, num_tokens, -1)
        attended, certainty = self.cross(kv, qy.reshape(num_partners * batch, num_tokens, -1))
        h = attended + kv
        h = h + self.mlp(self.norm_q(h))
        hidden = quick_gelu(self._central_difference(h)).view(num_partners, batch, num_tokens, -1)
        # up is linear: Σ_p up(z_p) = W·Σ_p z_p + P·b, one D-wide projection instead of P.
        out = F.linear(hidden.sum(0), self.up.weight, num_partners * self.up.bias)
        cls_certainty = certainty.view(num_partners, batch, num_tokens)[:, :, 0].mean(0)
        return (
            torch.where(own_present[:, None, None], out, torch.zeros((), dtype=out.dtype, device=out.device)),
            torch.where(own_present, cls_certainty, torch.zeros((), dtype=out.dtype, device=out.device)),
        )
