"""ISO/IEC 30107-3 presentation-attack-detection report: per-species APCER, BPCER, BPCER at fixed
APCER, non-response rates, Clopper–Pearson intervals, a text table, ROC and DET plots.

Conventions as in ``metrics.py``: label 1 = live (bona fide), 0 = attack; scores are live
probabilities; accepted as live when ``score >= threshold``.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import require
from ..stats import Rate
from .metrics import _attack_groups, _check, threshold_for_apcer

PathLike = Union[str, "os.PathLike[str]"]

# ISO/IEC 30107-3 names BPCER at APCER = 1/x as BPCERx.
BPCER_TARGETS: Dict[str, float] = {"BPCER100": 0.01, "BPCER20": 0.05, "BPCER10": 0.10}


@dataclass(frozen=True)
class IsoReport:
    """The ISO/IEC 30107-3 rates of one score set at one threshold.

    ``apcer`` pools every attack; ``apcer_max`` is the worst species (``worst_species``), the
    figure ISO/IEC 30107-3 asks for. ``bpcer_at_apcer`` maps BPCER100/20/10 to the BPCER at the
    lowest threshold whose worst-species APCER is at most 1 %, 5 %, 10 % (``thresholds_at_apcer``).
    Rates are over the samples that got a decision; the non-response rates count the others.
    """

    threshold: float
    confidence: float
    apcer_per_species: Dict[str, Rate]
    worst_species: str
    apcer_max: Rate
    apcer: Rate
    bpcer: Rate
    acer: float
    bpcer_at_apcer: Dict[str, Rate]
    thresholds_at_apcer: Dict[str, float]
    attack_non_response: Rate
    bona_fide_non_response: Rate
    non_response: Rate

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-serialisable dict (rates become dicts of their fields)."""
        return asdict(self)


def _check_responded(responded: Optional[Sequence[bool]], count: int) -> np.ndarray:
    if responded is None:
        return np.ones(count, dtype=bool)
    responded = np.asarray(responded)
    if responded.shape != (count,) or responded.dtype != bool:
        raise ValueError(f"responded: expected {count} booleans (one per sample), got dtype {responded.dtype} "
                         f"shape {responded.shape}")
    return responded


def iso_report(
    scores: Sequence[float],
    labels: Sequence[int],
    species: Optional[Sequence[Any]] = None,
    *,
    threshold: float,
    responded: Optional[Sequence[bool]] = None,
    confidence: float = 0.95,
) -> IsoReport:
    """ISO/IEC 30107-3 evaluation of one score set at ``threshold``.

    Args:
        scores: live probabilities; entries of samples that got no decision may be NaN.
        labels: 1 live, 0 attack.
        species: attack species per sample (e.g. "print", "replay", "mask"; live entries are
            ignored). None treats all attacks as one species, "attack".
        threshold: the operating point, chosen on validation data.
        responded: per sample, False where the system gave no decision (no face found, frame
            timeout). Those samples count in the non-response rates only. None: all responded.
        confidence: coverage of the Clopper–Pearson intervals.

    Returns:
        An ``IsoReport``; ``format_table(report)`` renders it.

    Raises:
        ValueError: mismatched lengths, labels other than 0/1, non-finite scores among the
            responded samples, or a class with no responded sample.

    Example:
        >>> report = iso_report(scores, labels, species, threshold=0.5)
        >>> print(format_table(report))
    """
    labels_all = np.asarray(labels)
    responded = _check_responded(responded, labels_all.size)
    if np.asarray(scores).shape != labels_all.shape:
        raise ValueError(f"scores/labels: expected one length, got {np.shape(scores)} and {labels_all.shape}")
    species_all = None if species is None else np.asarray([str(s) for s in species], dtype=object)
    if species_all is not None and species_all.shape != labels_all.shape:
        raise ValueError(f"species: expected one entry per sample ({labels_all.size}), got {species_all.size}")
    decided_scores, decided_labels = _check(np.asarray(scores, np.float64)[responded], labels_all[responded])
    decided_species = None if species_all is None else species_all[responded]

    per_species = {}
    for name, members in _attack_groups(decided_labels, decided_species).items():
        per_species[name] = Rate.from_counts(int((decided_scores[members] >= threshold).sum()), members.size, confidence)
    worst = max(per_species, key=lambda name: (per_species[name].value, per_species[name].trials))
    attacks, live = decided_scores[decided_labels == 0], decided_scores[decided_labels == 1]
    apcer = Rate.from_counts(int((attacks >= threshold).sum()), attacks.size, confidence)
    bpcer = Rate.from_counts(int((live < threshold).sum()), live.size, confidence)

    at_apcer, thresholds = {}, {}
    for name, target in BPCER_TARGETS.items():
        thresholds[name] = threshold_for_apcer(decided_scores, decided_labels, target, decided_species)
        at_apcer[name] = Rate.from_counts(int((live < thresholds[name]).sum()), live.size, confidence)

    is_attack = labels_all == 0
    return IsoReport(
        threshold=float(threshold), confidence=confidence, apcer_per_species=per_species, worst_species=worst,
        apcer_max=per_species[worst], apcer=apcer, bpcer=bpcer, acer=(per_species[worst].value + bpcer.value) / 2,
        bpcer_at_apcer=at_apcer, thresholds_at_apcer=thresholds,
        attack_non_response=Rate.from_counts(int((~responded & is_attack).sum()), int(is_attack.sum()), confidence),
        bona_fide_non_response=Rate.from_counts(int((~responded & ~is_attack).sum()), int((~is_attack).sum()),
                                                confidence),
        non_response=Rate.from_counts(int((~responded).sum()), responded.size, confidence),
    )


def _rate_cells(rate: Rate) -> Tuple[str, str, str]:
    return (f"{rate.errors}/{rate.trials}", f"{100 * rate.value:.2f}",
            f"[{100 * rate.lower:.2f}, {100 * rate.upper:.2f}]")


def format_table(report: IsoReport) -> str:
    """The report as a fixed-width text table: one row per attack species, then the summary rates (%).

    ACER here follows ISO/IEC 30107-3: (APCER_max + BPCER) / 2 over the worst species.
    """
    ci = f"{100 * report.confidence:g}% CI"
    rows = [(f"APCER {name}", *_rate_cells(rate)) for name, rate in report.apcer_per_species.items()]
    rows += [
        (f"APCER_max ({report.worst_species})", *_rate_cells(report.apcer_max)),
        ("APCER pooled", *_rate_cells(report.apcer)),
        ("BPCER", *_rate_cells(report.bpcer)),
        ("ACER (worst species)", "", f"{100 * report.acer:.2f}", ""),
    ]
    rows += [(f"{name} (t={report.thresholds_at_apcer[name]:.4f})", *_rate_cells(rate))
             for name, rate in report.bpcer_at_apcer.items()]
    rows += [
        ("non-response, attack", *_rate_cells(report.attack_non_response)),
        ("non-response, bona fide", *_rate_cells(report.bona_fide_non_response)),
        ("non-response, all", *_rate_cells(report.non_response)),
    ]
    header = ("rate", "errors", "%", ci)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(cells))

    title = f"ISO/IEC 30107-3 report at threshold {report.threshold:.4f}"
    return "\n".join([title, line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def _new_figure():
    """A figure on the Agg canvas directly: no pyplot, so no process-wide backend switch."""
    require("matplotlib", "train")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def save_roc_plot(scores: Sequence[float], labels: Sequence[int], path: PathLike,
                  threshold: Optional[float] = None, title: str = "ROC curve") -> Path:
    """ROC curve (live acceptance 1 − BPCER against APCER) as a PNG, with the operating point marked.

    Args:
        scores: live probabilities.
        labels: 1 live, 0 attack.
        path: the .png file to write (parent folders are created).
        threshold: marks this operating point when given.

    Returns:
        The written path.
    """
    path = _png_path(path)
    scores, labels = _check(scores, labels)
    metrics = require("sklearn.metrics", "train")
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    figure = _new_figure()
    axes = figure.add_subplot()
    axes.plot(fpr, tpr, label=f"ROC (AUC = {metrics.roc_auc_score(labels, scores):.4f})")
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    if threshold is not None:
        apcer = float((scores[labels == 0] >= threshold).mean())
        bpcer = float((scores[labels == 1] < threshold).mean())
        axes.plot([apcer], [1 - bpcer], "o", label=f"threshold {threshold:.4f}")
    axes.set(xlabel="APCER (attacks accepted)", ylabel="1 − BPCER (live accepted)", xlim=(0, 1), ylim=(0, 1.01),
             title=title)
    axes.legend(loc="lower right")
    return _save(figure, path)


def save_det_plot(scores: Sequence[float], labels: Sequence[int], path: PathLike, threshold: Optional[float] = None,
                  title: str = "DET curve") -> Path:
    """DET curve (BPCER against APCER on normal-deviate axes, as ISO/IEC 19795-1) as a PNG.

    A rate of exactly 0 or 1 has no normal deviate; on a small collection most points of the curve
    are such rates (no attack accepted, say), and leaving them out left an empty plot. They are drawn
    half a presentation in from the edge, at 0.5/n and 1 − 0.5/n for n attacks (APCER) or n bona
    fide presentations (BPCER), and the axes reach that far. The operating point, when
    ``threshold`` is given, is drawn the same way.

    Returns:
        The written path.
    """
    path = _png_path(path)
    scores, labels = _check(scores, labels)
    norm = require("scipy.stats", "train").norm
    attack, live = np.sort(scores[labels == 0]), np.sort(scores[labels == 1])
    attacks, bona_fide = attack.size, live.size
    # Every threshold, from below all scores to above them: the whole staircase, ends included.
    thresholds = np.append(np.unique(scores), np.inf)
    apcer = 1.0 - np.searchsorted(attack, thresholds, side="left") / attacks
    bpcer = np.searchsorted(live, thresholds, side="left") / bona_fide

    def shown(apcer_values: np.ndarray, bpcer_values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        return (norm.ppf(np.clip(apcer_values, 0.5 / attacks, 1 - 0.5 / attacks)),
                norm.ppf(np.clip(bpcer_values, 0.5 / bona_fide, 1 - 0.5 / bona_fide)))

    figure = _new_figure()
    axes = figure.add_subplot()
    axes.plot(*shown(apcer, bpcer), marker=".", label=f"{attacks} attacks, {bona_fide} bona fide (0 and 1 drawn "
                                                      "at half a presentation)")
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95])
    labels_text = [f"{100 * t:g}%" for t in ticks]
    for setter_ticks, setter_labels in ((axes.set_xticks, axes.set_xticklabels), (axes.set_yticks, axes.set_yticklabels)):
        setter_ticks(norm.ppf(ticks))
        setter_labels(labels_text)
    fewest = min(attacks, bona_fide)
    limits = norm.ppf([min(0.0005, 0.25 / fewest), max(0.99, 1 - 0.25 / fewest)])
    if threshold is not None:
        point = shown(np.array([(scores[labels == 0] >= threshold).mean()]),
                      np.array([(scores[labels == 1] < threshold).mean()]))
        axes.plot(*point, "o", label=f"operating point (threshold {threshold:.4f})")
    axes.legend(loc="best", fontsize="small")
    axes.set(xlabel="APCER (attacks accepted)", ylabel="BPCER (live rejected)", xlim=limits, ylim=limits, title=title)
    axes.grid(True, linestyle=":")
    return _save(figure, path)


def _png_path(path: PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path: expected a .png file, got {str(path)!r}")
    return path


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", bbox_inches="tight")
    return path
