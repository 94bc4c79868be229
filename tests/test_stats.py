"""Clopper–Pearson intervals against published values (they equal scipy's beta quantiles)."""
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
