"""Plain data types shared by every stage: FrameSet, FaceCrops, Verdict.

This module imports nothing of the project. Validation raises ValueError naming the field,
so a bad frame is caught where it enters the SDK rather than deep inside a stage.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

MODALITIES: Tuple[str, str, str] = ("rgb", "depth", "ir")
"""Modality order of crops, masks, features and certainties, everywhere."""

CROP_SIZE = 224

VERDICT_STATUSES = ("live", "attack", "uncertain", "no_face", "unreliable", "error")

MAX_PIXELS = 4096 * 4096
"""Default limit of pixels per frame (each stream), twice 4K UHD: a larger frame is refused before
it is decoded or copied, and by ``FrameSet.validate``, so a crafted file or frameset cannot take
gigabytes and seconds inside ``Detector.check``. Readers and the detector take another limit as an argument."""

ORIGINS = ("camera", "recording", "images", "synthetic", "unknown")
"""Where a FrameSet comes from. Only "camera" (a real-time sensor, now) may reach a live session;
the others are replays of some kind and are labelled as such in every verdict."""


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera intrinsics of one stream (pixels), as pyrealsense2 reports them."""

    width: int
    height: int
    fx: float
    fy: float
    ppx: float
    ppy: float
    model: str = "none"
    coeffs: Tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        # A zero, negative or NaN value would misplace the face box between the streams, or fail deep
        # inside the aligner with an arithmetic error that names nothing.
        for name in ("width", "height", "fx", "fy", "ppx", "ppy"):
            value = getattr(self, name)
            positive = name not in ("ppx", "ppy")
            if not math.isfinite(value) or (positive and value <= 0):
                raise ValueError(f"Intrinsics.{name}: expected a finite{' positive' if positive else ''} number, "
                                 f"got {value!r}")

    def to_dict(self) -> Dict[str, Any]:
        return {**self.__dict__, "coeffs": list(self.coeffs)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Intrinsics":
        return cls(**{**data, "coeffs": tuple(data.get("coeffs", (0.0,) * 5))})


@dataclass(frozen=True)
class Extrinsics:
    """Rigid transform between two streams: p_to = R @ p_from + t (metres)."""

    rotation: Tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)  # row-major 3x3
    translation: Tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if len(self.rotation) != 9 or len(self.translation) != 3:
            raise ValueError(
                f"Extrinsics: rotation needs 9 values and translation 3, got {len(self.rotation)} and "
                f"{len(self.translation)}"
            )
        if not all(math.isfinite(value) for value in (*self.rotation, *self.translation)):
            raise ValueError(
                f"Extrinsics: rotation and translation must be finite, got {self.rotation} and {self.translation}"
            )

    def matrix(self) -> Tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.rotation, np.float64).reshape(3, 3), np.asarray(self.translation, np.float64)

    def to_dict(self) -> Dict[str, Any]:
        return {"rotation": list(self.rotation), "translation": list(self.translation)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Extrinsics":
        return cls(tuple(data["rotation"]), tuple(data["translation"]))


def check_pixel_count(width: int, height: int, max_pixels: int, what: str) -> None:
    """Refuse a frame of more than ``max_pixels`` pixels (ValueError naming ``what``), before any work on it."""
    if width * height > max_pixels:
        raise ValueError(f"{what}: {width}×{height} = {width * height} pixels exceeds the limit of {max_pixels} per "
                         "frame (max_pixels)")


def _check_image(name: str, value: Any, ndim: int, dtypes: Tuple[type, ...], channels: Optional[int] = None) -> None:
    if not isinstance(value, np.ndarray):
        raise ValueError(f"FrameSet.{name}: expected a numpy array, got {type(value).__name__}")
    if isinstance(value, (np.matrix, np.ma.MaskedArray)):
        raise ValueError(f"FrameSet.{name}: expected a plain numpy array, got {type(value).__name__} (the SDK would "
                         "ignore its mask or matrix semantics)")
    if value.ndim != ndim or (channels is not None and value.shape[-1] != channels):
        want = "H×W×3" if channels else "H×W"
        raise ValueError(f"FrameSet.{name}: expected shape {want}, got {value.shape}")
    if value.dtype not in [np.dtype(d) for d in dtypes]:
        allowed = " or ".join(np.dtype(d).name for d in dtypes)
        raise ValueError(f"FrameSet.{name}: expected dtype {allowed}, got {value.dtype}")
    if value.shape[0] == 0 or value.shape[1] == 0:
        raise ValueError(f"FrameSet.{name}: the image is empty (shape {value.shape})")


@dataclass
class FrameSet:
    """One synchronized capture of up to three streams.

    Depth and IR come from the same sensor on D4xx cameras and are registered to each other.
    ``color_aligned_to_depth`` says whether the sensors layer already resampled colour onto the
    depth grid; when False the aligner maps the face box with ``depth_to_color``.

    Attributes:
        rgb: H×W×3 uint8, RGB order, or None.
        depth: H×W uint16 in units of ``depth_scale_m`` metres (0 = no data), or None.
        ir: H×W uint8 or uint16, or None.
        depth_scale_m: metres per depth unit (D4xx: 0.001).
        timestamps_ms: per stream name, capture time in milliseconds.
        frame_numbers: per stream name, the camera's frame counter.
        intrinsics: per stream name ("rgb", "depth", "ir"), the stream's Intrinsics.
        depth_to_color: Extrinsics from the depth camera to the colour camera, or None.
        color_aligned_to_depth: True when ``rgb`` is already on the depth pixel grid.
        serial: camera serial number ("" when unknown).
        origin: one of ORIGINS. Sources set it; a FrameSet built by hand is "unknown" until the
            caller says it comes from a live camera ("camera", which then needs timestamps and
            ``received_s``).
        received_s: ``time.monotonic()`` when the sensors layer received the frameset from a
            real-time camera (None otherwise); the detector refuses framesets older than its
            maximum age.
        stream_epoch: bumped by a source whenever its counters restart (a camera reopened after an
            unplug, a clock or frame counter that started again): a stream session then starts
            afresh instead of taking the lower timestamps for a replay.
        metadata: free-form extras (synthetic ground truth, firmware, source name).
    """

    rgb: Optional[np.ndarray] = None
    depth: Optional[np.ndarray] = None
    ir: Optional[np.ndarray] = None
    depth_scale_m: float = 0.001
    timestamps_ms: Dict[str, float] = field(default_factory=dict)
    frame_numbers: Dict[str, int] = field(default_factory=dict)
    intrinsics: Dict[str, Intrinsics] = field(default_factory=dict)
    depth_to_color: Optional[Extrinsics] = None
    color_aligned_to_depth: bool = False
    serial: str = ""
    origin: str = "unknown"
    received_s: Optional[float] = None
    metadata: Dict[str, Any] = field(default_factory=dict)
    stream_epoch: int = 0

    def __post_init__(self) -> None:
        # No pixel limit here: a reader given a higher one must be able to build its framesets; the
        # detector checks its own limit on every frameset before any work.
        self.validate(max_pixels=None)

    def validate(self, max_pixels: Optional[int] = MAX_PIXELS) -> None:
        """Check every field again (fields are mutable); raise ValueError naming the bad one.

        Args:
            max_pixels: the most pixels a frame of any stream may have (None: no limit).
        """
        if self.rgb is not None:
            _check_image("rgb", self.rgb, 3, (np.uint8,), channels=3)
        if self.depth is not None:
            _check_image("depth", self.depth, 2, (np.uint16,))
        if self.ir is not None:
            _check_image("ir", self.ir, 2, (np.uint8, np.uint16))
        for name in ("rgb", "depth", "ir"):
            image = getattr(self, name)
            if image is not None and max_pixels is not None:
                check_pixel_count(image.shape[1], image.shape[0], max_pixels, f"FrameSet.{name}")
        if self.depth is not None and self.ir is not None and self.depth.shape != self.ir.shape:
            raise ValueError(
                f"FrameSet.ir: shape {self.ir.shape} differs from depth {self.depth.shape}; depth and IR "
                "come from one sensor and must be registered"
            )
        if self.color_aligned_to_depth and self.rgb is not None and self.depth is not None:
            if self.rgb.shape[:2] != self.depth.shape:
                raise ValueError(
                    f"FrameSet.rgb: shape {self.rgb.shape[:2]} differs from depth {self.depth.shape} although "
                    "color_aligned_to_depth is True"
                )
        for name in ("timestamps_ms", "frame_numbers", "intrinsics", "metadata"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"FrameSet.{name}: expected a dict, got {type(getattr(self, name)).__name__}")
        scale = self.depth_scale_m
        if not isinstance(scale, (int, float)) or not math.isfinite(scale) or not 0 < scale < 1:
            raise ValueError(f"FrameSet.depth_scale_m: expected a finite value in (0, 1) metres, got {scale!r}")
        for name, stamp in self.timestamps_ms.items():
            if not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
                raise ValueError(f"FrameSet.timestamps_ms[{name!r}]: expected a finite number, got {stamp!r}")
        for name, number in self.frame_numbers.items():
            if isinstance(number, bool) or not isinstance(number, (int, np.integer)):
                raise ValueError(f"FrameSet.frame_numbers[{name!r}]: expected an int, got {number!r}")
        if self.origin not in ORIGINS:
            raise ValueError(f"FrameSet.origin: expected one of {ORIGINS}, got {self.origin!r}")
        if self.received_s is not None and (isinstance(self.received_s, bool) or not isinstance(
                self.received_s, (int, float)) or not math.isfinite(self.received_s)):
            raise ValueError(f"FrameSet.received_s: expected None or a finite time.monotonic() value, got "
                             f"{self.received_s!r}")
        if isinstance(self.stream_epoch, bool) or not isinstance(self.stream_epoch, (int, np.integer)) \
                or self.stream_epoch < 0:
            raise ValueError(f"FrameSet.stream_epoch: expected an int ≥ 0, got {self.stream_epoch!r}")
        for name, intr in self.intrinsics.items():
            if not isinstance(intr, Intrinsics):
                raise ValueError(f"FrameSet.intrinsics[{name!r}]: expected Intrinsics, got {type(intr).__name__}")
        if self.depth_to_color is not None and not isinstance(self.depth_to_color, Extrinsics):
            raise ValueError(
                f"FrameSet.depth_to_color: expected Extrinsics, got {type(self.depth_to_color).__name__}"
            )

    @property
    def present(self) -> Tuple[bool, bool, bool]:
        """Which modalities carry an image, in MODALITIES order."""
        return (self.rgb is not None, self.depth is not None, self.ir is not None)

    @property
    def timestamp_ms(self) -> Optional[float]:
        """The latest stream timestamp of the set, or None when no stream has one."""
        return max(self.timestamps_ms.values()) if self.timestamps_ms else None

    @property
    def frame_number(self) -> Optional[int]:
        """The depth frame number when present, else any stream's, else None."""
        if not self.frame_numbers:
            return None
        return self.frame_numbers.get("depth", next(iter(self.frame_numbers.values())))


@dataclass(frozen=True)
class FaceQuality:
    """How usable a face crop is; ``passed`` is False when any threshold failed (see ``failures``).

    ``face_size_px`` is the face's width (its landmarks' silhouette, or a detector box)."""

    face_size_px: float
    distance_m: Optional[float]
    blur: float
    depth_coverage: Optional[float]
    passed: bool
    failures: Tuple[str, ...] = ()
    yaw_deg: Optional[float] = None  # head pose from the landmarks (None without them)
    pitch_deg: Optional[float] = None
    roll_deg: Optional[float] = None
    eye_distance_px: Optional[float] = None  # outer eye corners, 3-D (a turned head does not shorten it)

    def to_dict(self) -> Dict[str, Any]:
        return {**self.__dict__, "failures": list(self.failures)}


def _check_crop(name: str, value: Any, dtypes: Tuple[type, ...], channels: Optional[int]) -> None:
    if value is None:
        return
    shape = (CROP_SIZE, CROP_SIZE) + ((channels,) if channels else ())
    if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype not in [np.dtype(d) for d in dtypes]:
        got = f"{value.shape} {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
        want = " or ".join(np.dtype(d).name for d in dtypes)
        raise ValueError(f"FaceCrops.{name}: expected None or a {'×'.join(map(str, shape))} {want} array, got {got}")


@dataclass
class FaceCrops:
    """The face cut out of every modality, raw: geometry only, before any encoding.

    The aligner fills it; ``mmdg_edge.preprocess.encode`` turns it into the engine's input and
    ``mmdg_edge.physics`` measures its face regions.

    Attributes:
        rgb: 224×224×3 uint8 colour crop, or None.
        depth: 224×224 uint16 depth crop in ``depth_scale_m`` units (0 = no data), or None.
        ir: 224×224 uint8 or uint16 IR crop, or None.
        depth_scale_m: metres per depth unit.
        box: face box (x0, y0, x1, y1) in colour pixels (the frame the face was found in when
            colour is aligned to depth).
        depth_box: the same face box in depth/IR pixels.
        depth_region: raw depth pixels of the face region drawn by the landmarks (1-D, full
            resolution: what the depth coverage and distance are measured on), or None.
        ir_region: raw IR pixels of the same region (what the IR checks measure), or None.
        quality: the quality record of this face; its ``distance_m`` (median depth of the face's
            inner region) is what the depth crop is encoded around.
        num_faces: how many faces the detector saw in the frame.
        landmarks: the face's landmarks in depth/IR pixels, (N, 3): x, y and a relative depth in
            the same pixel scale (smaller is nearer), or None.
        shape_depth_m: measured depth in metres at ``mmdg_edge.align.SHAPE_POINTS`` (NaN where
            the sensor had none), or None without a depth stream.
        metres_per_px: metres one depth-grid pixel spans at the face's distance, or None when
            the frameset carries no intrinsics.
        ir_patches: raw IR squares around ``mmdg_edge.face_mesh.MATERIAL_POINTS`` (those inside the
            image), where the material check measures how the skin blurs the projector's dots, or None.
    """

    rgb: Optional[np.ndarray]
    depth: Optional[np.ndarray]
    ir: Optional[np.ndarray]
    box: Tuple[float, float, float, float]
    depth_box: Tuple[float, float, float, float]
    quality: FaceQuality
    depth_scale_m: float = 0.001
    depth_region: Optional[np.ndarray] = None
    ir_region: Optional[np.ndarray] = None
    num_faces: int = 1
    landmarks: Optional[np.ndarray] = None
    shape_depth_m: Optional[np.ndarray] = None
    metres_per_px: Optional[float] = None
    ir_patches: Optional[Tuple[np.ndarray, ...]] = None

    def __post_init__(self) -> None:
        _check_crop("rgb", self.rgb, (np.uint8,), 3)
        if self.ir_patches is not None and not (isinstance(self.ir_patches, tuple) and all(
                isinstance(p, np.ndarray) and p.ndim == 2 and p.dtype in (np.uint8, np.uint16) for p in self.ir_patches)):
            raise ValueError("FaceCrops.ir_patches: expected None or a tuple of 2-D uint8/uint16 IR arrays")
        _check_crop("depth", self.depth, (np.uint16,), None)
        _check_crop("ir", self.ir, (np.uint8, np.uint16), None)
        if not any(self.mask):
            raise ValueError("FaceCrops: at least one of rgb, depth and ir must be present")
        if self.depth is not None and self.quality.distance_m is None:
            raise ValueError("FaceCrops.quality.distance_m: a depth crop needs the face distance it is encoded around")

    @property
    def mask(self) -> np.ndarray:
        """(3,) bool, True where the modality is present, in MODALITIES order."""
        return np.array([self.rgb is not None, self.depth is not None, self.ir is not None])

    @property
    def modalities(self) -> Tuple[str, ...]:
        return tuple(name for name, on in zip(MODALITIES, self.mask) if on)

    @functools.cached_property
    def ir_median(self) -> Optional[float]:
        """The median raw IR level of the face region, None without IR pixels there: measured once for
        the IR checks and the face tracker alike."""
        if self.ir_region is None or self.ir_region.size == 0:
            return None
        return float(np.median(self.ir_region))


@dataclass
class Verdict:
    """The detector's answer for one frameset.

    Attributes:
        status: one of VERDICT_STATUSES. Only "live" may open a door; everything else denies.
        reason: human-readable cue that decided (model score, a physical veto, the failure).
        score: live probability from the engine, or None when the model did not run.
        threshold: the decision threshold in force.
        modalities: modalities the model actually used.
        box: face box in frame pixels, or None.
        quality: the face quality record, or None.
        timings_ms: per stage ("validate", "align", "physics", "encode", "engine", "total") in
            milliseconds, for the stages that ran.
        frame_number: the frameset's frame number, when known.
        origin: the frameset's origin (see ORIGINS): a verdict on a recording says so.
        skipped_checks: physical checks that did not run because their stream is not required
            and was absent or unmeasurable (e.g. "IR presence" on a rig without IR).
    """

    status: str
    reason: str
    score: Optional[float] = None
    threshold: Optional[float] = None
    modalities: Tuple[str, ...] = ()
    box: Optional[Tuple[float, float, float, float]] = None
    quality: Optional[FaceQuality] = None
    timings_ms: Dict[str, float] = field(default_factory=dict)
    frame_number: Optional[int] = None
    origin: str = "unknown"
    skipped_checks: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in VERDICT_STATUSES:
            raise ValueError(f"Verdict.status: expected one of {VERDICT_STATUSES}, got {self.status!r}")

    @property
    def is_live(self) -> bool:
        return self.status == "live"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "score": self.score,
            "threshold": self.threshold,
            "modalities": list(self.modalities),
            "box": list(self.box) if self.box is not None else None,
            "quality": self.quality.to_dict() if self.quality is not None else None,
            "timings_ms": dict(self.timings_ms),
            "frame_number": self.frame_number,
            "origin": self.origin,
            "skipped_checks": list(self.skipped_checks),
        }
