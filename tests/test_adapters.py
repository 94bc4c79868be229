"""U-Adapter++ pieces against hand computations on tiny tensors (METHOD.md §2)."""
import math

import numpy as np
import torch

from mmdg_edge.adapters import (
    CentralDifferenceConv,
    CertaintyScaledAttention,
    GaussianQuery,
    UAdapter,
    certainty_from_uncertainty,
    select_tokens,
)


def test_certainty_is_exp_of_minus_rate_times_uncertainty_and_detached():
    u = torch.tensor([0.0, 0.4, 2.0], requires_grad=True)
    c = certainty_from_uncertainty(u, rate=2.5)
    torch.testing.assert_close(c, torch.tensor([1.0, math.exp(-1.0), math.exp(-5.0)]))
    assert not c.requires_grad


def test_gaussian_query_eval_returns_mean_and_mean_variance():
    torch.manual_seed(0)
    gq = GaussianQuery(dim=4, num_samples=50).eval()
    q = torch.randn(2, 3, 4)
    mu, u = gq(q)
    torch.testing.assert_close(mu, q @ gq.mean.weight.T)
    torch.testing.assert_close(u, torch.exp(q @ gq.log_var.weight.T).mean(-1))
    torch.testing.assert_close(gq(q)[0], mu)  # deterministic


def test_gaussian_query_training_samples_match_the_distribution():
    torch.manual_seed(0)
    gq = GaussianQuery(dim=4, num_samples=20000).train()
    with torch.no_grad():
        gq.log_var.weight.zero_()  # λ = 0 → variance 1
    q = torch.randn(1, 2, 4)
    mu, u = gq(q)
    torch.testing.assert_close(mu, q @ gq.mean.weight.T, atol=0.05, rtol=0)
    torch.testing.assert_close(u, torch.ones(1, 2), atol=0.05, rtol=0)


def test_token_selection_eval_takes_the_more_certain_source():
    q1 = torch.tensor([[[1.0], [2.0], [3.0]]])
    q2 = torch.tensor([[[-1.0], [-2.0], [-3.0]]])
    c1 = torch.tensor([[0.9, 0.2, 0.5]])
    c2 = torch.tensor([[0.1, 0.8, 0.5]])
    q, c = select_tokens(q1, c1, q2, c2, stochastic=False)
    torch.testing.assert_close(q, torch.tensor([[[1.0], [-2.0], [-3.0]]]))  # a tie keeps the own query (source 2)
    torch.testing.assert_close(c, torch.tensor([[0.9, 0.8, 0.5]]))


def test_token_selection_training_picks_source_one_with_probability_c1_over_sum():
    torch.manual_seed(0)
    n = 40000
    q1, q2 = torch.ones(1, n, 1), torch.zeros(1, n, 1)
    c1, c2 = torch.full((1, n), 0.3), torch.full((1, n), 0.1)
    q, c = select_tokens(q1, c1, q2, c2, stochastic=True)
    freq = q.mean().item()
    sigma = math.sqrt(0.75 * 0.25 / n)
    assert abs(freq - 0.75) < 5 * sigma, freq  # the reference's (c1+c2)/c1 would give 1.0
    torch.testing.assert_close(c, torch.where(q[..., 0] > 0, c1, c2))


def test_certainty_scaled_attention_matches_hand_softmax():
    torch.manual_seed(0)
    att = CertaintyScaledAttention(dim=4, heads=2)
    query, tokens = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    certainty = torch.tensor([[1.0, 0.5, 0.0]])
    out = att(query, tokens, certainty).detach().numpy()

    w = {n: p.detach().numpy() for n, p in att.named_parameters()}
    assert set(w) == {"key.weight", "value.weight", "out.weight", "out.bias"}  # Wk, Wv bias-free (METHOD.md §2.2)
    k = tokens[0].numpy() @ w["key.weight"].T
    v = tokens[0].numpy() @ w["value.weight"].T
    q = query[0].numpy()
    heads = []
    for h in range(2):
        sl = slice(2 * h, 2 * h + 2)
        logits = (q[:, sl] @ k[:, sl].T) / math.sqrt(2) * certainty[0].numpy()[:, None]
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        heads.append(probs @ v[:, sl])
    expected = np.concatenate(heads, 1) @ w["out.weight"].T + w["out.bias"]
    np.testing.assert_allclose(out[0], expected, atol=1e-5)
    # certainty 0 → uniform attention: that row is the mean of the values, projected
    np.testing.assert_allclose(out[0, 2], v.mean(0) @ w["out.weight"].T + w["out.bias"], atol=1e-5)


def test_central_difference_conv_matches_hand_computation():
    torch.manual_seed(0)
    cdc = CentralDifferenceConv(dim=2, theta=0.5)
    x = torch.randn(1, 2, 3, 3)
    out = cdc(x).detach().numpy()
    w = cdc.conv.weight.detach().numpy()  # (out, in, 3, 3)
    xp = np.pad(x.numpy()[0], ((0, 0), (1, 1), (1, 1)))
    expected = np.zeros((2, 3, 3))
    for o in range(2):
        for i in range(3):
            for j in range(3):
                window = xp[:, i : i + 3, j : j + 3]
                expected[o, i, j] = (w[o] * window).sum() - 0.5 * (w[o].sum(axis=(1, 2)) * x.numpy()[0, :, i, j]).sum()
    np.testing.assert_allclose(out[0], expected, atol=1e-5)


def _adapter(seed=0):
    torch.manual_seed(seed)
    adapter = UAdapter(width=16, grid=2, dim=4, heads=2).eval()
    with torch.no_grad():
        adapter.up.weight.normal_()
    return adapter


def test_adapter_starts_as_exact_zero():
    adapter = UAdapter(width=16, grid=2, dim=4, heads=2).eval()
    out, cert = adapter(torch.randn(2, 5, 16), torch.randn(2, 2, 5, 16), torch.ones(2, dtype=torch.bool),
                        torch.ones(2, 2, dtype=torch.bool))
    assert torch.count_nonzero(out) == 0
    assert (cert > 0).all()


def test_adapter_with_missing_partner_attends_to_its_own_tokens():
    adapter = _adapter()
    with torch.no_grad():  # make the partner path a copy of the own path: then partner = own is the same
        adapter.down_q.load_state_dict(adapter.down_kv.state_dict())
        adapter.norm_q.load_state_dict(adapter.norm_kv.state_dict())
    own = torch.randn(1, 5, 16)
    garbage = torch.full((1, 1, 5, 16), 1e3)
    masked, cert_masked = adapter(own, garbage, torch.tensor([True]), torch.tensor([[False]]))
    as_self, cert_self = adapter(own, own[None], torch.tensor([True]), torch.tensor([[True]]))
    torch.testing.assert_close(masked, as_self)
    torch.testing.assert_close(cert_masked, cert_self)


def test_adapter_with_missing_own_modality_outputs_zero():
    adapter = _adapter()
    out, cert = adapter(torch.randn(2, 5, 16), torch.randn(2, 2, 5, 16), torch.tensor([False, True]),
                        torch.ones(2, 2, dtype=torch.bool))
    assert torch.count_nonzero(out[0]) == 0 and cert[0] == 0
    assert torch.count_nonzero(out[1]) > 0 and cert[1] > 0


def test_adapter_parameter_count_matches_the_paper_width():
    adapter = UAdapter(width=768, grid=14, dim=8, heads=8)
    count = sum(p.numel() for p in adapter.parameters())
    assert 19_000 <= count <= 21_000, count  # METHOD.md: ≈ 19k each
