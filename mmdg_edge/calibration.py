"""Operating point on the user's own camera: pick the threshold for a target APCER, write a device profile.

Thresholds shipped with a model were chosen on someone else's camera and lighting. Calibration
scores the user's own live and attack captures, picks the operating point whose APCER on them is at
most the target, and reports APCER/BPCER with exact Clopper–Pearson 95 % intervals *as the detector
will decide*: a score within the uncertainty band of the threshold is "uncertain", never live, so
the rates are counted with that band in force. It refuses what cannot be shown: a target that no
threshold meets (attacks scoring 1.0), or too few attacks for the target to be visible at all. The
JSON profile binds the camera serial and the exact model file (its SHA-256 and precision), which
``Detector.load(profile=...)`` checks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .profile import MIN_THRESHOLD, CalibrationReport, DeviceProfile
from .stats import Rate, attacks_needed, smallest_showable_apcer

if TYPE_CHECKING:
    from .detector import Detector

__all__ = [
    "HeldOutReport", "accepts", "calibrate_on_collection", "calibrate_scores", "check_attack_sample", "check_collection_sample",
    "collect_scores",
    "collection_scores", "create_profile", "threshold_for_apcer",
]


def accepts(scores: Sequence[float], threshold: float, band: float) -> np.ndarray:
    """Which scores the detector lets through as live: at or above the threshold and outside the band."""
    scores = np.asarray(scores, np.float64)
    return (scores >= threshold) & ~(np.abs(scores - threshold) < band)


def threshold_for_apcer(attack_scores: Sequence[float], target_apcer: float) -> float:
    """The smallest threshold t with APCER = #(attack score ≥ t) / #attacks ≤ target.

    Live is accepted when score ≥ t. With k = ⌊target·n⌋ attacks allowed through, t sits just
    above the (k+1)-th highest attack score (capped below 1: the caller checks the target is met).
    """
    scores = np.sort(np.asarray(attack_scores, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise ValueError("attack_scores: at least one attack score is needed to calibrate")
    if not 0.0 <= target_apcer < 1.0:
        raise ValueError(f"target_apcer: expected a value in [0, 1), got {target_apcer}")
    allowed = int(math.floor(target_apcer * scores.size + 1e-9))
    return float(min(np.nextafter(scores[allowed], np.inf), np.nextafter(1.0, 0.0)))


def calibrate_scores(live_scores: Sequence[float], attack_scores: Sequence[float], target_apcer: float,
                     uncertainty_band: float = 0.0) -> CalibrationReport:
    """Choose the operating point on these scores and report the detector's APCER/BPCER there.

    The point of acceptance (threshold + band) is the lowest with APCER ≤ target; the threshold
    sits ``uncertainty_band`` below it, so the scores the detector will call "uncertain" count as
    not accepted in both rates.

    Raises:
        ValueError: no live or too few attack scores for the target (fewer than
            ``stats.attacks_needed(target)``), a target outside (0, 1), or a target that no
            threshold below 1 meets (attacks scoring 1.0).
    """
    live = np.asarray(live_scores, dtype=np.float64)
    attack = np.asarray(attack_scores, dtype=np.float64)
    if live.size == 0:
        raise ValueError("live_scores: at least one live score is needed to report BPCER")
    check_attack_sample(attack.size, target_apcer)
    if not 0.0 <= uncertainty_band < 0.5:
        raise ValueError(f"uncertainty_band: expected a value in [0, 0.5), got {uncertainty_band}")
    acceptance = threshold_for_apcer(attack, target_apcer)
    # A profile's threshold stays above its band and MIN_THRESHOLD (profile.py): raising it only lets fewer attacks through.
    threshold = max(acceptance - uncertainty_band, float(np.nextafter(uncertainty_band, 1.0)), MIN_THRESHOLD)
    while accepts(attack, threshold, uncertainty_band).mean() > target_apcer and threshold < 1.0 - uncertainty_band:
        threshold = float(np.nextafter(threshold, 1.0))  # floating-point rounding of acceptance - band
    passed = accepts(attack, threshold, uncertainty_band)
    if passed.mean() > target_apcer or threshold + uncertainty_band >= 1.0:
        top = int((attack >= attack.max()).sum())
        raise ValueError(f"target APCER {target_apcer:.2%} cannot be met: {top} attack framesets score "
                         f"{attack.max():.6f} and no threshold below 1 rejects them")
    return CalibrationReport(
        threshold=float(threshold), uncertainty_band=float(uncertainty_band), target_apcer=float(target_apcer),
        apcer=Rate.from_counts(int(passed.sum()), attack.size),
        bpcer=Rate.from_counts(int((~accepts(live, threshold, uncertainty_band)).sum()), live.size),
    )


def check_attack_sample(attacks: int, target_apcer: float, whose: str = "") -> None:
    """Refuse a target ``attacks`` attack framesets cannot show, naming the target they can show.

    Run it before any work whose result it would refuse (``bundle`` checks the validation subjects'
    recorded framesets before exporting). ``whose`` says whose framesets they are (" of ...").

    Raises:
        ValueError: fewer than ``stats.attacks_needed(target_apcer)``.
    """
    needed = attacks_needed(target_apcer)
    if attacks >= needed:
        return
    can_show = smallest_showable_apcer(int(attacks))
    instead = f", or ask for --target-apcer {math.ceil(can_show * 1000) / 1000:g}" if attacks else ""
    raise ValueError(
        f"{attacks} attack framesets{whose} cannot show an APCER of {target_apcer:.2%}: with no error the 95 % "
        f"interval's upper bound falls to the target only from n = ln 0.025 / ln(1 − target), so at least {needed} "
        f"are needed; {attacks} can show {can_show:.1%} at best (1 − 0.025^(1/n)). Collect {needed - attacks} more"
        f"{instead}")


def check_collection_sample(captures: Sequence[Any], splits: Any, target_apcer: float) -> None:
    """Before anything is scored or exported: can the validation subjects' recorded attack framesets
    show the target at all? (Framesets without a face count here; scoring may find fewer.)"""
    recorded = sum(c.frames for c in splits.of(captures, "val") if c.is_attack)
    check_attack_sample(recorded, target_apcer, " in the validation subjects' recordings")


def create_profile(report: CalibrationReport, *, camera_serial: str, camera_firmware: str, model_sha256: str,
                   model_precision: str) -> DeviceProfile:
    """A DeviceProfile from a calibration report, stamped with the current UTC date."""
    return DeviceProfile(report=report, camera_serial=camera_serial, camera_firmware=camera_firmware,
                         model_sha256=model_sha256, model_precision=model_precision,
                         created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def collect_scores(detector: "Detector", framesets: Iterable[Any], label: str = "") -> Tuple[List[float], int, str, str]:
    """Model scores of every frameset with a usable face, all from one camera.

    Args:
        detector: the detector to score with (calibration runs it with physics off and no band).
        framesets: the captures.
        label: "live" or "attack" when the captures are of that class; a frameset whose own ground
            truth (``metadata["truth"]["label"]``, e.g. the synthetic camera's) says otherwise is
            refused.

    Returns:
        ``(scores, skipped, serial, firmware)``: skipped counts framesets without a score (no face,
        low quality, errors); serial and firmware are the one camera's.

    Raises:
        ValueError: framesets from more than one camera, or one whose ground truth contradicts ``label``.
    """
    scores: List[float] = []
    skipped, serial, firmware = 0, None, ""
    for index, frameset in enumerate(framesets):
        if serial is None:
            serial, firmware = frameset.serial, str(frameset.metadata.get("firmware", ""))
        elif frameset.serial != serial:
            raise ValueError(f"frameset {index} comes from camera {frameset.serial!r}, the captures before it from "
                             f"{serial!r}: calibrate one camera at a time")
        truth = (frameset.metadata.get("truth") or {}).get("label")
        if label and truth and truth != label:
            raise ValueError(f"frameset {index} is labelled {truth!r} in its metadata but was given as {label!r}")
        verdict = detector.check(frameset)
        if verdict.score is None:
            skipped += 1
        else:
            scores.append(verdict.score)
    return scores, skipped, serial or "", firmware


@dataclass(frozen=True)
class HeldOutReport:
    """The rates an operating point has on captures it was not chosen on (a collection's test subjects):
    BPCER, APCER per attack species, and the framesets without a usable face (non-responses)."""

    threshold: float
    uncertainty_band: float
    bpcer: Rate
    apcer: Dict[str, Rate]
    non_response: Rate

    def to_dict(self) -> Dict[str, Any]:
        return {"threshold": self.threshold, "uncertainty_band": self.uncertainty_band, "bpcer": self.bpcer.to_dict(),
                "apcer": {name: rate.to_dict() for name, rate in self.apcer.items()},
                "non_response": self.non_response.to_dict()}

    def format_table(self) -> str:
        rows = [(f"APCER {name}", rate) for name, rate in self.apcer.items()]
        rows += [("BPCER", self.bpcer), ("non-response", self.non_response)]
        lines = [f"held-out subjects at threshold {self.threshold:.4f} (band ±{self.uncertainty_band}):",
                 f"  {'rate':<22}{'errors':>10}{'%':>8}  95% CI"]
        lines += [f"  {name:<22}{f'{r.errors}/{r.trials}':>10}{100 * r.value:>8.2f}  [{100 * r.lower:.2f}, "
                  f"{100 * r.upper:.2f}]" for name, r in rows]
        return "\n".join(lines)


def collection_scores(engine: Any, folder: Any, captures: Sequence[Any]) -> Tuple[List[np.ndarray], List[int]]:
    """Per capture, the engine's scores of its faces and its number of framesets (cached crops)."""
    from .collection import capture_crops
    from .preprocess import PreprocessConfig, images_to_input

    preprocess = PreprocessConfig.from_dict(engine.metadata["preprocess"])
    scores, framesets = [], []
    for capture in captures:
        crops = capture_crops(folder, capture, preprocess=preprocess)
        batches = [engine.run(*images_to_input(crops.images[i:i + 16], crops.mask[i:i + 16], preprocess))
                   for i in range(0, len(crops.images), 16)]
        scores.append(np.concatenate(batches) if batches else np.zeros(0, np.float32))
        framesets.append(crops.framesets)
    return scores, framesets


def calibrate_on_collection(engine: Any, folder: Any, target_apcer: float, uncertainty_band: float = 0.05,
                            split_seed: Optional[int] = None) -> Tuple[DeviceProfile, HeldOutReport]:
    """Choose the operating point on a collection's validation subjects; report it on its test subjects.

    The model alone scores the cached face crops (as calibration always does: no physical checks,
    no band); the threshold never sees a test subject or test instrument, and neither split holds
    one the model was fine-tuned on (``collection.splits_for_model``; ``split_seed`` defaults to the
    model's own).

    Returns:
        ``(profile, held_out)``: the device profile (bound to the engine's model file and the
        collection's camera) and the rates on the test subjects.

    Raises:
        ValueError: captures from more than one camera, or what ``calibrate_scores`` refuses.
    """
    from .collection import load_manifest, splits_for_model

    captures = load_manifest(folder)
    cameras = sorted({c.camera_serial for c in captures})
    if len(cameras) != 1:
        raise ValueError(f"the collection holds captures of cameras {cameras}: calibrate one camera at a time")
    splits = splits_for_model(folder, captures, engine.metadata["provenance"], split_seed)
    check_collection_sample(captures, splits, target_apcer)
    val, test = splits.of(captures, "val"), splits.of(captures, "test")
    val_scores, _ = collection_scores(engine, folder, val)
    live = np.concatenate([s for c, s in zip(val, val_scores) if not c.is_attack])
    attacks = np.concatenate([s for c, s in zip(val, val_scores) if c.is_attack])
    report = calibrate_scores(live, attacks, target_apcer, uncertainty_band)
    profile = create_profile(report, camera_serial=cameras[0], camera_firmware=captures[0].camera_firmware,
                             model_sha256=engine.model_sha256, model_precision=engine.precision)
    test_scores, framesets = collection_scores(engine, folder, test)
    decided = [accepts(s, report.threshold, uncertainty_band) for s in test_scores]
    bona_fide = [d for c, d in zip(test, decided) if not c.is_attack]
    if not sum(len(d) for d in bona_fide):
        raise ValueError("no bona fide face was found in the test subjects' recordings: nothing to report BPCER on")
    apcer = {}
    for species in sorted({c.species for c in test if c.is_attack}):
        passed = [d for c, d in zip(test, decided) if c.species == species]
        apcer[species] = Rate.from_counts(int(sum(p.sum() for p in passed)), sum(len(p) for p in passed))
    answered = sum(len(s) for s in test_scores)
    held_out = HeldOutReport(report.threshold, uncertainty_band,
                             Rate.from_counts(int(sum((~d).sum() for d in bona_fide)), sum(len(d) for d in bona_fide)),
                             apcer, Rate.from_counts(sum(framesets) - answered, sum(framesets)))
    return profile, held_out
