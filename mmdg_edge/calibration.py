"""Operating point on the user's own camera: pick the threshold for a target APCER, write a device profile.

Thresholds shipped with a model were chosen on someone else's camera and lighting. Calibration
scores the user's own live and attack captures, picks the smallest threshold whose APCER on them
is at most the target, reports APCER/BPCER with exact Clopper–Pearson 95 % intervals, and writes a
JSON profile tied to the camera serial and the model hash, which `Detector.load(profile=...)` uses.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np

from .errors import MMDGEdgeError
from .stats import clopper_pearson

PROFILE_FORMAT = 1
PathLike = Union[str, "os.PathLike[str]"]


class ProfileMismatch(MMDGEdgeError):
    """A device profile belongs to another camera or another model, or is malformed."""


@dataclass(frozen=True)
class CalibrationReport:
    """Rates on the calibration captures at the chosen threshold."""

    threshold: float
    apcer: float
    apcer_ci: Tuple[float, float]
    bpcer: float
    bpcer_ci: Tuple[float, float]
    live_count: int
    attack_count: int

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeviceProfile(CalibrationReport):
    """A calibrated operating point for one camera and one model: the calibration's rates plus
    what it is tied to."""

    uncertainty_band: float
    camera_serial: str
    camera_firmware: str
    model_sha256: str
    created: str
    target_apcer: float
    format_version: int = PROFILE_FORMAT

    def __post_init__(self) -> None:
        for name in ("threshold", "uncertainty_band", "target_apcer", "apcer", "bpcer"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise ProfileMismatch(f"DeviceProfile.{name}: expected a number in [0, 1], got {value!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ProfileMismatch(f"DeviceProfile.threshold: expected a value in (0, 1), got {self.threshold}")
        if self.format_version != PROFILE_FORMAT:
            raise ProfileMismatch(f"DeviceProfile: format {self.format_version}, this SDK reads {PROFILE_FORMAT}")

    def save(self, path: PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: PathLike) -> "DeviceProfile":
        """Read a profile; any malformed file raises ProfileMismatch naming the problem."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileMismatch(f"{path}: cannot read the device profile ({exc})") from exc
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) != names:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ProfileMismatch(f"{path}: expected keys {sorted(names)}, got {got}")
        try:
            return cls(**{**data, "apcer_ci": tuple(data["apcer_ci"]), "bpcer_ci": tuple(data["bpcer_ci"])})
        except (TypeError, ValueError) as exc:
            raise ProfileMismatch(f"{path}: invalid device profile ({exc})") from exc

    def check_model(self, model_sha256: str) -> None:
        if model_sha256 != self.model_sha256:
            raise ProfileMismatch(
                f"device profile was calibrated for model {self.model_sha256[:12]}…, this model is "
                f"{model_sha256[:12]}…; calibrate again for this model"
            )

    def check_camera(self, serial: str) -> None:
        if serial != self.camera_serial:
            raise ProfileMismatch(
                f"device profile is for camera {self.camera_serial!r}, this frame comes from {serial!r}; "
                "calibrate this camera"
            )


def threshold_for_apcer(attack_scores: Sequence[float], target_apcer: float) -> float:
    """The smallest threshold t with APCER = #(attack score ≥ t) / #attacks ≤ target.

    Live is accepted when score ≥ t. With k = ⌊target·n⌋ attacks allowed through, t sits just
    above the (k+1)-th highest attack score.
    """
    scores = np.sort(np.asarray(attack_scores, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise ValueError("attack_scores: at least one attack score is needed to calibrate")
    if not 0.0 <= target_apcer < 1.0:
        raise ValueError(f"target_apcer: expected a value in [0, 1), got {target_apcer}")
    allowed = int(math.floor(target_apcer * scores.size + 1e-9))
    return float(min(np.nextafter(scores[allowed], np.inf), np.nextafter(1.0, 0.0)))




def calibrate_scores(
    live_scores: Sequence[float], attack_scores: Sequence[float], target_apcer: float
) -> CalibrationReport:
    """Choose the threshold on these scores and report APCER/BPCER with 95 % intervals."""
    live = np.asarray(live_scores, dtype=np.float64)
    attack = np.asarray(attack_scores, dtype=np.float64)
    if live.size == 0:
        raise ValueError("live_scores: at least one live score is needed to report BPCER")
    threshold = threshold_for_apcer(attack, target_apcer)
    accepted_attacks = int((attack >= threshold).sum())
    rejected_live = int((live < threshold).sum())
    return CalibrationReport(
        threshold=threshold,
        apcer=accepted_attacks / attack.size,
        apcer_ci=clopper_pearson(accepted_attacks, attack.size),
        bpcer=rejected_live / live.size,
        bpcer_ci=clopper_pearson(rejected_live, live.size),
        live_count=int(live.size),
        attack_count=int(attack.size),
    )


def create_profile(
    report: CalibrationReport, *, target_apcer: float, uncertainty_band: float, camera_serial: str,
    camera_firmware: str, model_sha256: str,
) -> DeviceProfile:
    """A DeviceProfile from a calibration report, stamped with the current UTC date."""
    return DeviceProfile(
        **asdict(report), uncertainty_band=uncertainty_band, camera_serial=camera_serial,
        camera_firmware=camera_firmware, model_sha256=model_sha256,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), target_apcer=target_apcer,
    )


def collect_scores(detector: Any, framesets: Any) -> Tuple[List[float], int, str, str]:
    """Model scores of every frameset with a usable face.

    Returns:
        ``(scores, skipped, serial, firmware)``: skipped counts framesets without a score (no face,
        low quality, errors); serial and firmware come from the first frameset.
    """
    scores: List[float] = []
    skipped, serial, firmware = 0, "", ""
    for index, frameset in enumerate(framesets):
        if index == 0:
            serial = getattr(frameset, "serial", "")
            firmware = str(getattr(frameset, "metadata", {}).get("firmware", ""))
        verdict = detector.check(frameset)
        if verdict.score is None:
            skipped += 1
        else:
            scores.append(verdict.score)
    return scores, skipped, serial, firmware
