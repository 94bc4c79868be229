"""ReGrad: rebalanced modality gradient modulation (METHOD.md §4), vectorised.

Per trainable tensor θ owned by modality m, with per-modality gradients g_k and the fused g_f
(dot products over the flattened tensor):

  same(a, b) = (a·b/|b|²)·b  if a·b > 0,  else  a − (a·b/|b|²)·b    (|b|² = 0 → a)
  m fast: Δ = c_m·same(g_m, s) + s,  s = Σ_{k≠m} g_k
  m slow: Δ = g_m + Σ_{k≠m} c_k·same(g_k, g_m)
  final gradient g_f + Δ; shared tensors get g_f.

Both rules are linear in the gradients once the per-tensor dot products are known: for every
tensor Δ = a·g_m + Σ_{k≠m} b_k·g_k with per-tensor scalars a, b_k. Per owner group (three at
most), the group's tensors are sorted by size and concatenated into one vector per gradient;
tensors of one size form a (count, size) view, so each dot product is one row-wise sum per
distinct size (8 per modality in the paper model, 984 tensors in all), the scalars of every
tensor come from a few element-wise ops on the device (the fast/slow choice is arithmetic on a
0/1 "is fast" flag, so ``fast`` may stay a device tensor), and ``addcmul_`` with the scalars
broadcast over the rows produces every final gradient. No Python loop over parameters does
tensor math, and nothing reads a device value back to the host.
"""
from __future__ import annotations

import functools
import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

logger = logging.getLogger(__name__)

NUM_MODALITIES = 3

FastIndex = Union[int, torch.Tensor, None]


@functools.lru_cache(maxsize=16)
def _runs(sizes: Tuple[int, ...]) -> Tuple[Tuple[int, ...], Tuple[Tuple[int, int], ...]]:
    """Order of a group's tensors sorted by size, and the runs ``(count, size)`` of equal sizes.

    Tensors of one size are rows of one (count, size) view of the concatenated vector, so their
    dot products are one row-wise sum and their per-tensor scalars broadcast over the rows.
    """
    order = tuple(sorted(range(len(sizes)), key=lambda i: sizes[i]))
    runs: List[Tuple[int, int]] = []
    for i in order:
        if runs and runs[-1][1] == sizes[i]:
            runs[-1] = (runs[-1][0] + 1, sizes[i])
        else:
            runs.append((1, sizes[i]))
    return order, tuple(runs)


def _safe_ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator, 0 where the denominator is 0 (same(a, 0) = a: nothing to project on)."""
    tiny = torch.finfo(denominator.dtype).tiny
    return torch.where(denominator > 0, numerator / denominator.clamp_min(tiny), torch.zeros_like(numerator))


def _check_inputs(fused_grads: Sequence[torch.Tensor], modality_grads: Sequence[Optional[Sequence[torch.Tensor]]],
                  owner: Sequence[Optional[int]], certainty: torch.Tensor, fast: FastIndex) -> None:
    """Refuse arguments of ``regrad_combine`` that do not fit together, naming the one at fault."""
    count = len(fused_grads)
    if count == 0:
        raise ValueError("fused_grads: expected one gradient per trainable tensor, got an empty list")
    if len(modality_grads) != NUM_MODALITIES:
        raise ValueError(f"modality_grads: expected {NUM_MODALITIES} entries (rgb, depth, ir), got {len(modality_grads)}")
    for m, grads in enumerate(modality_grads):
        if grads is None:
            continue
        if len(grads) != count:
            raise ValueError(f"modality_grads[{m}]: expected {count} tensors (one per fused gradient), got {len(grads)}")
        for p, (g, f) in enumerate(zip(grads, fused_grads)):
            if g.shape != f.shape:
                raise ValueError(f"modality_grads[{m}][{p}]: expected shape {tuple(f.shape)} as fused_grads[{p}], "
                                 f"got {tuple(g.shape)}")
    if len(owner) != count:
        raise ValueError(f"owner: expected {count} entries (one per tensor), got {len(owner)}")
    bad = [o for o in owner if o is not None and o not in range(NUM_MODALITIES)]
    if bad:
        raise ValueError(f"owner: expected 0, 1, 2 or None per tensor, got {bad[:5]}")
    if not isinstance(certainty, torch.Tensor) or certainty.shape != (NUM_MODALITIES,):
        shape = tuple(certainty.shape) if isinstance(certainty, torch.Tensor) else type(certainty).__name__
        raise ValueError(f"certainty: expected a tensor of shape ({NUM_MODALITIES},), got {shape}")
    if isinstance(fast, torch.Tensor):
        if fast.numel() != 1 or fast.is_floating_point():
            raise ValueError(f"fast: expected a 0-d integer tensor, got dtype {fast.dtype} shape {tuple(fast.shape)}")
    elif fast is not None and (isinstance(fast, bool) or fast not in range(NUM_MODALITIES)):
        raise ValueError(f"fast: expected None or a modality index 0, 1, 2, got {fast!r}")


def _scales(
    m: int,
    c: torch.Tensor,
    own_norm: torch.Tensor,
    own_dot: Dict[int, torch.Tensor],
    s_norm: torch.Tensor,
    fast: FastIndex,
) -> Tuple[torch.Tensor, Dict[int, torch.Tensor]]:
    """Per-tensor a and b_k of Δ = a·g_m + Σ_{k≠m} b_k·g_k, from |g_m|², g_m·g_k and |s|²."""
    # Slow: Δ = g_m + Σ_k c_k·same(g_k, g_m), same(g_k, g_m) = coef·g_m if g_k·g_m > 0 else
    # g_k − coef·g_m, coef = g_k·g_m / |g_m|²: a = 1 ± Σ_k c_k·coef_k, b_k = 0 or c_k.
    slow_own = torch.ones_like(own_norm)
    slow_other = {}
    for k, d in own_dot.items():
        coef, agree = _safe_ratio(d, own_norm), d > 0
        slow_own = slow_own + torch.where(agree, c[k] * coef, -c[k] * coef)
        slow_other[k] = torch.where(agree, torch.zeros_like(d), c[k].expand_as(d))
    # Fast: Δ = c_m·same(g_m, s) + s = γ·g_m + δ·s, coef = g_m·s / |s|² (g_m·s = Σ_k g_m·g_k): a = γ, b_k = δ.
    own_dot_s = functools.reduce(torch.add, own_dot.values()) if own_dot else torch.zeros_like(own_norm)
    coef, agree = _safe_ratio(own_dot_s, s_norm), own_dot_s > 0
    gamma = torch.where(agree, torch.zeros_like(coef), c[m].expand_as(coef))
    delta = torch.where(agree, c[m] * coef + 1.0, 1.0 - c[m] * coef)
    # A 0/1 flag: a Python float for an int `fast`, a 0-d tensor (left where it is) for a tensor one,
    # so neither needs a copy between host and device. Blending is exact: both sides are finite.
    is_fast = (fast == m).to(own_norm.dtype) if isinstance(fast, torch.Tensor) else float(fast == m)
    return (is_fast * gamma + (1 - is_fast) * slow_own,
            {k: is_fast * delta + (1 - is_fast) * b for k, b in slow_other.items()})


def _combine_group(
    m: int,
    indices: List[int],
    fused_grads: Sequence[torch.Tensor],
    modality_grads: Sequence[Optional[Sequence[torch.Tensor]]],
    certainty: torch.Tensor,
    fast: FastIndex,
) -> List[Tuple[int, torch.Tensor]]:
    """(index, final gradient) of the tensors ``indices``, all owned by the present modality ``m``."""
    order, runs = _runs(tuple(fused_grads[p].numel() for p in indices))
    indices = [indices[i] for i in order]
    run_numel = [count * size for count, size in runs]
    first = fused_grads[indices[0]]

    def flat(grads: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([grads[p].reshape(-1) for p in indices])

    def rows(vector: torch.Tensor) -> List[torch.Tensor]:
        """One (count, size) view of ``vector`` per run of equal sizes."""
        return [part.view(count, size) for part, (count, size) in zip(torch.split(vector, run_numel), runs)]

    def dot(x: List[torch.Tensor], y: List[torch.Tensor]) -> torch.Tensor:
        return torch.cat([(a * b).sum(1) for a, b in zip(x, y)])

    own = rows(flat(modality_grads[m]))
    others = {k: rows(flat(grads)) for k, grads in enumerate(modality_grads) if k != m and grads is not None}
    s = [functools.reduce(torch.add, parts) for parts in zip(*others.values())] if others else None  # Σ_{k≠m} g_k
    own_norm = dot(own, own)
    own_dot = {k: dot(own, g) for k, g in others.items()}
    s_norm = dot(s, s) if others else torch.zeros_like(own_norm)
    own_scale, other_scale = _scales(m, certainty.to(device=first.device, dtype=first.dtype), own_norm, own_dot,
                                     s_norm, fast)

    def per_run(per_tensor: torch.Tensor) -> List[torch.Tensor]:
        return [part[:, None] for part in torch.split(per_tensor, [count for count, _ in runs])]

    final = flat(fused_grads)
    out = rows(final)
    terms = [(own, own_scale)] + [(g, other_scale[k]) for k, g in others.items()]
    for grads, scale in terms:
        for part, grad, factor in zip(out, grads, per_run(scale)):
            part.addcmul_(factor, grad)
    sizes = [fused_grads[p].numel() for p in indices]
    return [(p, piece.view_as(fused_grads[p])) for p, piece in zip(indices, torch.split(final, sizes))]


def regrad_combine(
    fused_grads: Sequence[torch.Tensor],
    modality_grads: Sequence[Optional[Sequence[torch.Tensor]]],
    owner: Sequence[Optional[int]],
    certainty: torch.Tensor,
    fast: FastIndex,
) -> List[torch.Tensor]:
    """Final ReGrad gradient of every trainable tensor (METHOD.md §4, step 4).

    Absent modalities: an entry of ``modality_grads`` that is None contributes nothing, i.e. it
    is left out of every sum Σ_{k≠m} (for the fast rule s is the sum of the other *present*
    modalities; for the slow rule its term is dropped). A tensor whose owner is absent gets
    Δ = 0, so its final gradient is g_f. With only the owner present, s = 0 and the fast rule
    gives Δ = c_m·g_m (same(g_m, 0) = g_m), the slow rule Δ = g_m.

    ``fast`` None means no modality is fast (ties or nothing seen yet): every tensor takes the
    slow rule. A 0-d integer device tensor is accepted too (e.g. ``ConvergenceTracker.fast_index``),
    so the choice never leaves the device; any value outside 0..2 in it means "none".

    Args:
        fused_grads: P tensors, g_f = ∂L_fused/∂θ.
        modality_grads: 3 entries (rgb, depth, ir), each P tensors g_m = ∂L_m/∂θ shaped as
            ``fused_grads``, or None where modality m is absent from the batch.
        owner: per tensor, the owning modality index (0, 1, 2) or None for shared tensors,
            which get g_f unchanged.
        certainty: (3,) c_m, the modality certainties.
        fast: the fast modality index, or None.

    Returns:
        P tensors, the gradients to assign to ``param.grad`` (views into one buffer for the
        owned tensors; the given ``fused_grads`` tensors themselves for the others).

    Raises:
        ValueError: lengths, shapes, owners, certainty or fast out of contract.

    Example:
        >>> g_f, g_m = modality_gradients(loss_fused, losses, params)
        >>> grads = regrad_combine(g_f, g_m, owners, certainty, tracker.fast)
        >>> for p, g in zip(params, grads):
        ...     p.grad = g
    """
    _check_inputs(fused_grads, modality_grads, owner, certainty, fast)
    result = list(fused_grads)
    for m, grads in enumerate(modality_grads):
        indices = [p for p, o in enumerate(owner) if o == m and fused_grads[p].numel() > 0]
        if grads is None or not indices:
            continue
        for p, grad in _combine_group(m, indices, fused_grads, modality_grads, certainty, fast):
            result[p] = grad
    return result


class ConvergenceTracker:
    """Exponential moving average of each modality's loss; the fast modality has the strictly lowest.

    ē_m ← β·ē_m + (1−β)·L_m (METHOD.md §4, β = 0.5), updated only where the modality was present
    in the batch; constant losses converge to the loss (the reference's ``+=`` grows without
    bound). A modality's average starts at its first observed loss rather than at 0, because a
    zero start would make a modality that first appears late look fast for several steps. The
    state stays on the losses' device.
    """

    def __init__(self, beta: float = 0.5) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta: expected a value in [0, 1), got {beta}")
        self.beta = beta
        self.ema: Optional[torch.Tensor] = None
        self.seen: Optional[torch.Tensor] = None

    def update(self, losses: torch.Tensor, present: torch.Tensor) -> None:
        """Fold one step's losses into the averages.

        Args:
            losses: (3,) per-modality losses L_m (detached here; values of absent modalities are ignored).
            present: (3,) bool, whether modality m was in the batch.
        """
        if not isinstance(losses, torch.Tensor) or losses.shape != (NUM_MODALITIES,):
            raise ValueError(f"losses: expected a tensor of shape ({NUM_MODALITIES},), got "
                             f"{tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__}")
        if not isinstance(present, torch.Tensor) or present.shape != (NUM_MODALITIES,) or present.dtype != torch.bool:
            raise ValueError(f"present: expected a bool tensor of shape ({NUM_MODALITIES},), got "
                             f"{(present.dtype, tuple(present.shape)) if isinstance(present, torch.Tensor) else present}")
        losses = losses.detach()
        present = present.to(losses.device)
        if self.ema is None:
            self.ema = torch.zeros_like(losses)
            self.seen = torch.zeros_like(present)
        average = torch.where(self.seen, self.beta * self.ema + (1.0 - self.beta) * losses, losses)
        self.ema = torch.where(present, average, self.ema)
        self.seen = self.seen | present

    @property
    def fast_index(self) -> torch.Tensor:
        """0-d long tensor on the state's device: the fast modality, or -1 (no host sync)."""
        if self.ema is None:
            return torch.tensor(-1)
        values = torch.where(self.seen, self.ema, torch.full_like(self.ema, float("inf")))
        lowest = values.min()
        unique = ((values == lowest).sum() == 1) & torch.isfinite(lowest)
        return torch.where(unique, values.argmin(), torch.full_like(values.argmin(), -1))

    @property
    def fast(self) -> Optional[int]:
        """Index of the strictly lowest average among the modalities seen so far; None on a tie or
        before anything was seen. Reads one value from the device; use ``fast_index`` to avoid that."""
        index = int(self.fast_index)
        return None if index < 0 else index

    def state_dict(self) -> Dict[str, object]:
        """The averages and the seen flags, for checkpoints (resume continues the same choice)."""
        return {"beta": self.beta, "ema": self.ema, "seen": self.seen}

    def load_state_dict(self, state: Dict[str, object]) -> None:
        """Restore what ``state_dict`` returned."""
        missing = {"beta", "ema", "seen"} - set(state)
        if missing:
            raise ValueError(f"ConvergenceTracker state: missing keys {sorted(missing)}")
        self.beta, self.ema, self.seen = float(state["beta"]), state["ema"], state["seen"]


@functools.lru_cache(maxsize=None)
def _note_fallback(reason: str) -> None:
    logger.warning("batched autograd failed (%s); using one backward pass per loss", reason)


def _separate_gradients(stacked: torch.Tensor, params: List[torch.Tensor]) -> List[Tuple[Optional[torch.Tensor], ...]]:
    return [torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True) for loss in stacked]


def modality_gradients(
    loss_fused: torch.Tensor, losses: torch.Tensor, params: Sequence[torch.Tensor], batched: bool = True
) -> Tuple[List[torch.Tensor], List[List[torch.Tensor]]]:
    """g_f = ∂L_fused/∂θ and g_m = ∂L_m/∂θ for every tensor θ, from one batched backward pass.

    The four losses are stacked and differentiated with ``grad_outputs = eye(4)`` and
    ``is_grads_batched=True`` (one vmapped backward). Where an operator has no batching rule,
    that raises; the function then logs once per distinct reason and runs four ordinary
    backward passes, which give the same gradients. The graph is retained either way.

    Args:
        loss_fused: scalar L_fused.
        losses: (3,) per-modality losses L_rgb, L_depth, L_ir.
        params: the trainable tensors (requires_grad).
        batched: False forces the four separate backward passes.

    Returns:
        ``(fused_grads, [rgb_grads, depth_grads, ir_grads])``, each a list shaped as ``params``;
        a tensor a loss does not reach gets zeros.

    Raises:
        ValueError: a loss of the wrong shape, no params, or a param that does not require grad.
    """
    params = list(params)
    if loss_fused.numel() != 1:
        raise ValueError(f"loss_fused: expected a scalar, got shape {tuple(loss_fused.shape)}")
    if losses.shape != (NUM_MODALITIES,):
        raise ValueError(f"losses: expected shape ({NUM_MODALITIES},), got {tuple(losses.shape)}")
    if not params:
        raise ValueError("params: expected at least one trainable tensor, got none")
    frozen = [i for i, p in enumerate(params) if not p.requires_grad]
    if frozen:
        raise ValueError(f"params: tensors {frozen[:5]} do not require grad; pass only trainable parameters")
    stacked = torch.cat([loss_fused.reshape(1), losses.reshape(-1)])
    per_param: Optional[Tuple[Optional[torch.Tensor], ...]] = None
    if batched:
        eye = torch.eye(len(stacked), dtype=stacked.dtype, device=stacked.device)
        try:
            per_param = torch.autograd.grad(stacked, params, grad_outputs=eye, is_grads_batched=True,
                                            allow_unused=True, retain_graph=True)
        except RuntimeError as exc:  # an operator without a vmap rule
            _note_fallback(str(exc).splitlines()[0][:200])
    if per_param is not None:
        per_loss = [[g[i] if g is not None else torch.zeros_like(p) for g, p in zip(per_param, params)]
                    for i in range(len(stacked))]
    else:
        per_loss = [[g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params)]
                    for grads in _separate_gradients(stacked, params)]
    return per_loss[0], per_loss[1:]
