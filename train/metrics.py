"""Anti-spoofing metrics (METHOD.md §5): HTER, AUC, EER, TPR@FPR=1 %, and ISO/IEC 30107-3 APCER/BPCER/ACER.

Conventions everywhere in this module and in ``reporting.py``: live (bona fide) is the positive
class, label 1; attacks are label 0; scores are live probabilities; a sample is accepted as live
when ``score >= threshold``. APCER = attacks accepted / attacks, BPCER = live rejected / live, both
``stats.Rate``; HTER = (APCER + BPCER) / 2 with all attacks pooled (the benchmarks' figure). The
ISO/IEC 30107-3 ACER of ``reporting.py`` takes the worst attack species' APCER instead.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .. import calibration, stats
from ..errors import require
from ..stats import Rate


def _check(scores: Sequence[float], labels: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"scores/labels: expected two 1-D arrays of one length, got {scores.shape} and {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels: expected 1 (live) or 0 (attack) only, got values {np.unique(labels)[:5].tolist()}")
    if labels.size == 0 or labels.min() == labels.max():
        raise ValueError("labels: both live (1) and attack (0) samples are needed")
    if not np.isfinite(scores).all():
        raise ValueError(f"scores: {int((~np.isfinite(scores)).sum())} NaN or infinite values")
    return scores, labels.astype(np.int64)


def threshold_at_eer(scores: Sequence[float], labels: Sequence[int]) -> float:
    """The threshold where APCER and BPCER are closest (the equal error rate point), in the middle of
    the gap between the scores on either side of it.

    Every threshold in that gap gives the same rates on these scores; the ROC's own point is the
    gap's upper end, a score itself: with classes apart, the lowest live score, so that live faces
    scoring a little under the validation ones would fall below it or into the uncertainty band.
    Choose it on validation scores and pass it to ``compute_metrics`` for the test scores.

    >>> threshold_at_eer([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    0.5
    """
    scores, labels = _check(scores, labels)
    fpr, tpr, thresholds = require("sklearn.metrics", "train").roc_curve(labels, scores, drop_intermediate=False)
    return _eer_threshold(thresholds, int(np.argmin(np.abs((1 - tpr) - fpr))), scores)


def _eer_threshold(thresholds: np.ndarray, index: int, scores: np.ndarray) -> float:
    # sklearn's first threshold (accept nobody) is +inf or max + 1: cap it at a probability.
    upper = float(min(thresholds[index], 1.0))
    below = scores[scores < upper]
    return (upper + float(below.max())) / 2 if below.size else upper


def threshold_for_apcer(
    scores: Sequence[float], labels: Sequence[int], target: float, species: Optional[Sequence[Any]] = None
) -> float:
    """The lowest threshold whose APCER is at most ``target`` (so BPCER is the lowest possible).

    With ``species`` (one entry per sample; live entries are ignored), the constraint holds for
    every attack species, i.e. for the worst species' APCER (ISO/IEC 30107-3 reports the maximum
    over species). The threshold sits just above (``nextafter``) the highest attack score that
    must be rejected, so it reproduces the rates exactly on these scores.

    Args:
        scores: live probabilities, typically on validation data.
        labels: 1 live, 0 attack.
        target: the APCER bound in [0, 1], e.g. 0.01 for BPCER100.
        species: optional attack species per sample.

    Returns:
        The threshold; the lowest score (everything accepted) when the target allows every attack.

    Raises:
        ValueError: bad scores/labels, target outside [0, 1], or species of another length.
    """
    scores, labels = _check(scores, labels)
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target: expected an APCER in [0, 1], got {target}")
    thresholds = [float(scores.min())]
    if target < 1.0:  # the rule per species is the calibration's: just above the first attack to reject
        thresholds += [calibration.threshold_for_apcer(scores[members], target)
                       for members in _attack_groups(labels, species).values()]
    return max(thresholds)


def threshold_for_bpcer(live_scores: Sequence[float], target: float) -> float:
    """The highest threshold whose BPCER on these bona fide scores is at most ``target`` (so APCER is
    the lowest possible): the ⌊target·n⌋+1-th lowest live score, so that at most ⌊target·n⌋ live
    scores lie below it (fewer where scores tie). Choose it on validation scores.

    Args:
        live_scores: live probabilities of bona fide samples (or presentations), finite.
        target: the BPCER bound in [0, 1), e.g. 0.05.

    Raises:
        ValueError: no scores, non-finite scores, or a target outside [0, 1).

    >>> threshold_for_bpcer([0.9, 0.2, 0.8, 0.7], 0.25), threshold_for_bpcer([0.9, 0.2, 0.8, 0.7], 0.05)
    (0.7, 0.2)
    """
    scores = np.sort(np.asarray(live_scores, np.float64).ravel())
    if scores.size == 0 or not np.isfinite(scores).all():
        raise ValueError(f"live_scores: expected finite bona fide scores, got {scores.size} with "
                         f"{int((~np.isfinite(scores)).sum())} NaN or infinite")
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target: expected a BPCER in [0, 1), got {target}")
    return float(scores[int(np.floor(target * scores.size + 1e-9))])


def _attack_groups(labels: np.ndarray, species: Optional[Sequence[Any]]) -> Dict[str, np.ndarray]:
    """Indices of the attacks per species name ("attack" for all when species is None)."""
    attacks = labels == 0
    if species is None:
        return {"attack": np.flatnonzero(attacks)}
    names = np.asarray([str(s) for s in species], dtype=object)
    if names.shape != labels.shape:
        raise ValueError(f"species: expected one entry per sample ({labels.size}), got {names.size}")
    return {name: np.flatnonzero(attacks & (names == name)) for name in sorted(set(names[attacks]))}


def error_rates(scores: Sequence[float], labels: Sequence[int], threshold: float) -> Tuple[Rate, Rate]:
    """(APCER, BPCER) at ``threshold`` as ``stats.Rate`` (counts and Clopper–Pearson 95 % intervals)."""
    scores, labels = _check(scores, labels)
    return stats.error_rates(labels, scores >= threshold)


def compute_metrics(scores: Sequence[float], labels: Sequence[int], threshold: Optional[float] = None) -> Dict[str, Any]:
    """Every benchmark metric of a score set (METHOD.md §5).

    Args:
        scores: live probabilities.
        labels: 1 live, 0 attack.
        threshold: the operating point chosen on validation data (``threshold_at_eer`` or
            ``threshold_for_apcer`` there). None uses the EER threshold of these scores
            themselves; HTER then equals the EER up to ties, an optimistic number that must be
            reported as "at EER", not as a validation-chosen HTER.

    Returns:
        dict with ``hter`` ((APCER + BPCER) / 2 over all attacks pooled, the benchmarks' figure),
        ``auc``, ``eer``, ``tpr_at_fpr_1`` (highest live acceptance with APCER ≤ 1 %),
        ``threshold`` and ``apcer``, ``bpcer`` as ``stats.Rate`` (counts and 95 % intervals).

    Raises:
        ValueError: scores/labels of different lengths, labels other than 0/1, a single class,
            or non-finite scores.

    Example:
        >>> compute_metrics([0.9, 0.8, 0.7, 0.3, 0.6, 0.4, 0.2, 0.1], [1, 1, 1, 1, 0, 0, 0, 0], 0.65)["hter"]
        0.125
    """
    scores, labels = _check(scores, labels)
    metrics = require("sklearn.metrics", "train")
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores, drop_intermediate=False)
    eer_index = int(np.argmin(np.abs((1 - tpr) - fpr)))
    eer = float((fpr[eer_index] + 1 - tpr[eer_index]) / 2)
    chosen = _eer_threshold(thresholds, eer_index, scores) if threshold is None else float(threshold)
    apcer, bpcer = stats.error_rates(labels, scores >= chosen)
    within = tpr[fpr <= 0.01]
    return {
        "hter": (apcer.value + bpcer.value) / 2, "auc": float(metrics.auc(fpr, tpr)), "eer": eer,
        "tpr_at_fpr_1": float(within.max()) if within.size else 0.0, "threshold": chosen, "apcer": apcer,
        "bpcer": bpcer,
    }
