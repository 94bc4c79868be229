"""Clopper–Pearson intervals against published values and scipy's exact binomial interval; rates."""
import pytest

from mmdg_edge.stats import clopper_pearson


@pytest.mark.parametrize(
    "k,n,lower,upper",
    [
        (0, 10, 0.0, 0.308497),
        (5, 10, 0.187086, 0.812914),
        (10, 10, 0.691503, 1.0),
        (3, 1000, 0.000619, 0.008742),
        (0, 300, 0.0, 0.012221),
    ],
)
def test_clopper_pearson_matches_reference_values(k, n, lower, upper):
    lo, hi = clopper_pearson(k, n)
    assert lo == pytest.approx(lower, abs=1e-6) and hi == pytest.approx(upper, abs=1e-6)


def test_clopper_pearson_rejects_impossible_counts():
    with pytest.raises(ValueError, match="errors ≤ trials"):
        clopper_pearson(11, 10)
    with pytest.raises(ValueError, match="confidence"):
        clopper_pearson(1, 10, confidence=1.0)


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 7), (3, 7), (7, 7), (1, 300), (12, 500), (499, 500)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_clopper_pearson_matches_scipy_exact_interval(k, n, confidence):
    stats = pytest.importorskip("scipy.stats", reason="scipy (train extra) gives the reference interval")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    assert clopper_pearson(k, n, confidence) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_error_rates_count_accepted_attacks_and_rejected_live():
    from mmdg_edge.stats import Rate, attacks_needed, error_rates

    apcer, bpcer = error_rates([0, 0, 0, 1, 1], [True, False, False, True, False])
    assert apcer == Rate.from_counts(1, 3) and bpcer == Rate.from_counts(1, 2)
    assert Rate.from_dict(apcer.to_dict()) == apcer
    for target in (0.3, 0.1, 0.05, 0.01):  # the fewest attacks whose error-free interval shows the target
        needed = attacks_needed(target)
        assert clopper_pearson(0, needed)[1] <= target < clopper_pearson(0, needed - 1)[1]
    with pytest.raises(ValueError, match="inconsistent"):
        Rate.from_dict({**apcer.to_dict(), "value": 0.9})
