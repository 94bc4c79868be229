"""Exact binomial confidence intervals, dependency-free (the kiosk install has no scipy).

Clopper–Pearson bounds are found by bisection on the binomial CDF, computed in log space with
``math.lgamma``; this is the definition of the interval, not an approximation of it.
"""
from __future__ import annotations

import math
from typing import Tuple


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X ≤ k) for X ~ Binomial(n, p)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        for i in range(k + 1)
    ]
    peak = max(log_terms)
    return min(1.0, math.exp(peak) * sum(math.exp(t - peak) for t in log_terms))


def _bisect(fn, target: float, decreasing: bool) -> float:
    low, high = 0.0, 1.0
    for _ in range(60):  # 2^-60: far below any rate a kiosk reports
        mid = 0.5 * (low + high)
        above = fn(mid) > target
        if above == decreasing:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def clopper_pearson(errors: int, trials: int, confidence: float = 0.95) -> Tuple[float, float]:
    """Exact two-sided confidence interval of a binomial rate.

    Args:
        errors: observed count k (0 ≤ k ≤ n).
        trials: number of trials n (≥ 1).
        confidence: coverage, e.g. 0.95.

    Returns:
        ``(lower, upper)``; lower is 0 when k = 0 and upper is 1 when k = n.

    Raises:
        ValueError: counts out of range or confidence not in (0, 1).

    Example:
        >>> [round(v, 4) for v in clopper_pearson(0, 10)]
        [0.0, 0.3085]
    """
    if trials < 1 or not 0 <= errors <= trials:
        raise ValueError(f"clopper_pearson: need 0 ≤ errors ≤ trials and trials ≥ 1, got {errors}/{trials}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"clopper_pearson: confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    # lower: P(X ≥ k; p) = α/2  ⇔  1 − CDF(k−1; p) = α/2 (CDF decreases with p)
    lower = 0.0 if errors == 0 else _bisect(lambda p: 1.0 - _binom_cdf(errors - 1, trials, p), alpha / 2, False)
    # upper: P(X ≤ k; p) = α/2
    upper = 1.0 if errors == trials else _bisect(lambda p: _binom_cdf(errors, trials, p), alpha / 2, True)
    return lower, upper
