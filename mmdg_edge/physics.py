"""Physical checks that can only deny: depth and IR cues measured where the landmarks put the face.

They run before the model and can veto "live" but never grant it (AND logic): a learned model can
be fooled by a good photo, a rule by a good mask; together both must be fooled at once.
- Face shape: depth is sampled at the face's own landmarks (``SHAPE_POINTS``: nose, eye corners,
  cheeks, forehead, lips, chin). A face must follow a face: the nose tip stands 10–70 mm in front
  of the plane of the eye corners and cheeks (on a head turned less than 25°: beyond, the nose
  hides the far side), and 8 mm or more in front of the line from
  the forehead to the chin; the landmark model's own relief must show in the depth; and no sheet
  may explain the depth — a plane, or paper bent or folded along one direction (paper does not
  stretch into a dome), at 0, 45, 90 or 135°. A folded photo puts its crest under the nose, but
  also under the brow and the chin; only a face has the nose alone in front. Points the sensor
  left without depth or that see past the face (the wall), and the few worst-fitting points of
  every model (a finger, a strand of hair; never the nose), are left out.
- IR presence: skin reflects the camera's near-infrared; a screen emits none, so a replayed face is
  nearly black in IR.
- IR material: the projector's dots on skin are blurred by the light scattering a few millimetres
  inside it before it leaves; on resin, paper, plastic, latex or cloth they stay sharp. The dots'
  blur is measured on squares of raw IR at the forehead, nose bridge, cheeks and chin (the
  autocorrelation of their fine detail), converted to millimetres at the face, and a median under
  ``min_scatter_mm`` is vetoed. Silicone scatters nearly as skin does and passes: the benchmark
  (benchmarks/bench_material_check.py) reports what this check catches per mask family. With the
  projector off (no dots), or a face so far that a pixel spans more than ``max_material_mm_per_px``,
  it is not measured: the verdict lists it as a check not run, never as passed. (A source says the
  projector is off with ``FrameSet.metadata["emitter"]`` "off" or "interleaved", as the RealSense
  source does; the aligner then cuts no patches.)

A check that cannot be measured (no depth stream, too few landmarks with depth, no IR pixels on the
face) is reported as unmeasured with its reason, never as passed: the detector decides, from the
streams it requires, whether that makes the frameset unreliable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .face_mesh import (
    EYE_CHEEK_POINTS, LEFT_EYE_OUTER, MIDLINE_POINTS, NOSE_POINTS, NOSE_TIP, RIGHT_EYE_OUTER, SHAPE_POINTS,
)
from .frames import FaceCrops

__all__ = ["DEPTH_CHECKS", "IR_CHECKS", "OPTIONAL_CHECKS", "PhysicsConfig", "PhysicsReport", "ShapeFit", "check_physics", "fit_face_shape"]

DEPTH_CHECKS = ("face shape",)
IR_CHECKS = ("IR presence", "IR material")
# Checks whose absence does not make a frameset unreliable (they add to the others, deny-only): the
# material check needs the projector on and the face near enough, which a kiosk cannot always have.
OPTIONAL_CHECKS = ("IR material",)

# Adult outer eye-corner distance (≈ 90 mm): the landmarks' pixel scale in metres when the frameset has
# no intrinsics. Only the mesh model's depth scale depends on it, and that scale is fitted freely.
_EYE_CORNERS_M = 0.09
_KNOTS = (-0.6, -0.3, 0.0, 0.3, 0.6)  # fold lines, in eye-corner distances from the nose tip
_SHEET_ANGLES = (0.0, 45.0, 90.0, 135.0)  # the directions a sheet bends or folds along
# The sheets the face-shape check fits (a plane, then bent and folded at each angle by turns: _designs).
_SHEETS = ("plane",) + tuple(f"sheet {how} at {angle:.0f}°" for angle in _SHEET_ANGLES for how in ("bent", "folded"))
_FACE_DEPTH_M = 0.15  # no point of a face lies farther than this from its median depth
_NOISE_FREE_M = 0.8  # up to here D4xx stereo noise sampled at the landmarks stays well under a millimetre

# Which of SHAPE_POINTS each role takes, as masks over them (fit_face_shape runs every frameset).
_NOSE = SHAPE_POINTS.index(NOSE_TIP)
_IS_NOSE, _EYE_CHEEK, _MIDLINE, _FOREHEAD, _CHIN = (np.isin(SHAPE_POINTS, part) for part in (
    NOSE_POINTS, EYE_CHEEK_POINTS, MIDLINE_POINTS, MIDLINE_POINTS[:2], MIDLINE_POINTS[2:]))


@dataclass(frozen=True)
class PhysicsConfig:
    """Veto thresholds. Defaults are set on the synthetic camera's live faces and attacks
    (tests/test_physics.py, benchmarks/bench_face_geometry.py); recalibrate on your camera if your
    faces are farther than ~1 m."""

    min_nose_m: float = 0.010  # the nose tip in front of the eye-corner/cheek plane: at least this
    # and at most this (more is something held before the face): a 4 cm nose on a round head stands about 60 mm
    # out of its eye corners and cheeks (tests/test_physics.py)
    max_nose_m: float = 0.07
    min_midline_m: float = 0.008  # the nose tip in front of the forehead–chin line: at least this
    # Beyond this yaw the nose hides the far eye and cheek and the near cheek comes level with it: the
    # eye/cheek plane says nothing, and the nose is judged against the forehead–chin line alone.
    max_plane_yaw_deg: float = 25.0
    min_shape_scale: float = 0.4  # the landmark model's relief must show in the depth at this fraction or more
    # No sheet may explain the depth to within this RMS (at up to 0.8 m; beyond, it grows with the
    # stereo noise, as distance²): tests/test_physics.py holds live relief above 4 mm and sheets below 3 mm.
    min_sheet_rms_m: float = 0.003
    trim: float = 0.15  # share of worst-fitting points each model may leave out (never the nose)
    min_shape_points: int = 20  # fewer landmarks with depth: the shape cannot be measured
    min_ir_level: float = 0.08  # median face IR as a fraction of the IR format's full scale
    min_ir_pixels: int = 50  # fewer IR pixels on the face: IR cannot be measured
    # The material check (set on the synthetic camera's training families, benchmarks/bench_material_check.py):
    min_scatter_mm: float = 1.0  # the projector's dots blurred less than this (median over the patches): not skin
    dot_px: float = 0.6  # σ of one projector dot as the IR imager resolves it on a hard surface, pixels
    min_dot_contrast: float = 0.03  # fine IR detail / level below this: no dots to measure (projector off)
    max_material_mm_per_px: float = 2.0  # a pixel spans more at the face: skin's blur is not resolved

    def __post_init__(self) -> None:
        if not 0 < self.min_nose_m < self.max_nose_m:
            raise ValueError(f"PhysicsConfig: expected 0 < min_nose_m < max_nose_m, got {self.min_nose_m} and "
                             f"{self.max_nose_m}")
        if not (self.min_sheet_rms_m > 0 and 0.0 <= self.trim < 0.5):
            raise ValueError("PhysicsConfig: expected min_sheet_rms_m > 0 and 0 ≤ trim < 0.5, got "
                             f"{self.min_sheet_rms_m}, {self.trim}")
        if not 12 <= self.min_shape_points <= len(SHAPE_POINTS) or self.min_ir_pixels < 1:
            raise ValueError(f"PhysicsConfig: min_shape_points must be in 12..{len(SHAPE_POINTS)} (the sheet models "
                             f"have up to 8 coefficients) and min_ir_pixels ≥ 1; got {self.min_shape_points}, "
                             f"{self.min_ir_pixels}")


@dataclass(frozen=True)
class ShapeFit:
    """How the measured depth at the landmarks fits a face and the sheets (lengths in metres).

    Attributes:
        nose_m: the nose tip's height above the plane of the eye corners and cheeks.
        midline_m: the nose tip's height above the line from the forehead to the chin.
        scale: the fitted size of the landmark model's relief in the depth (1: as the model says).
        sheet: the sheet that fits the depth best (a plane, or a sheet bent or folded along one direction).
        sheet_rms_m: its trimmed RMS residual over the points (the nose always counted).
        face_rms_m: the same for the face model (a plane plus the landmark model's relief).
        points: landmarks with depth.
    """

    nose_m: float
    midline_m: float
    scale: float
    sheet: str
    sheet_rms_m: float
    face_rms_m: float
    points: int


@dataclass(frozen=True)
class PhysicsReport:
    """Measured cues (None where not measured), the vetoes that fired, and per check that could not
    be measured, why (``unmeasured``: check name → reason). ``scatter_mm``: how far the face scatters
    the projector's light, as the dots' blur shows it (median over the patches, millimetres)."""

    shape: Optional[ShapeFit]
    ir_level: Optional[float]
    scatter_mm: Optional[float]
    vetoes: Tuple[str, ...]
    unmeasured: Dict[str, str]


def _solve(design: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Least-squares coefficients through the normal equations, for one design (rows × columns) or a
    stack of them (models × rows × columns, a column of zeros where a model has fewer): a few columns,
    tens of rows, so far cheaper than an SVD per model, and the columns are scaled to eye-corner
    distances, so well conditioned; the ridge gives a padding column the coefficient 0."""
    gram = np.swapaxes(design, -1, -2) @ design
    ridge = 1e-12 * np.trace(gram, axis1=-2, axis2=-1)[..., None, None] * np.eye(gram.shape[-1])
    return np.linalg.solve(gram + ridge, (np.swapaxes(design, -1, -2) @ depth[..., None]))[..., 0]


def _trimmed_fits(stack: np.ndarray, depth: np.ndarray, trim: float, kept: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Least squares of every model's design (``stack``: models × points × columns, zero columns where
    a model has fewer) at once, then again without each model's worst ``trim`` share of points, never
    dropping the ``kept`` ones (the nose: no model may explain a face by leaving out its nose);
    (coefficients per model, 0 for a padding column; trimmed RMS per model)."""
    coeffs = _solve(stack, depth)
    use = np.ones(stack.shape[:2], bool)
    drop = int(trim * len(depth))
    if drop:
        error = np.abs(depth - (stack @ coeffs[..., None])[..., 0])
        error[:, kept] = -1.0
        np.put_along_axis(use, np.argsort(error, axis=1, kind="stable")[:, len(depth) - drop:], False, axis=1)
        coeffs = _solve(stack * use[..., None], depth * use)
    residual = np.where(use, depth - (stack @ coeffs[..., None])[..., 0], 0.0)
    rms = np.sqrt((residual ** 2).sum(axis=1) / use.sum(axis=1))
    return coeffs, rms


def _designs(u: np.ndarray, v: np.ndarray, relief: np.ndarray) -> np.ndarray:
    """The design matrices of the face model (a tilted plane plus the landmark model's relief) and of
    ``_SHEETS``, stacked (models × points × columns, zeros where a model has fewer columns).

    Every surface a sheet of paper or a screen can take: paper bends in one direction at a time (it
    cannot stretch into a dome), so each sheet is a tilted plane plus a profile along one direction —
    a bend (rolled or sagging sheet: t², t³) or folds at ``_KNOTS`` — at ``_SHEET_ANGLES``.
    """
    stack = np.zeros((1 + len(_SHEETS), len(u), 3 + len(_KNOTS)))
    stack[:, :, 0], stack[:, :, 1], stack[:, :, 2] = 1.0, u, v
    stack[0, :, 3] = relief
    radians = np.radians(_SHEET_ANGLES)[:, None]
    t = u * np.cos(radians) + v * np.sin(radians)  # along each angle: angles × points
    stack[2::2, :, 3], stack[2::2, :, 4] = t * t, t ** 3
    stack[3::2, :, 3:] = np.maximum(t[..., None] - np.asarray(_KNOTS), 0.0)
    return stack


def _heights_above(u: np.ndarray, v: np.ndarray, d: np.ndarray, plane: np.ndarray, line: np.ndarray,
                   at: int) -> Tuple[float, float]:
    """How far point ``at`` stands in front of the plane the ``plane`` points span and of the line
    (along v) the ``line`` points span (boolean masks over the points): both fits in one solve."""
    design = np.zeros((2, len(d), 3))
    design[:, :, 0], design[0, :, 1], design[:, :, 2] = 1.0, u, v
    design *= np.stack([plane, line])[:, :, None]
    coeffs = _solve(design, np.where(np.isfinite(d), d, 0.0))
    surface = coeffs[:, 0] + coeffs[:, 1] * u[at] + coeffs[:, 2] * v[at]
    return float(surface[0] - d[at]), float(surface[1] - d[at])


def fit_face_shape(landmarks: np.ndarray, depth_m: np.ndarray, metres_per_px: Optional[float],
                   config: PhysicsConfig = PhysicsConfig()) -> Optional[ShapeFit]:
    """Fit the measured depth at ``SHAPE_POINTS`` with the face model and every sheet model.

    Args:
        landmarks: (N, 3) landmarks in depth-grid pixels (x, y, relative depth in pixel units).
        depth_m: (len(SHAPE_POINTS),) measured depth in metres at ``SHAPE_POINTS``, NaN where none.
        metres_per_px: metres a pixel spans at the face (None: from the eye-corner distance).
        config: trimming and the minimum number of points.

    Returns:
        The ShapeFit, or None when fewer than ``config.min_shape_points`` points, the nose tip, five
        of the eye/cheek points, a forehead and a chin point do not all have depth.
    """
    valid = np.isfinite(depth_m)
    if valid.any():  # a point that sees past a turned head's edge measures the wall, not the face
        valid &= np.abs(np.where(valid, depth_m, 0.0) - np.median(depth_m[valid])) < _FACE_DEPTH_M
    depth_m = np.where(valid, depth_m, np.nan)
    plane, line = valid & _EYE_CHEEK, valid & _MIDLINE
    if valid.sum() < config.min_shape_points or not valid[_NOSE] or plane.sum() < 5 \
            or not (valid & _FOREHEAD).any() or not (valid & _CHIN).any():
        return None
    eye_px = max(float(np.linalg.norm(landmarks[LEFT_EYE_OUTER] - landmarks[RIGHT_EYE_OUTER])), 1e-6)
    if metres_per_px is None:
        metres_per_px = _EYE_CORNERS_M / eye_px
    points = landmarks[list(SHAPE_POINTS)]
    u = (points[:, 0] - landmarks[NOSE_TIP, 0]) / eye_px
    v = (points[:, 1] - landmarks[NOSE_TIP, 1]) / eye_px
    relief = points[:, 2] * metres_per_px
    nose_m, midline_m = _heights_above(u, v, depth_m, plane, line, _NOSE)
    u, v, relief, d = u[valid], v[valid], relief[valid], depth_m[valid]
    coeffs, rms = _trimmed_fits(_designs(u, v, relief), d, config.trim, _IS_NOSE[valid])
    best = 1 + int(np.argmin(rms[1:]))
    return ShapeFit(nose_m, midline_m, float(coeffs[0, 3]), _SHEETS[best - 1], float(rms[best]), float(rms[0]),
                    int(valid.sum()))


def _depth_checks(crops: FaceCrops, config: PhysicsConfig, vetoes: list,
                  unmeasured: Dict[str, str]) -> Optional[ShapeFit]:
    if crops.depth is None or crops.shape_depth_m is None or crops.landmarks is None:
        unmeasured["face shape"] = "no depth on the face" if crops.landmarks is not None else "no face landmarks"
        return None
    fit = fit_face_shape(crops.landmarks, crops.shape_depth_m, crops.metres_per_px, config)
    if fit is None:
        valid = int(np.isfinite(crops.shape_depth_m).sum())
        unmeasured["face shape"] = (f"too few face landmarks with depth ({valid} of {len(SHAPE_POINTS)}, "
                                    f"{config.min_shape_points} and the nose tip needed)")
        return fit
    turned = crops.quality.yaw_deg is not None and abs(crops.quality.yaw_deg) > config.max_plane_yaw_deg
    if not turned and fit.nose_m < config.min_nose_m:
        vetoes.append(f"the nose stands {fit.nose_m * 1000:.1f} mm out of the eye and cheek plane < "
                      f"{config.min_nose_m * 1000:.0f} mm: a flat or bent surface, not a face")
    elif not turned and fit.nose_m > config.max_nose_m:
        vetoes.append(f"the nose stands {fit.nose_m * 1000:.0f} mm out of the eye and cheek plane > "
                      f"{config.max_nose_m * 1000:.0f} mm: something stands before the face")
    elif fit.midline_m < config.min_midline_m:
        vetoes.append(f"the nose stands {fit.midline_m * 1000:.1f} mm out of the forehead–chin line < "
                      f"{config.min_midline_m * 1000:.0f} mm: a sheet folded or rolled down the face, not a face")
    elif fit.scale < config.min_shape_scale:
        vetoes.append(f"the face's relief shows at {fit.scale:.2f} of its size in the depth < "
                      f"{config.min_shape_scale}: a flat or bent surface, not a face")
    else:
        distance = crops.quality.distance_m or 0.0
        limit = config.min_sheet_rms_m * max(1.0, (distance / _NOISE_FREE_M) ** 2)
        if fit.sheet_rms_m < limit:
            vetoes.append(f"a {fit.sheet} explains the face's depth to {fit.sheet_rms_m * 1000:.2f} mm < "
                          f"{limit * 1000:.2f} mm: a sheet, not a face")
    return fit


def dot_blur_px(patch: np.ndarray) -> Tuple[float, float]:
    """How blurred the projector's dots are in a square of raw IR: (σ in pixels, fine-detail contrast).

    The fine detail (the patch less its 6 px blur) of sparse Gaussian dots of σ has the
    autocorrelation exp(-lag² / 4σ²), so σ² = -3 / (4 ln(C(2) / C(1))) from the lags 1 and 2 along
    both axes (sensor noise, uncorrelated, only adds to lag 0). σ is inf where the detail is not
    dot-like (C(2) ≥ C(1) or C(1) ≤ 0); the contrast is the detail's RMS over the patch's mean.
    """
    sigma, contrast = _dot_blurs([patch])
    return float(sigma[0]), float(contrast[0])


def _dot_blurs(patches: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """``dot_blur_px`` of patches of one shape at once: (σ per patch, contrast per patch)."""
    p = np.stack(patches).astype(np.float64)
    detail = p - np.stack([cv2.GaussianBlur(one, (0, 0), 6.0) for one in p])
    detail -= detail.mean(axis=(1, 2), keepdims=True)

    def lag(k: int) -> np.ndarray:
        return 0.5 * ((detail[:, :, k:] * detail[:, :, :-k]).mean(axis=(1, 2))
                      + (detail[:, k:] * detail[:, :-k]).mean(axis=(1, 2)))

    c1, c2 = lag(1), lag(2)
    contrast = np.sqrt((detail * detail).mean(axis=(1, 2))) / np.maximum(p.mean(axis=(1, 2)), 1e-6)
    ratio = np.divide(c2, c1, out=np.ones_like(c1), where=c1 > 0)
    dot_like = (ratio > 0.0) & (ratio < 1.0)
    sigma = np.where(dot_like, np.sqrt(-3.0 / (4.0 * np.log(np.where(dot_like, ratio, 0.5)))),
                     np.where((ratio <= 0.0) & (c1 > 0), 0.0, np.inf))
    return sigma, contrast


def _material_check(crops: FaceCrops, config: PhysicsConfig, vetoes: list,
                    unmeasured: Dict[str, str]) -> Optional[float]:
    patches = crops.ir_patches
    if not patches:
        unmeasured["IR material"] = ("no projector dots in the IR (emitter off or interleaved)" if patches is None
                                     else "no IR patches on the face")
        return None
    if crops.metres_per_px is None or crops.metres_per_px * 1000 > config.max_material_mm_per_px:
        unmeasured["IR material"] = ("no intrinsics or depth to scale the dots" if crops.metres_per_px is None else
                                     f"face too far: a pixel spans {crops.metres_per_px * 1000:.1f} mm > "
                                     f"{config.max_material_mm_per_px} mm")
        return None
    shapes = {patch.shape for patch in patches}
    sigmas, contrasts = (_dot_blurs(patches) if len(shapes) == 1 else
                         np.array([dot_blur_px(patch) for patch in patches]).T)
    contrast = float(np.median(contrasts))
    if contrast < config.min_dot_contrast:
        unmeasured["IR material"] = (f"no projector dots on the face (fine IR contrast {contrast:.3f} < "
                                     f"{config.min_dot_contrast}: projector off?)")
        return None
    scatter_px = np.sqrt(np.maximum(sigmas * sigmas - config.dot_px ** 2, 0.0))
    scatter_mm = float(np.median(scatter_px) * crops.metres_per_px * 1000)
    if scatter_mm < config.min_scatter_mm:
        vetoes.append(f"the projector's dots are blurred {scatter_mm:.2f} mm on the face < {config.min_scatter_mm} mm: "
                      "a hard material (resin, paper, latex, cloth), not skin, which scatters near-infrared")
    return scatter_mm


def _ir_checks(crops: FaceCrops, config: PhysicsConfig, vetoes: list,
               unmeasured: Dict[str, str]) -> Tuple[Optional[float], Optional[float]]:
    if crops.ir_region is None or crops.ir_region.size < config.min_ir_pixels:
        why = "no IR stream" if crops.ir_region is None else (f"too few IR pixels on the face ({crops.ir_region.size} "
                                                             f"< {config.min_ir_pixels})")
        unmeasured.update({name: why for name in IR_CHECKS})
        return None, None
    level = crops.ir_median / float(np.iinfo(crops.ir_region.dtype).max)
    if level < config.min_ir_level:
        vetoes.append(f"IR level {level:.3f} < {config.min_ir_level}: the face reflects no near-infrared (a screen)")
        return level, None
    return level, _material_check(crops, config, vetoes, unmeasured)


def check_physics(crops: FaceCrops, config: PhysicsConfig = PhysicsConfig()) -> PhysicsReport:
    """Measure the cues on the face the aligner carried and list the vetoes.

    Args:
        crops: FaceCrops with ``landmarks`` and ``shape_depth_m`` (depth at the landmarks) and
            ``ir_region`` (raw IR pixels of the landmark region) where the frameset had those streams.
        config: thresholds.

    Returns:
        A PhysicsReport; ``vetoes`` holds one human-readable reason per cue that failed and
        ``unmeasured`` the checks that could not run, with why.
    """
    vetoes: list = []
    unmeasured: Dict[str, str] = {}
    shape = _depth_checks(crops, config, vetoes, unmeasured)
    ir_level, scatter_mm = _ir_checks(crops, config, vetoes, unmeasured)
    return PhysicsReport(shape, ir_level, scatter_mm, tuple(vetoes), unmeasured)
