"""A device profile: one camera's calibrated operating point, bound to one model file.

``mmdg-edge calibrate`` writes it (``calibration.py``); ``Detector.load(profile=...)`` reads it and
checks it here against the engine's model file and, per frameset, the camera. It lives apart from
calibration so the detector reads profiles without importing the calibration code.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Optional, Union

from .errors import ProfileMismatch
from .outputs import write_output
from .signing import check_not_before, created_time, load_signed_json
from .stats import Rate

__all__ = ["MIN_THRESHOLD", "PROFILE_FORMAT", "CalibrationReport", "DeviceProfile"]

PROFILE_FORMAT = 3
"""3: APCER/BPCER per presentation, the frame-level rates beside them (2 counted framesets as trials);
2: rates with counts and intervals, bound to the model file's SHA-256 and precision (1 bound only the
checkpoint's weights, which every export of one checkpoint shares)."""
PathLike = Union[str, "os.PathLike[str]"]
_RATES = ("apcer", "bpcer", "frame_apcer", "frame_bpcer")
MIN_THRESHOLD = 1e-6
"""The lowest threshold a profile may set. Below it the detector calls live any face the model gives
a one-in-a-million chance, which is how a tampered profile would open the door to everything;
calibration never goes lower."""


@dataclass(frozen=True)
class CalibrationReport:
    """The operating point and the rates the detector will have there on the calibration captures.

    ``apcer`` and ``bpcer`` count presentations (recordings), as ISO/IEC 30107-3 does;
    ``frame_apcer`` and ``frame_bpcer`` count framesets, which are not independent trials.
    """

    threshold: float
    uncertainty_band: float
    target_apcer: float
    apcer: Rate
    bpcer: Rate
    frame_apcer: Rate
    frame_bpcer: Rate

    @property
    def target_shown(self) -> bool:
        """Whether the calibration attacks show the target: the upper end of APCER's 95 % interval is
        within it. The threshold only makes the observed APCER meet the target; with few attacks, or
        a few errors among them, the interval can reach far above it."""
        return self.apcer.upper <= self.target_apcer

    def shortfall(self) -> str:
        """Why the target is not shown, in words (empty when it is)."""
        if self.target_shown:
            return ""
        return (f"APCER {self.apcer.errors}/{self.apcer.trials} ({self.apcer.value:.1%}) meets the target "
                f"{self.target_apcer:.1%} on the calibration attacks, but its 95 % interval reaches "
                f"{self.apcer.upper:.1%}: they do not show the target; collect more attacks and calibrate again "
                "before relying on it")

    def to_dict(self) -> Dict[str, Any]:
        data = {f.name: (getattr(self, f.name).to_dict() if isinstance(getattr(self, f.name), Rate)
                         else getattr(self, f.name)) for f in fields(self)}
        return {**data, "target_shown": self.target_shown}  # written for readers; recomputed on load


@dataclass(frozen=True)
class DeviceProfile:
    """A calibrated operating point for one camera and one model file."""

    report: CalibrationReport
    camera_serial: str
    camera_firmware: str
    model_sha256: str
    model_precision: str
    created: str
    format_version: int = PROFILE_FORMAT

    def __post_init__(self) -> None:
        report = self.report
        for name in ("threshold", "uncertainty_band", "target_apcer"):
            value = getattr(report, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ProfileMismatch(f"DeviceProfile.{name}: expected a number, got {value!r}")
        threshold, band = report.threshold, report.uncertainty_band
        if not MIN_THRESHOLD <= threshold < 1.0:
            raise ProfileMismatch(f"DeviceProfile.threshold: expected a value in [{MIN_THRESHOLD}, 1), got {threshold!r}")
        if not 0.0 <= band < min(threshold, 1.0 - threshold):
            raise ProfileMismatch(f"DeviceProfile.uncertainty_band: expected a value in [0, {min(threshold, 1 - threshold)!r}) "
                                  f"(below both distances of the threshold {threshold!r} to 0 and 1), got {band!r}")
        if not 0.0 < report.target_apcer < 1.0:
            raise ProfileMismatch(f"DeviceProfile.target_apcer: expected a value in (0, 1), got {report.target_apcer!r}")
        if report.apcer.value > report.target_apcer:
            raise ProfileMismatch(f"DeviceProfile: APCER {report.apcer.value!r} ({report.apcer.errors} of "
                                  f"{report.apcer.trials}) exceeds the target {report.target_apcer!r} it was calibrated for")
        if self.format_version != PROFILE_FORMAT:
            raise ProfileMismatch(f"DeviceProfile: format {self.format_version}, this SDK reads {PROFILE_FORMAT}; "
                                  "calibrate again with this SDK")
        created_time(self.created, "DeviceProfile.created", ProfileMismatch)

    @property
    def threshold(self) -> float:
        return self.report.threshold

    @property
    def uncertainty_band(self) -> float:
        return self.report.uncertainty_band

    def to_dict(self) -> Dict[str, Any]:
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "report": self.report.to_dict()}

    def save(self, path: PathLike, force: bool = False) -> Path:
        """Write the profile JSON (through a temporary file and a rename: never through a link).

        Raises:
            FileExistsError: ``path`` exists and ``force`` is False.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_output(path, json.dumps(self.to_dict(), indent=2) + "\n", force)

    @classmethod
    def load(cls, path: PathLike, trusted_key: Any = None, sha256: Optional[str] = None,
             min_created: Optional[datetime] = None) -> "DeviceProfile":
        """Read a profile; any malformed file raises ProfileMismatch naming the problem.

        Args:
            path: the profile JSON.
            trusted_key: an Ed25519 public key object (``signing.load_public_key``): the bytes read
                must then carry its "profile" signature (SignatureError otherwise).
            sha256: the digest the bytes read must have (a bundle's index lists it).
            min_created: refuse a profile created before this time (an older one, however well
                signed, is a rollback; ``signing.parse_min_created``).
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ProfileMismatch(f"{path}: cannot read the device profile ({exc})") from exc
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise ProfileMismatch(f"{path} changed while it was loaded (its SHA-256 differs from the bundle's)")

        profile = cls.from_dict(load_signed_json(data, path, trusted_key, "profile", ProfileMismatch), str(path))
        check_not_before(profile.created, min_created, str(path), ProfileMismatch)
        return profile

    @classmethod
    def from_dict(cls, data: Any, source: str = "device profile") -> "DeviceProfile":
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) != names:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ProfileMismatch(f"{source}: expected keys {sorted(names)}, got {got}")
        if data["format_version"] != PROFILE_FORMAT:
            raise ProfileMismatch(f"{source}: format {data['format_version']!r}, this SDK reads {PROFILE_FORMAT} "
                                  "(rates per presentation); calibrate again with this SDK")
        try:
            report = dict(data["report"])
            stated = report.pop("target_shown", None)  # profiles from before the flag have none
            report = CalibrationReport(**{**report, **{name: Rate.from_dict(report[name]) for name in _RATES}})
            profile = cls(**{**data, "report": report})
            if stated is not None and stated is not report.target_shown:
                raise ValueError(f"report.target_shown is {stated!r}, its APCER interval says {report.target_shown}")
            return profile
        except (TypeError, ValueError, KeyError) as exc:
            raise ProfileMismatch(f"{source}: invalid device profile ({exc})") from exc

    def check_model(self, engine: Any) -> None:
        """Refuse an engine that runs another model file, or the same file at another precision."""
        digest = getattr(engine, "model_sha256", None)
        if digest is None:
            raise ProfileMismatch("a device profile binds a model file, and this engine runs no file it can name "
                                  "(an in-memory model); load the model from its file")
        if digest != self.model_sha256 or engine.precision != self.model_precision:
            raise ProfileMismatch(
                f"device profile was calibrated for model file {self.model_sha256[:12]}… ({self.model_precision}), "
                f"this engine runs {digest[:12]}… ({engine.precision}); calibrate again for this model file"
            )

    def check_camera(self, serial: str) -> None:
        if serial != self.camera_serial:
            raise ProfileMismatch(
                f"device profile is for camera {self.camera_serial!r}, this frame comes from {serial!r}; "
                "calibrate this camera"
            )
