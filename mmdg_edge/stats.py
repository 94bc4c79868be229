"""Error rates with exact binomial confidence intervals, dependency-free (the kiosk install has no scipy).

``Rate`` is the one rates model of the SDK: calibration, training metrics and the ISO/IEC 30107-3
report all count errors over trials and attach a Clopper–Pearson interval. The bounds are found by
bisection on the binomial CDF, computed in log space with ``math.lgamma``; this is the definition
of the interval, not an approximation of it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Sequence, Tuple

import numpy as np


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


@dataclass(frozen=True)
class Rate:
    """An error rate: ``errors`` of ``trials``, its ``value`` and the exact interval [lower, upper]."""

    errors: int
    trials: int
    value: float
    lower: float
    upper: float

    @classmethod
    def from_counts(cls, errors: int, trials: int, confidence: float = 0.95) -> "Rate":
        """errors / trials with its Clopper–Pearson interval."""
        lower, upper = clopper_pearson(int(errors), int(trials), confidence)
        return cls(int(errors), int(trials), errors / trials, lower, upper)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Rate":
        """Read a rate back (a saved profile or report) and check it is consistent."""
        if not isinstance(data, dict) or set(data) != {"errors", "trials", "value", "lower", "upper"}:
            raise ValueError(f"Rate: expected errors, trials, value, lower, upper, got {data!r}")
        rate = cls(**data)
        if not (0 <= rate.errors <= rate.trials and rate.trials >= 1 and rate.value == rate.errors / rate.trials
                and 0.0 <= rate.lower <= rate.value <= rate.upper <= 1.0):
            raise ValueError(f"Rate: inconsistent counts and interval {data!r}")
        return rate


def error_rates(labels: Sequence[int], accepted: Sequence[bool], confidence: float = 0.95) -> Tuple[Rate, Rate]:
    """(APCER, BPCER) of decisions: attacks (label 0) accepted, and live samples (label 1) not accepted.

    Args:
        labels: 1 live, 0 attack.
        accepted: per sample, True where the system let it through as live.
        confidence: coverage of the intervals.
    """
    labels, accepted = np.asarray(labels), np.asarray(accepted, bool)
    if labels.ndim != 1 or labels.shape != accepted.shape:
        raise ValueError(f"error_rates: labels and decisions need one length, got {labels.shape} and {accepted.shape}")
    attacks, live = labels == 0, labels == 1
    if not attacks.any() or not live.any():
        raise ValueError("error_rates: both live (1) and attack (0) samples are needed")
    return (Rate.from_counts(int((accepted & attacks).sum()), int(attacks.sum()), confidence),
            Rate.from_counts(int((~accepted & live).sum()), int(live.sum()), confidence))


def attacks_needed(target: float) -> int:
    """Attack presentations needed before zero errors can show an APCER of ``target`` at all.

    With no error in n trials the upper end of the 95 % Clopper–Pearson interval reported
    everywhere here is 1 − 0.025^(1/n); it reaches ``target`` only from n = ln 0.025 / ln(1 − target)
    (≈ 3.7/target: the one-sided rule of three, 3/n, would claim a bound the report does not show).

    Example:
        >>> attacks_needed(0.05), attacks_needed(0.01)
        (72, 368)
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target: expected an APCER in (0, 1), got {target}")
    return math.ceil(math.log(0.025) / math.log1p(-target) - 1e-9)


def smallest_showable_apcer(attacks: int) -> float:
    """The lowest APCER target ``attacks`` attack presentations can show: with no error, the upper end
    of the 95 % Clopper–Pearson interval, 1 − 0.025^(1/n) (the inverse of ``attacks_needed``; 1 for none).

    Example:
        >>> round(smallest_showable_apcer(30), 4), smallest_showable_apcer(0)
        (0.1157, 1.0)
    """
    if isinstance(attacks, bool) or not isinstance(attacks, int) or attacks < 0:
        raise ValueError(f"attacks: expected an int ≥ 0, got {attacks!r}")
    return 1.0 if attacks == 0 else 1.0 - 0.025 ** (1.0 / attacks)
