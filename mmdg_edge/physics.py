"""Physical checks that can only deny: cheap depth and IR cues measured on the raw face region.

They run before the model and can veto "live" but never grant it (AND logic): a learned model can
be fooled by a good photo, a rule by a good mask; together both must be fooled at once.
- Depth relief: a real face is not a smooth surface — the nose stands 2–4 cm out of the cheeks. We
  fit a quadratic surface (which absorbs a tilted or simply bent sheet) and measure what is left.
- IR presence: skin reflects the camera's near-infrared; a screen emits none, so a replayed face is
  nearly black in IR.
- IR texture: skin, eyes and hair give varied IR reflectance; a uniform-material mask does not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np


@dataclass(frozen=True)
class PhysicsConfig:
    """Veto thresholds. Defaults are set on the synthetic camera's live faces and attacks
    (tests/test_physics.py); recalibrate on your camera if your faces are farther than ~1 m."""

    min_relief_m: float = 0.008  # residual range (p2–p98) after a quadratic fit over the face
    min_ir_level: float = 0.08  # median face IR as a fraction of the IR format's full scale
    min_ir_texture: float = 0.06  # robust spread / median of face IR
    min_depth_pixels: int = 200  # fewer valid depth pixels on the face: relief is not judged
    max_fit_points: int = 4000  # subsample for a fixed cost per frameset


@dataclass(frozen=True)
class PhysicsReport:
    """Measured cues (None where the stream is absent or too sparse) and the vetoes that fired."""

    relief_m: Optional[float]
    ir_level: Optional[float]
    ir_texture: Optional[float]
    vetoes: Tuple[str, ...]


def _inner_region(shape: Tuple[int, int], box: Tuple[float, float, float, float]) -> Tuple[slice, slice]:
    """The central part of the face box (cheeks, nose, eyes; no hair or background)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    ys = slice(max(0, int(y0 + 0.15 * h)), min(shape[0], int(np.ceil(y1 - 0.15 * h))))
    xs = slice(max(0, int(x0 + 0.2 * w)), min(shape[1], int(np.ceil(x1 - 0.2 * w))))
    return ys, xs


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


def check_physics(
    depth: Optional[np.ndarray],
    ir: Optional[np.ndarray],
    box: Tuple[float, float, float, float],
    depth_scale_m: float,
    config: PhysicsConfig = PhysicsConfig(),
) -> PhysicsReport:
    """Measure the cues inside ``box`` (depth/IR pixel coordinates) and list the vetoes.

    Args:
        depth: full z16 depth frame or None.
        ir: full IR frame (uint8 or uint16) registered to depth, or None.
        box: face box (x0, y0, x1, y1) in depth/IR pixels.
        depth_scale_m: metres per depth unit.
        config: thresholds.

    Returns:
        A PhysicsReport; ``vetoes`` holds one human-readable reason per cue that failed.
    """
    vetoes = []
    relief = ir_level = ir_texture = None
    if depth is not None:
        ys, xs = _inner_region(depth.shape, box)
        relief = depth_relief_m(depth[ys, xs], depth_scale_m, config)
        if relief is not None and relief < config.min_relief_m:
            vetoes.append(
                f"depth relief {relief * 1000:.1f} mm < {config.min_relief_m * 1000:.0f} mm: the face is flat "
                "(a photo or screen)"
            )
    if ir is not None:
        ys, xs = _inner_region(ir.shape, box)
        region = ir[ys, xs].astype(np.float64)
        if region.size:
            full_scale = float(np.iinfo(ir.dtype).max)
            median = float(np.median(region))
            ir_level = median / full_scale
            p10, p90 = np.percentile(region, (10, 90))
            ir_texture = float((p90 - p10) / median) if median > 0 else 0.0
            if ir_level < config.min_ir_level:
                vetoes.append(
                    f"IR level {ir_level:.3f} < {config.min_ir_level}: the face reflects no near-infrared "
                    "(a screen)"
                )
            elif ir_texture < config.min_ir_texture:
                vetoes.append(
                    f"IR texture {ir_texture:.3f} < {config.min_ir_texture}: uniform material, not skin (a mask)"
                )
    return PhysicsReport(relief_m=relief, ir_level=ir_level, ir_texture=ir_texture, vetoes=tuple(vetoes))
