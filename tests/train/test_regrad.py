"""ReGrad against a straightforward per-parameter implementation of METHOD.md §4, written here."""
import copy

import pytest
import torch

from mmdg_edge.train import regrad
from mmdg_edge.train.regrad import ConvergenceTracker, modality_gradients, regrad_combine

F64 = torch.float64


def _same_ref(a, b):
    dot = float((a * b).sum())
    norm = float((b * b).sum())
    coef = dot / norm if norm > 0 else 0.0
    return coef * b if dot > 0 else a - coef * b


def _reference(fused, per_modality, owner, certainty, fast):
    """METHOD.md §4 step 4, one tensor at a time; absent modalities are left out of every sum."""
    out = []
    for p, g_f in enumerate(fused):
        m = owner[p]
        if m is None or per_modality[m] is None:
            out.append(g_f.clone())
            continue
        g = {k: per_modality[k][p] for k in range(3) if per_modality[k] is not None}
        others = [k for k in g if k != m]
        if fast == m:
            s = sum((g[k] for k in others), torch.zeros_like(g_f))
            delta = float(certainty[m]) * _same_ref(g[m], s) + s
        else:
            delta = g[m] + sum((float(certainty[k]) * _same_ref(g[k], g[m]) for k in others), torch.zeros_like(g_f))
        out.append(g_f + delta)
    return out


SHAPES = [(3, 4), (5,), (2, 2, 2), (7,), (4, 3), (6,), (1,), (2, 5)]
OWNER = [0, 1, 2, None, 0, 2, 1, None]
CERTAINTY = torch.tensor([0.3, 0.8, 0.55], dtype=F64)


def _grads(seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=F64) for s in SHAPES]


def _assert_all_close(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("fast", [None, 0, 1, 2])
@pytest.mark.parametrize("absent", [(), (0,), (1,), (2,), (0, 2), (1, 2)])
def test_matches_per_parameter_reference_for_fast_slow_and_absent_modalities(fast, absent):
    fused = _grads(0)
    per_modality = [None if k in absent else _grads(k + 1) for k in range(3)]
    got = regrad_combine(fused, per_modality, OWNER, CERTAINTY, fast)
    _assert_all_close(got, _reference(fused, per_modality, OWNER, CERTAINTY, fast))


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_when_directions_agree_and_conflict_per_tensor(seed):
    # Modality gradients built as ± multiples of one direction plus noise, so that some tensors
    # have agreeing and some conflicting pairs (checked below), in both fast and slow rules.
    gen = torch.Generator().manual_seed(100 + seed)
    base = _grads(50 + seed)
    signs = torch.randint(0, 2, (3, len(SHAPES)), generator=gen) * 2 - 1
    per_modality = [[signs[k, p] * base[p] + 0.3 * torch.randn(SHAPES[p], generator=gen, dtype=F64)
                     for p in range(len(SHAPES))] for k in range(3)]
    dots = torch.tensor([[float((per_modality[0][p] * per_modality[k][p]).sum()) for p in range(len(SHAPES))]
                         for k in (1, 2)])
    assert (dots > 0).any() and (dots < 0).any()
    fused = _grads(7)
    for fast in (None, 0, 1, 2):
        got = regrad_combine(fused, per_modality, OWNER, CERTAINTY, fast)
        _assert_all_close(got, _reference(fused, per_modality, OWNER, CERTAINTY, fast))


def test_agreeing_and_conflicting_directions_by_hand():
    fused = [torch.zeros(2, dtype=F64)]
    g_rgb = torch.tensor([1.0, 1.0], dtype=F64)
    agreeing = torch.tensor([2.0, 0.0], dtype=F64)
    conflicting = torch.tensor([-2.0, 0.0], dtype=F64)
    c = torch.tensor([1.0, 0.5, 1.0], dtype=F64)
    # rgb slow, agreeing: same = (2/2)·[1, 1]; Δ = [1, 1] + 0.5·[1, 1]
    slow_agree = regrad_combine(fused, [[g_rgb], [agreeing], None], [0], c, None)[0]
    torch.testing.assert_close(slow_agree, torch.tensor([1.5, 1.5], dtype=F64))
    # rgb slow, conflicting: same = [-2, 0] − (−2/2)·[1, 1] = [−1, 1]; Δ = [1, 1] + 0.5·[−1, 1]
    slow_conflict = regrad_combine(fused, [[g_rgb], [conflicting], None], [0], c, None)[0]
    torch.testing.assert_close(slow_conflict, torch.tensor([0.5, 1.5], dtype=F64))
    # rgb fast, conflicting: s = [−2, 0]; same(g_rgb, s) = [1, 1] − (−2/4)·[−2, 0] = [0, 1]; Δ = 1·[0, 1] + s
    fast_conflict = regrad_combine(fused, [[g_rgb], [conflicting], None], [0], c, 0)[0]
    torch.testing.assert_close(fast_conflict, torch.tensor([-2.0, 1.0], dtype=F64))
    # rgb fast, agreeing: same(g_rgb, s) = (2/4)·[2, 0] = [1, 0]; Δ = [1, 0] + [2, 0]
    fast_agree = regrad_combine(fused, [[g_rgb], [agreeing], None], [0], c, 0)[0]
    torch.testing.assert_close(fast_agree, torch.tensor([3.0, 0.0], dtype=F64))


def test_zero_partner_gradient_keeps_the_own_gradient():
    # same(a, 0) takes the conflicting branch with a zero projection: a itself, no division by zero.
    g_rgb = torch.tensor([1.0, -2.0], dtype=F64)
    zero = torch.zeros(2, dtype=F64)
    c = torch.tensor([0.25, 0.5, 1.0], dtype=F64)
    fast = regrad_combine([zero], [[g_rgb], [zero], [zero]], [0], c, 0)[0]
    torch.testing.assert_close(fast, 0.25 * g_rgb)  # Δ = c_rgb·same(g_rgb, 0) + 0
    slow = regrad_combine([zero], [[zero], [g_rgb], [g_rgb]], [0], c, None)[0]
    torch.testing.assert_close(slow, 1.5 * g_rgb)  # Δ = 0 + c_depth·g_rgb + c_ir·g_rgb
    assert torch.isfinite(fast).all() and torch.isfinite(slow).all()


def test_absent_owner_gets_the_fused_gradient_only():
    fused, per = _grads(0), [_grads(1), None, _grads(3)]
    got = regrad_combine(fused, per, OWNER, CERTAINTY, 1)
    for p, owner in enumerate(OWNER):
        if owner in (None, 1):
            assert torch.equal(got[p], fused[p])
        else:
            assert not torch.equal(got[p], fused[p])


def test_shared_parameters_get_the_fused_gradient_only():
    fused = _grads(5)
    got = regrad_combine(fused, [_grads(6), _grads(7), _grads(8)], [None] * len(SHAPES), torch.ones(3, dtype=F64), 1)
    for g, f in zip(got, fused):
        assert torch.equal(g, f)


def test_fast_as_device_tensor_equals_fast_as_int_and_minus_one_means_none():
    fused, per = _grads(0), [_grads(1), _grads(2), _grads(3)]
    _assert_all_close(regrad_combine(fused, per, OWNER, CERTAINTY, torch.tensor(2)),
                      regrad_combine(fused, per, OWNER, CERTAINTY, 2))
    _assert_all_close(regrad_combine(fused, per, OWNER, CERTAINTY, torch.tensor(-1)),
                      regrad_combine(fused, per, OWNER, CERTAINTY, None))


def test_float32_gradients_match_the_reference():
    fused = [g.float() for g in _grads(0)]
    per = [[g.float() for g in _grads(k)] for k in (1, 2, 3)]
    got = regrad_combine(fused, per, OWNER, CERTAINTY.float(), 0)
    assert all(g.dtype == torch.float32 for g in got)
    _assert_all_close(got, _reference(fused, per, OWNER, CERTAINTY.float(), 0))


@pytest.mark.parametrize("change, message", [
    (dict(modality_grads=[None, None]), "modality_grads: expected 3"),
    (dict(owner=[0]), "owner: expected 8"),
    (dict(owner=[0, 1, 2, None, 0, 2, 1, 3]), "owner: expected 0, 1, 2 or None"),
    (dict(certainty=torch.ones(2)), r"certainty: expected a tensor of shape \(3,\)"),
    (dict(fast=3), "fast: expected None or a modality index"),
    (dict(fast=torch.tensor(0.5)), "fast: expected a 0-d integer tensor"),
    (dict(fused_grads=[]), "fused_grads: expected one gradient"),
])
def test_bad_inputs_are_named(change, message):
    args = dict(fused_grads=_grads(0), modality_grads=[_grads(1), _grads(2), _grads(3)], owner=OWNER,
                certainty=CERTAINTY, fast=None) | change
    with pytest.raises(ValueError, match=message):
        regrad_combine(**args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device to detect host syncs")
def test_combine_and_tracker_never_sync_with_the_device():
    cuda = torch.device("cuda")
    fused = [g.to(cuda) for g in _grads(0)]
    per = [[g.to(cuda) for g in _grads(k)] for k in (1, 2, 3)]
    certainty = CERTAINTY.to(cuda)
    tracker = ConvergenceTracker()
    regrad_combine(fused, per, OWNER, certainty, None)  # builds the cached layout (one upload)
    losses, present = torch.tensor([0.3, 0.2, 0.4], device=cuda), torch.ones(3, dtype=torch.bool, device=cuda)
    torch.cuda.set_sync_debug_mode("error")
    try:
        tracker.update(losses, present)
        got = regrad_combine(fused, per, OWNER, certainty, tracker.fast_index)
        for fast in (None, 0):
            regrad_combine(fused, per, OWNER, certainty, fast)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    expected = _reference([g.cpu() for g in fused], [[g.cpu() for g in m] for m in per], OWNER, CERTAINTY, 1)
    _assert_all_close([g.cpu() for g in got], expected)


def test_mismatched_gradient_shape_is_named():
    per = [_grads(1), _grads(2), _grads(3)]
    per[1][2] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"modality_grads\[1\]\[2\]: expected shape \(2, 2, 2\)"):
        regrad_combine(_grads(0), per, OWNER, CERTAINTY, None)


def test_ema_of_constant_losses_converges_to_the_loss():
    tracker = ConvergenceTracker(beta=0.5)
    losses = torch.tensor([0.7, 0.2, 1.3])
    for _ in range(40):
        tracker.update(losses, torch.ones(3, dtype=torch.bool))
    torch.testing.assert_close(tracker.ema, losses)  # the reference's += would grow to ~40× the loss
    assert tracker.fast == 1


def test_ema_follows_the_recurrence_by_hand_and_skips_absent_modalities():
    tracker = ConvergenceTracker(beta=0.5)
    tracker.update(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([True, True, False]))
    torch.testing.assert_close(tracker.ema, torch.tensor([1.0, 2.0, 0.0]))  # starts at the first loss
    tracker.update(torch.tensor([3.0, float("nan"), 4.0]), torch.tensor([True, False, True]))
    # rgb: 0.5·1 + 0.5·3 = 2; depth absent (its NaN is ignored); ir first seen → 4
    torch.testing.assert_close(tracker.ema, torch.tensor([2.0, 2.0, 4.0]))
    assert tracker.fast is None  # rgb and depth tie at 2
    tracker.update(torch.tensor([1.0, 2.0, 4.0]), torch.ones(3, dtype=torch.bool))
    torch.testing.assert_close(tracker.ema, torch.tensor([1.5, 2.0, 4.0]))
    assert tracker.fast == 0
    assert tracker.fast_index.dtype == torch.long and int(tracker.fast_index) == 0


def test_fast_needs_a_strict_minimum_among_seen_modalities():
    tracker = ConvergenceTracker()
    assert tracker.fast is None and int(tracker.fast_index) == -1
    tracker.update(torch.tensor([0.5, 0.5, 0.9]), torch.ones(3, dtype=torch.bool))
    assert tracker.fast is None  # tie
    tracker = ConvergenceTracker()
    tracker.update(torch.tensor([0.9, 0.0, 0.4]), torch.tensor([True, False, True]))
    assert tracker.fast == 2  # depth was never seen, its 0 does not count


def test_tracker_state_round_trips():
    tracker = ConvergenceTracker()
    tracker.update(torch.tensor([0.9, 0.3, 0.4]), torch.tensor([True, True, False]))
    restored = ConvergenceTracker()
    restored.load_state_dict(tracker.state_dict())
    for t in (tracker, restored):
        t.update(torch.tensor([0.1, 0.3, 0.2]), torch.ones(3, dtype=torch.bool))
    assert torch.equal(tracker.ema, restored.ema) and restored.fast == tracker.fast == 2


def test_tracker_rejects_bad_shapes():
    with pytest.raises(ValueError, match="losses: expected a tensor of shape"):
        ConvergenceTracker().update(torch.ones(2), torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="present: expected a bool tensor"):
        ConvergenceTracker().update(torch.ones(3), torch.ones(3))
    with pytest.raises(ValueError, match="beta"):
        ConvergenceTracker(beta=1.0)


def _small_net_losses():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.LayerNorm(3), torch.nn.Linear(3, 2))
    unused = torch.nn.Parameter(torch.ones(2))  # reached by no loss: its gradients are zeros
    x = torch.randn(5, 4)
    out = net(x)
    fused = torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 1, 0, 1]))
    losses = torch.stack([out[:, 0].mean(), out[:, 1].abs().mean(), out.pow(2).sum() * 0.1])
    return fused, losses, [*net.parameters(), unused]


def test_batched_and_separate_backward_passes_agree_with_autograd():
    fused, losses, params = _small_net_losses()
    batched = modality_gradients(fused, losses, params)
    separate = modality_gradients(fused, losses, params, batched=False)
    for i, loss in enumerate([fused, *losses]):
        expected = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        expected = [e if e is not None else torch.zeros_like(p) for e, p in zip(expected, params)]
        for result in (batched, separate):
            got = result[0] if i == 0 else result[1][i - 1]
            _assert_all_close(got, expected)
    assert torch.equal(batched[1][0][-1], torch.zeros(2))


class _HostScale(torch.autograd.Function):
    """Doubles its input; the backward reads a value to the host, which vmap cannot batch."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        return grad * (2.0 + 0.0 * grad.sum().item())


def test_operator_without_batching_rule_falls_back_to_separate_passes(monkeypatch):
    calls = []
    separate = regrad._separate_gradients
    monkeypatch.setattr(regrad, "_separate_gradients", lambda *a: calls.append(1) or separate(*a))
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    y = _HostScale.apply(weight)
    losses = torch.stack([y.sum(), (y * y).sum(), y[0] * 3])
    fused_grads, per_modality = modality_gradients(y.pow(3).sum(), losses, [weight])
    torch.testing.assert_close(fused_grads[0], 3 * (2 * weight.detach()) ** 2 * 2)
    torch.testing.assert_close(per_modality[0][0], torch.full((3,), 2.0))
    torch.testing.assert_close(per_modality[1][0], 8 * weight.detach())
    torch.testing.assert_close(per_modality[2][0], torch.tensor([6.0, 0.0, 0.0]))
    assert calls == [1]


def test_modality_gradients_rejects_bad_inputs():
    fused, losses, params = _small_net_losses()
    with pytest.raises(ValueError, match=r"losses: expected shape \(3,\)"):
        modality_gradients(fused, losses[:2], params)
    with pytest.raises(ValueError, match="do not require grad"):
        modality_gradients(fused, losses, [torch.zeros(2)])


def test_one_regrad_step_on_the_tiny_model_moves_trainable_parameters_by_the_reference_gradient(tiny_model):
    model = copy.deepcopy(tiny_model).train()
    owner_of = model.parameter_owners()
    names = [n for n, _ in model.named_parameters() if n in owner_of]
    params = [p for n, p in model.named_parameters() if n in owner_of]
    owners = [owner_of[n] for n in names]
    assert {0, 1, 2, None} <= set(owners)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if n not in owner_of}
    before = [p.detach().clone() for p in params]

    gen = torch.Generator().manual_seed(3)
    crops = torch.randn(2, 3, 3, 224, 224, generator=gen)
    mask = torch.tensor([[True, True, False], [True, True, False]])  # ir absent from the whole batch
    out = model(crops, mask)
    fused = torch.nn.functional.cross_entropy(out.logits, torch.tensor([1, 0]))
    direction = torch.randn(out.features.shape[-1], generator=gen)
    losses = (out.features * direction).sum(-1).mean(0)  # one loss per modality stream
    g_f, g_m = modality_gradients(fused, losses, params)
    g_m[2] = None
    certainty = torch.tensor([0.4, 0.7, 0.0])
    combined = regrad_combine(g_f, g_m, owners, certainty, 0)

    lr = 0.05
    for param, grad in zip(params, combined):
        param.grad = grad.clone()
    torch.optim.SGD(params, lr=lr).step()

    expected = _reference(g_f, g_m, owners, certainty, 0)
    for name, old, param, grad in zip(names, before, params, expected):
        torch.testing.assert_close(param.detach(), old - lr * grad, msg=name)
    for name, value in model.named_parameters():
        if name in frozen:
            assert torch.equal(frozen[name], value), name
    # ir-owned tensors take g_f only (their owner is absent); some rgb/depth tensors get a non-zero Δ
    for name, o, got, f in zip(names, owners, combined, g_f):
        if o == 2 or o is None:
            assert torch.equal(got, f), name
    assert any(not torch.allclose(got, f) for o, got, f in zip(owners, combined, g_f) if o in (0, 1))
