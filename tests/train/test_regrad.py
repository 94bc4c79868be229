"""ReGrad against a straightforward per-parameter implementation of METHOD.md §4, written here."""
import pytest
import torch

from mmdg_edge.train.regrad import ConvergenceTracker, modality_gradients, regrad_combine


def _same_ref(a, b):
    dot = float((a * b).sum())
    norm = float((b * b).sum())
    coef = dot / norm if norm > 0 else 0.0
    return coef * b if dot > 0 else a - coef * b


def _reference(fused, per_modality, owner, certainty, fast):
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
            delta = certainty[m] * _same_ref(g[m], s) + s
        else:
            delta = g[m] + sum((certainty[k] * _same_ref(g[k], g[m]) for k in others), torch.zeros_like(g_f))
        out.append(g_f + delta)
    return out


SHAPES = [(3, 4), (5,), (2, 2, 2), (7,), (4, 3), (6,)]
OWNER = [0, 1, 2, None, 0, 2]


def _grads(seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]


@pytest.mark.parametrize("fast", [None, 0, 1, 2])
@pytest.mark.parametrize("absent", [None, 0, 1, 2])
def test_matches_per_parameter_reference(fast, absent):
    fused = _grads(0)
    per_modality = [_grads(1), _grads(2), _grads(3)]
    if absent is not None:
        per_modality[absent] = None
    certainty = torch.tensor([0.3, 0.8, 0.55], dtype=torch.float64)
    got = regrad_combine(fused, per_modality, OWNER, certainty, fast)
    expected = _reference(fused, per_modality, OWNER, certainty, fast)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


def test_agreeing_and_conflicting_directions_by_hand():
    fused = [torch.zeros(2, dtype=torch.float64)]
    g_rgb = torch.tensor([1.0, 1.0], dtype=torch.float64)
    agreeing = torch.tensor([2.0, 0.0], dtype=torch.float64)
    conflicting = torch.tensor([-2.0, 0.0], dtype=torch.float64)
    c = torch.tensor([1.0, 0.5, 1.0], dtype=torch.float64)
    # rgb slow: Δ = g_rgb + c_depth·same(g_depth, g_rgb)
    slow_agree = regrad_combine(fused, [[g_rgb], [agreeing], None], [0], c, None)[0]
    torch.testing.assert_close(slow_agree, g_rgb + 0.5 * torch.tensor([1.0, 1.0], dtype=torch.float64))  # projection
    slow_conflict = regrad_combine(fused, [[g_rgb], [conflicting], None], [0], c, None)[0]
    torch.testing.assert_close(slow_conflict, g_rgb + 0.5 * torch.tensor([-1.0, 1.0], dtype=torch.float64))
    # rgb fast: Δ = c_rgb·same(g_rgb, s) + s with s = g_depth
    fast_conflict = regrad_combine(fused, [[g_rgb], [conflicting], None], [0], c, 0)[0]
    torch.testing.assert_close(fast_conflict, torch.tensor([0.0, 1.0], dtype=torch.float64) + conflicting)


def test_shared_parameters_get_the_fused_gradient_only():
    fused = _grads(5)
    got = regrad_combine(fused, [_grads(6), _grads(7), _grads(8)], [None] * len(SHAPES), torch.ones(3), 1)
    for g, f in zip(got, fused):
        assert torch.equal(g, f)


def test_fast_may_be_a_device_tensor():
    fused, per = _grads(0), [_grads(1), _grads(2), _grads(3)]
    c = torch.tensor([0.2, 0.4, 0.9], dtype=torch.float64)
    a = regrad_combine(fused, per, OWNER, c, torch.tensor(2))
    b = regrad_combine(fused, per, OWNER, c, 2)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_ema_of_constant_losses_converges_to_the_loss():
    tracker = ConvergenceTracker(beta=0.5)
    losses = torch.tensor([0.7, 0.2, 1.3])
    for _ in range(40):
        tracker.update(losses, torch.ones(3, dtype=torch.bool))
    torch.testing.assert_close(tracker.ema, losses)  # the reference's += would grow to 40× the loss
    assert int(tracker.fast) == 1


def test_fast_needs_a_strict_minimum_among_seen_modalities():
    tracker = ConvergenceTracker()
    assert int(tracker.fast) == -1
    tracker.update(torch.tensor([0.5, 0.5, 0.9]), torch.ones(3, dtype=torch.bool))
    assert int(tracker.fast) == -1  # tie
    tracker = ConvergenceTracker()
    tracker.update(torch.tensor([0.9, 0.0, 0.4]), torch.tensor([True, False, True]))
    assert int(tracker.fast) == 2  # depth was never seen, its 0 does not count


def test_batched_gradients_equal_separate_backward_passes():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    x = torch.randn(5, 4)
    out = net(x)
    fused, losses = out.pow(2).mean(), torch.stack([out[:, 0].mean(), out[:, 1].abs().mean(), out.sum() * 0.1])
    params = list(net.parameters())
    got_fused, got_modal = modality_gradients(fused, losses, params)
    for i, loss in enumerate([fused, *losses]):
        expected = torch.autograd.grad(loss, params, retain_graph=True)
        got = got_fused if i == 0 else got_modal[i - 1]
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e)
