"""Anti-spoofing metrics (METHOD.md §5): HTER, AUC, EER, TPR@FPR=1 %, and ISO/IEC 30107-3 APCER/BPCER/ACER.

Live is the positive class (label 1); scores are live probabilities; a sample is accepted as live
when score ≥ threshold. APCER = attacks accepted / attacks, BPCER = live rejected / live, and
HTER = ACER = (APCER + BPCER) / 2 at that threshold.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import require
from ..stats import clopper_pearson


def _check(scores: Sequence[float], labels: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores/labels: expected two 1-D arrays of one length, got {scores.shape} and {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels: expected 1 (live) or 0 (attack) only")
    if labels.min() == labels.max():
        raise ValueError("labels: both live (1) and attack (0) samples are needed")
    if not np.isfinite(scores).all():
        raise ValueError("scores: contain NaN or infinite values")
    return scores, labels


def threshold_at_eer(scores: Sequence[float], labels: Sequence[int]) -> float:
    """The threshold where APCER and BPCER are closest (the equal error rate point)."""
    scores, labels = _check(scores, labels)
    metrics = require("sklearn.metrics", "train")
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores, drop_intermediate=False)
    index = int(np.argmin(np.abs((1 - tpr) - fpr)))
    return float(min(thresholds[index], 1.0))


def error_rates(scores: Sequence[float], labels: Sequence[int], threshold: float) -> Dict[str, Any]:
    """APCER, BPCER and ACER at ``threshold`` with their counts and Clopper–Pearson 95 % intervals."""
    scores, labels = _check(scores, labels)
    attacks, live = scores[labels == 0], scores[labels == 1]
    accepted, rejected = int((attacks >= threshold).sum()), int((live < threshold).sum())
    apcer, bpcer = accepted / attacks.size, rejected / live.size
    return {"apcer": apcer, "bpcer": bpcer, "acer": (apcer + bpcer) / 2,
            "apcer_ci": clopper_pearson(accepted, attacks.size), "bpcer_ci": clopper_pearson(rejected, live.size),
            "attacks": int(attacks.size), "live": int(live.size)}


def compute_metrics(scores: Sequence[float], labels: Sequence[int], threshold: Optional[float] = None) -> Dict[str, Any]:
    """Every benchmark metric of a score set.

    Args:
        scores: live probabilities.
        labels: 1 live, 0 attack.
        threshold: the operating point chosen on validation data; None uses these scores' EER
            threshold (then HTER equals the EER, an optimistic number: report it as such).

    Returns:
        dict with hter, auc, eer, tpr_at_fpr_1, apcer, bpcer, acer, threshold, plus the intervals.
    """
    scores, labels = _check(scores, labels)
    metrics = require("sklearn.metrics", "train")
    fpr, tpr, _ = metrics.roc_curve(labels, scores, drop_intermediate=False)
    eer_index = int(np.argmin(np.abs((1 - tpr) - fpr)))
    eer = float((fpr[eer_index] + 1 - tpr[eer_index]) / 2)
    chosen = threshold_at_eer(scores, labels) if threshold is None else float(threshold)
    rates = error_rates(scores, labels, chosen)
    within = tpr[fpr <= 0.01]
    return {
        "hter": rates["acer"], "auc": float(metrics.roc_auc_score(labels, scores)), "eer": eer,
        "tpr_at_fpr_1": float(within.max()) if within.size else 0.0, "threshold": chosen, **rates,
    }
