"""Physical checks that can only deny: cheap depth and IR cues measured on the face's inner region.

They run before the model and can veto "live" but never grant it (AND logic): a learned model can
be fooled by a good photo, a rule by a good mask; together both must be fooled at once.
- Depth relief: a real face is not a smooth surface — the nose stands 2–4 cm out of the cheeks. We
  fit a quadratic surface (which absorbs a tilted or simply bent sheet) and measure what is left.
  What is left must also stay face-sized: a step of tens of centimetres inside the face region is
  a flat object in front of a background (a sheet's edge over the torso), never facial relief.
- IR presence: skin reflects the camera's near-infrared; a screen emits none, so a replayed face is
  nearly black in IR.
- IR texture: skin, eyes and hair give varied IR reflectance; a uniform-material mask does not.

A check that cannot be measured (no depth stream, too few valid depth pixels, no IR pixels on the
face) is reported as unmeasured with its reason, never as passed: the detector decides, from the
streams it requires, whether that makes the frameset unreliable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from .frames import FaceCrops

DEPTH_CHECKS = ("depth relief",)
IR_CHECKS = ("IR presence", "IR texture")


@dataclass(frozen=True)
class PhysicsConfig:
    """Veto thresholds. Defaults are set on the synthetic camera's live faces and attacks
    (tests/test_physics.py); recalibrate on your camera if your faces are farther than ~1 m."""

    min_relief_m: float = 0.008  # residual range (p2–p98) after a quadratic fit over the face
    max_relief_m: float = 0.10  # a larger residual range is a depth step (a sheet before the torso), not a face
    min_ir_level: float = 0.08  # median face IR as a fraction of the IR format's full scale
    min_ir_texture: float = 0.06  # robust spread / median of face IR
    min_depth_pixels: int = 200  # fewer valid depth pixels on the face: relief cannot be measured
    min_ir_pixels: int = 50  # fewer IR pixels on the face: IR cannot be measured
    max_fit_points: int = 4000  # subsample for a fixed cost per frameset

    def __post_init__(self) -> None:
        if not 0 < self.min_relief_m < self.max_relief_m:
            raise ValueError(f"PhysicsConfig: expected 0 < min_relief_m < max_relief_m, got {self.min_relief_m} and "
                             f"{self.max_relief_m}")
        if self.min_depth_pixels < 6 or self.min_ir_pixels < 1 or self.max_fit_points < 6:
            raise ValueError("PhysicsConfig: min_depth_pixels and max_fit_points need ≥ 6 (a quadratic has 6 "
                             f"coefficients), min_ir_pixels ≥ 1; got {self.min_depth_pixels}, "
                             f"{self.max_fit_points}, {self.min_ir_pixels}")


@dataclass(frozen=True)
class PhysicsReport:
    """Measured cues (None where not measured), the vetoes that fired, and per check that could not
    be measured, why (``unmeasured``: check name → reason)."""

    relief_m: Optional[float]
    ir_level: Optional[float]
    ir_texture: Optional[float]
    vetoes: Tuple[str, ...]
    unmeasured: Dict[str, str]


def depth_relief_m(depth: np.ndarray, depth_scale_m: float, config: PhysicsConfig = PhysicsConfig()) -> Optional[float]:
    """Spread (2nd–98th percentile) of the depth left after a least-squares quadratic surface fit.

    Args:
        depth: the face region of a z16 depth frame (0 = no data).
        depth_scale_m: metres per unit.

    Returns:
        Relief in metres, or None with fewer than ``config.min_depth_pixels`` valid pixels.
    """
    if depth.shape[0] >= 5 and depth.shape[1] >= 5:
        # A 5×5 median removes sensor noise (σ of a few mm, which would pass for relief) and isolated
        # holes, and keeps the nose, which is far wider than 5 pixels at kiosk distances.
        depth = cv2.medianBlur(np.ascontiguousarray(depth, dtype=np.uint16), 5)
    rows, cols = np.nonzero(depth)
    if rows.size < config.min_depth_pixels:
        return None
    if rows.size > config.max_fit_points:
        step = rows.size // config.max_fit_points + 1
        rows, cols = rows[::step], cols[::step]
    z = depth[rows, cols].astype(np.float64) * depth_scale_m
    x = (cols - cols.mean()) / max(depth.shape[1], 1)
    y = (rows - rows.mean()) / max(depth.shape[0], 1)
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    coeffs, *_ = np.linalg.lstsq(design, z, rcond=None)
    residual = z - design @ coeffs
    low, high = np.percentile(residual, (2, 98))
    return float(high - low)


def _depth_checks(crops: FaceCrops, config: PhysicsConfig, vetoes: list, unmeasured: Dict[str, str]) -> Optional[float]:
    if crops.depth_region is None:
        unmeasured["depth relief"] = "no depth stream"
        return None
    relief = depth_relief_m(crops.depth_region, crops.depth_scale_m, config)
    if relief is None:
        valid = int(np.count_nonzero(crops.depth_region))
        unmeasured["depth relief"] = (f"too little depth on the face's centre ({valid} valid pixels < "
                                      f"{config.min_depth_pixels})")
    elif relief < config.min_relief_m:
        vetoes.append(f"depth relief {relief * 1000:.1f} mm < {config.min_relief_m * 1000:.0f} mm: the face is flat "
                      "(a photo or screen)")
    elif relief > config.max_relief_m:
        vetoes.append(f"depth step of {relief * 1000:.0f} mm > {config.max_relief_m * 1000:.0f} mm inside the face: "
                      "a flat object in front of a background, not facial relief")
    return relief


def _ir_checks(crops: FaceCrops, config: PhysicsConfig, vetoes: list,
               unmeasured: Dict[str, str]) -> Tuple[Optional[float], Optional[float]]:
    if crops.ir_region is None or crops.ir_region.size < config.min_ir_pixels:
        why = "no IR stream" if crops.ir_region is None else (f"too few IR pixels on the face ({crops.ir_region.size} "
                                                             f"< {config.min_ir_pixels})")
        unmeasured.update({name: why for name in IR_CHECKS})
        return None, None
    region = crops.ir_region.astype(np.float64)
    median = float(np.median(region))
    level = median / float(np.iinfo(crops.ir_region.dtype).max)
    p10, p90 = np.percentile(region, (10, 90))
    texture = float((p90 - p10) / median) if median > 0 else 0.0
    if level < config.min_ir_level:
        vetoes.append(f"IR level {level:.3f} < {config.min_ir_level}: the face reflects no near-infrared (a screen)")
    elif texture < config.min_ir_texture:
        vetoes.append(f"IR texture {texture:.3f} < {config.min_ir_texture}: uniform material, not skin (a mask)")
    return level, texture


def check_physics(crops: FaceCrops, config: PhysicsConfig = PhysicsConfig()) -> PhysicsReport:
    """Measure the cues on the face regions the aligner carried and list the vetoes.

    Args:
        crops: FaceCrops with ``depth_region`` / ``ir_region`` (raw pixels of the face's inner
            region) where the frameset had those streams.
        config: thresholds.

    Returns:
        A PhysicsReport; ``vetoes`` holds one human-readable reason per cue that failed and
        ``unmeasured`` the checks that could not run, with why.
    """
    vetoes: list = []
    unmeasured: Dict[str, str] = {}
    relief = _depth_checks(crops, config, vetoes, unmeasured)
    ir_level, ir_texture = _ir_checks(crops, config, vetoes, unmeasured)
    return PhysicsReport(relief, ir_level, ir_texture, tuple(vetoes), unmeasured)
