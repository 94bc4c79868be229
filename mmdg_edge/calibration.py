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
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .profile import MIN_THRESHOLD, CalibrationReport, DeviceProfile
from .stats import Rate, attacks_needed, smallest_showable_apcer

if TYPE_CHECKING:
    from .detector import Detector

__all__ = [
    "HeldOutReport", "accepts", "calibrate_on_collection", "calibrate_scores", "check_attack_sample",
    "check_collection_sample", "collect_scores", "collection_scores", "create_profile", "presentation_score",
    "threshold_for_apcer",
]


_ROUNDING_STEPS = 64  # far more floats than acceptance - band can be off by; the loop must stay bounded


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


Presentations = Sequence[Union[float, Sequence[float]]]
"""Scores grouped by presentation: one entry per recording (its framesets' scores); a bare number is
a presentation of one frameset."""


def _presentations(scores: Presentations, name: str) -> List[np.ndarray]:
    if isinstance(scores, np.ndarray) and scores.ndim != 1:
        raise ValueError(f"{name}: expected one entry per presentation, got an array of shape {scores.shape}")
    grouped = []
    for index, entry in enumerate(scores):
        frames = np.atleast_1d(np.asarray(entry, dtype=np.float64))
        if frames.ndim != 1 or frames.size == 0 or not np.isfinite(frames).all():
            raise ValueError(f"{name}[{index}]: expected a presentation's finite frameset scores, got {entry!r}")
        grouped.append(frames)
    return grouped


def presentation_score(frame_scores: Sequence[float], is_attack: bool) -> float:
    """The one score that decides a presentation (a recording) as the detector's rule decides frames.

    An attack presentation counts as accepted when any of its framesets is (its highest score): a
    single live frame is what a session vote could build on, so APCER is never understated. A bona
    fide presentation counts as accepted when at least half its framesets are (its ⌈n/2⌉-th highest
    score). Acceptance rises with the score, so comparing this score with the threshold and band is
    exactly that count, and thresholds can be swept over presentations as over framesets.

    >>> presentation_score([0.1, 0.9, 0.2], is_attack=True), presentation_score([0.1, 0.9, 0.2], is_attack=False)
    (0.9, 0.2)
    """
    ordered = np.sort(np.asarray(frame_scores, np.float64))[::-1]
    if ordered.size == 0:
        raise ValueError("frame_scores: a presentation needs at least one scored frameset")
    return float(ordered[0] if is_attack else ordered[(ordered.size + 1) // 2 - 1])


def calibrate_scores(live_scores: Presentations, attack_scores: Presentations, target_apcer: float,
                     uncertainty_band: float = 0.0) -> CalibrationReport:
    """Choose the operating point on these presentations and report the detector's APCER/BPCER there.

    ISO/IEC 30107-3 counts presentations: the framesets of one recording are not independent trials,
    so APCER, BPCER, their intervals and the minimum number of attacks count presentations
    (``presentation_score`` decides each); the frame-level rates are reported beside them. The point
    of acceptance (threshold + band) is the lowest with APCER ≤ target; the threshold sits
    ``uncertainty_band`` below it, so the scores the detector will call "uncertain" count as not
    accepted in both rates.

    Args:
        live_scores, attack_scores: per presentation, its framesets' scores (``Presentations``).

    Raises:
        ValueError: no live or too few attack presentations for the target (fewer than
            ``stats.attacks_needed(target)``), a target outside (0, 1), or a target that no
            threshold below 1 meets (attacks scoring 1.0).
    """
    live, attack = _presentations(live_scores, "live_scores"), _presentations(attack_scores, "attack_scores")
    if not live:
        raise ValueError("live_scores: at least one live presentation is needed to report BPCER")
    check_attack_sample(len(attack), target_apcer)
    if not 0.0 <= uncertainty_band < 0.5:
        raise ValueError(f"uncertainty_band: expected a value in [0, 0.5), got {uncertainty_band}")
    attack_top = np.array([presentation_score(p, True) for p in attack])
    live_top = np.array([presentation_score(p, False) for p in live])
    acceptance = threshold_for_apcer(attack_top, target_apcer)
    # A profile's threshold stays above its band and MIN_THRESHOLD (profile.py): raising it only lets fewer attacks through.
    threshold = max(acceptance - uncertainty_band, float(np.nextafter(uncertainty_band, 1.0)), MIN_THRESHOLD)
    for _ in range(_ROUNDING_STEPS):  # acceptance - band may round to a float a few steps too low
        if accepts(attack_top, threshold, uncertainty_band).mean() <= target_apcer:
            break
        threshold = float(np.nextafter(threshold, 1.0))
    passed = accepts(attack_top, threshold, uncertainty_band)
    if passed.mean() > target_apcer or threshold + uncertainty_band >= 1.0:
        top = int((attack_top >= attack_top.max()).sum())
        raise ValueError(f"target APCER {target_apcer:.2%} cannot be met: {top} attack presentations score "
                         f"{attack_top.max():.6f} and no threshold below 1 rejects them")
    attack_frames, live_frames = np.concatenate(attack), np.concatenate(live)
    return CalibrationReport(
        threshold=float(threshold), uncertainty_band=float(uncertainty_band), target_apcer=float(target_apcer),
        apcer=Rate.from_counts(int(passed.sum()), len(attack)),
        bpcer=Rate.from_counts(int((~accepts(live_top, threshold, uncertainty_band)).sum()), len(live)),
        frame_apcer=Rate.from_counts(int(accepts(attack_frames, threshold, uncertainty_band).sum()), attack_frames.size),
        frame_bpcer=Rate.from_counts(int((~accepts(live_frames, threshold, uncertainty_band)).sum()), live_frames.size),
    )


def check_attack_sample(attacks: int, target_apcer: float, whose: str = "") -> None:
    """Refuse a target ``attacks`` attack presentations cannot show, naming the target they can show.

    Run it before any work whose result it would refuse (``bundle`` checks the validation subjects'
    recordings before exporting). ``whose`` says whose presentations they are (" of ...").

    Raises:
        ValueError: fewer than ``stats.attacks_needed(target_apcer)``.
    """
    needed = attacks_needed(target_apcer)
    if attacks >= needed:
        return
    can_show = smallest_showable_apcer(int(attacks))
    instead = f", or ask for --target-apcer {math.ceil(can_show * 1000) / 1000:g}" if attacks else ""
    raise ValueError(
        f"{attacks} attack presentations (recordings){whose} cannot show an APCER of {target_apcer:.2%}: with no "
        f"error the 95 % interval's upper bound falls to the target only from n = ln 0.025 / ln(1 − target), so at "
        f"least {needed} are needed (the framesets of one recording are not independent trials); {attacks} can "
        f"show {can_show:.1%} at best (1 − 0.025^(1/n)). Collect {needed - attacks} more{instead}")


def check_collection_sample(captures: Sequence[Any], splits: Any, target_apcer: float) -> None:
    """Before anything is scored or exported: can the validation subjects' attack recordings show the
    target at all? (A recording whose framesets all lack a face counts here; scoring may find fewer.)"""
    recorded = sum(1 for c in splits.of(captures, "val") if c.is_attack)
    check_attack_sample(recorded, target_apcer, " of the validation subjects")


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
        ValueError: a detector that would leave out the attacks its physical checks veto (they bring
            no score), framesets from more than one camera, or one whose ground truth contradicts ``label``.
    """
    if detector.config.use_physics and detector.config.skip_engine_on_veto:
        raise ValueError("detector: its physical vetoes decide before the engine (DetectorConfig.skip_engine_on_veto),"
                         " so the attacks they catch would bring no score and the threshold would be chosen on the "
                         "others alone; score with DetectorConfig(use_physics=False), as `mmdg-edge calibrate` does")
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
    """The rates an operating point has on captures it was not chosen on (a collection's test subjects).

    BPCER, APCER per attack species and non-responses (captures without a usable face) count
    presentations: each capture is one (``presentation_score`` decides it). The ``frame_`` rates
    count framesets, which are not independent trials; they stay as a second, labelled column.
    """

    threshold: float
    uncertainty_band: float
    bpcer: Rate
    apcer: Dict[str, Rate]
    non_response: Rate
    frame_bpcer: Rate
    frame_apcer: Dict[str, Rate]
    frame_non_response: Rate

    def to_dict(self) -> Dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {name: rate.to_dict() for name, rate in value.items()}
            return value.to_dict() if isinstance(value, Rate) else value

        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

    def format_table(self) -> str:
        rows = [(f"APCER {name}", rate, self.frame_apcer[name]) for name, rate in self.apcer.items()]
        rows += [("BPCER", self.bpcer, self.frame_bpcer), ("non-response", self.non_response, self.frame_non_response)]
        lines = [f"held-out subjects at threshold {self.threshold:.4f} (band ±{self.uncertainty_band}):",
                 f"  {'rate':<22}{'presentations':>14}{'%':>8}  {'95% CI':<18}{'framesets':>12}{'%':>8}",
                 f"  {'':<22}{'(recordings)':>14}{'':>8}  {'':<18}{'(not indep.)':>12}"]
        lines += [f"  {name:<22}{f'{r.errors}/{r.trials}':>14}{100 * r.value:>8.2f}  "
                  f"{f'[{100 * r.lower:.2f}, {100 * r.upper:.2f}]':<18}{f'{f.errors}/{f.trials}':>12}"
                  f"{100 * f.value:>8.2f}" for name, r, f in rows]
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
    live = [s for c, s in zip(val, val_scores) if not c.is_attack and s.size]
    attacks = [s for c, s in zip(val, val_scores) if c.is_attack and s.size]
    report = calibrate_scores(live, attacks, target_apcer, uncertainty_band)
    profile = create_profile(report, camera_serial=cameras[0], camera_firmware=captures[0].camera_firmware,
                             model_sha256=engine.model_sha256, model_precision=engine.precision)
    test_scores, framesets = collection_scores(engine, folder, test)
    return profile, _held_out(test, test_scores, framesets, report.threshold, uncertainty_band)


def _held_out(captures: Sequence[Any], scores: Sequence[np.ndarray], framesets: Sequence[int], threshold: float,
              band: float) -> HeldOutReport:
    """Rates per capture (presentation) and per frameset of the captures' scores at one operating point."""
    answered = [(c, s) for c, s in zip(captures, scores) if s.size]
    bona_fide = [s for c, s in answered if not c.is_attack]
    if not bona_fide:
        raise ValueError("no bona fide face was found in the test subjects' recordings: nothing to report BPCER on")

    def presentations(group: List[np.ndarray], is_attack: bool) -> Rate:
        passed = accepts([presentation_score(s, is_attack) for s in group], threshold, band)
        return Rate.from_counts(int(passed.sum() if is_attack else (~passed).sum()), len(group))

    def frames(group: List[np.ndarray], is_attack: bool) -> Rate:
        passed = accepts(np.concatenate(group), threshold, band)
        return Rate.from_counts(int(passed.sum() if is_attack else (~passed).sum()), passed.size)

    species = {name: [s for c, s in answered if c.species == name]
               for name in sorted({c.species for c, _ in answered if c.is_attack})}
    found = sum(s.size for s in scores)
    return HeldOutReport(
        threshold, band, presentations(bona_fide, False), {n: presentations(g, True) for n, g in species.items()},
        Rate.from_counts(len(captures) - len(answered), len(captures)),
        frames(bona_fide, False), {n: frames(g, True) for n, g in species.items()},
        Rate.from_counts(sum(framesets) - found, sum(framesets)),
    )
