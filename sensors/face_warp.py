"""Face geometry in face-box units: where a frontal face's features sit, and the warp that reshapes them.

Face-box units put the box's centre at (0, 0): u = (x - centre) / box width, positive to the right,
v = (y - centre) / box height, positive down. The box is where a frontal face detector (OpenCV's
Haar cascade) boxes the face, so the units fit any frontal photo. ``FEATURES`` are where Face Mesh
places the base photo's features in these units, its two sides averaged (that head is rolled ~4°:
its left eye sits 0.03 box heights above its right), so a mirrored photo has the same features.

``displacement`` is the warp: a sum of smooth terms, each a Gaussian-weighted shift of a feature
(nose wings, mouth corners, cheeks) or a Gaussian-weighted scaling about one (eyes, lower face,
forehead), one term per ``Subject`` field that differs from the photo. ``warp_face`` applies it
with one ``cv2.remap``; ``warp_points`` says where it puts given points, so painters draw beards
and wrinkles where the warped features are and tests know where a feature must land.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterator, Optional, Tuple

import cv2
import numpy as np

from .render import EYE_ROW, NOSE_ROOT_ROW, NOSE_TIP_ROW, Box, FaceTexture, gaussian

if TYPE_CHECKING:  # cast's Subject builds on this module's warp
    from .cast import Subject

__all__ = ["HEAD", "EYE_ROW", "FEATURES", "GEOMETRY_FIELDS", "face_units", "displacement", "warp_face",
           "warp_points", "features"]

# The head ellipse of render.head_relief_m (centre height, half width, half height): what a live or
# mask render shows of a texture.
HEAD = (-0.12, 0.6, 0.67)
# The image's right-hand feature of each pair (the left one mirrors it) and the midline's features.
FEATURES: Dict[str, Tuple[float, float]] = {
    "eye": (0.23, -0.12), "brow": (0.26, -0.235), "nose_root": (0.0, NOSE_ROOT_ROW), "nose_tip": (0.0, NOSE_TIP_ROW),
    "nose_wing": (0.16, 0.14), "mouth_corner": (0.24, 0.275), "upper_lip": (0.0, 0.27), "lower_lip": (0.0, 0.415),
    "chin": (0.0, 0.59), "jaw": (0.40, 0.33), "cheek": (0.46, 0.05), "hairline": (0.0, -0.47),
}
# Subject fields that reshape the face (1.0: the photo's own), in the order their terms are summed.
GEOMETRY_FIELDS = ("eye_size", "nose_width", "nose_length", "mouth_width", "jaw_width", "cheek_fullness",
                   "forehead_height")
_SIDES = (-1.0, 1.0)


def face_units(texture: FaceTexture) -> Tuple[np.ndarray, np.ndarray]:
    """Texture pixel centres in face-box units: u as a 1×W row, v as an H×1 column."""
    fb, (h, w) = texture.face_box, texture.planes.shape[:2]
    u = (np.arange(w, dtype=np.float32)[None, :] - (fb[0] + fb[2]) / 2) / (fb[2] - fb[0])
    v = (np.arange(h, dtype=np.float32)[:, None] - (fb[1] + fb[3]) / 2) / (fb[3] - fb[1])
    return u, v


def _shift(u: np.ndarray, v: np.ndarray, anchor: Tuple[float, float], shift: Tuple[float, float],
           sigma: Tuple[float, float]) -> Tuple[np.ndarray, np.ndarray]:
    """A Gaussian-weighted shift: the point at ``anchor`` lands ``shift`` away, its surroundings move less.

    The weight is 1 at the shifted point, so the backward map (output minus displacement) sends that
    output pixel exactly to ``anchor`` (up to the tails of other terms).
    """
    weight = gaussian(u, v, anchor[0] + shift[0], anchor[1] + shift[1], *sigma)
    return shift[0] * weight, shift[1] * weight


def _scale(u: np.ndarray, v: np.ndarray, centre: Tuple[float, float], factor: Tuple[float, float],
           window: Tuple[float, float, float, float]) -> Tuple[np.ndarray, np.ndarray]:
    """A Gaussian-weighted scaling about ``centre``: ``factor`` (per axis) where the window's weight is 1.

    ``window`` is (centre u, centre v, σu, σv); the output pixel p samples the photo at
    centre + (p - centre) / factor where the weight is 1, at p itself where it is 0.
    """
    weight = gaussian(u, v, *window)
    return ((u - centre[0]) * (1.0 - 1.0 / factor[0]) * weight, (v - centre[1]) * (1.0 - 1.0 / factor[1]) * weight)


def _terms(u: np.ndarray, v: np.ndarray, subject: Subject) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """(du, dv) of each geometry field that differs from the photo, in face-box units."""
    eye, wing, corner, cheek = FEATURES["eye"], FEATURES["nose_wing"], FEATURES["mouth_corner"], FEATURES["cheek"]
    for name in GEOMETRY_FIELDS:
        s = getattr(subject, name)
        if s == 1.0:
            continue
        if name == "eye_size":
            parts = [_scale(u, v, (side * eye[0], eye[1]), (s, s), (side * eye[0], eye[1], 0.16, 0.1))
                     for side in _SIDES]
        elif name == "nose_width":
            parts = [_shift(u, v, (side * wing[0], wing[1]), (side * (s - 1.0) * wing[0], 0.0), (0.07, 0.09))
                     for side in _SIDES]
        elif name == "nose_length":  # the tip and wings move along the nose, away from its root
            length = FEATURES["nose_tip"][1] - FEATURES["nose_root"][1]
            parts = [_shift(u, v, FEATURES["nose_tip"], (0.0, (s - 1.0) * length), (0.2, 0.07))]
        elif name == "mouth_width":
            parts = [_shift(u, v, (side * corner[0], corner[1]), (side * (s - 1.0) * corner[0], 0.0), (0.12, 0.09))
                     for side in _SIDES]
        elif name == "jaw_width":  # the lower face widens about the midline, the chin's column stays
            parts = [_scale(u, v, (0.0, 0.0), (s, 1.0), (0.0, 0.42, 0.6, 0.17))]
        elif name == "cheek_fullness":
            parts = [_shift(u, v, (side * cheek[0], cheek[1]), (side * (s - 1.0) * cheek[0], 0.0), (0.1, 0.15))
                     for side in _SIDES]
        else:  # forehead_height: brow to hairline stretches about the brows
            parts = [_scale(u, v, (0.0, FEATURES["brow"][1]), (1.0, s), (0.0, -0.42, 0.5, 0.12))]
        yield sum(p[0] for p in parts), sum(p[1] for p in parts)


def displacement(u: np.ndarray, v: np.ndarray, subject: Subject, width: float = 1.0,
                 height: float = 1.0) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """How far ``subject``'s warp moves the content that ends up at (u, v): (dx, dy) in units of
    ``width`` and ``height`` (the face box's, for pixels); None when the subject keeps the photo's shape.

    The eye-spacing term (a horizontal warp confined to the eye band) keeps the form and the
    arithmetic order it always had, so subjects that only space their eyes render as before.
    """
    dx: Optional[np.ndarray] = None
    dy: Optional[np.ndarray] = None
    if subject.eye_spacing != 1.0:
        weight = np.exp(-0.5 * ((v - EYE_ROW) / 0.12) ** 2) * np.clip(1.0 - np.abs(u) / 0.5, 0.0, 1.0)
        dx = (subject.eye_spacing - 1.0) * u * width * weight
    for du, dv in _terms(u, v, subject):
        dx = du * width if dx is None else dx + du * width
        dy = dv * height if dy is None else dy + dv * height
    if dx is None:
        return None
    return dx, (np.zeros_like(dx) if dy is None else dy)


def warp_face(rgb: np.ndarray, u: np.ndarray, v: np.ndarray, box: Box, subject: Subject) -> np.ndarray:
    """``rgb`` (the photo, H×W×3 float32, face box ``box``) reshaped to ``subject``'s geometry by one remap.

    Args:
        rgb: the photo; returned as it is when the subject keeps the photo's shape.
        u, v: its pixel centres in face-box units (``face_units``).
        box: its face box.
        subject: the eye spacing and ``GEOMETRY_FIELDS`` to give it.

    Returns:
        The warped photo, same shape; pixels beyond the edge repeat the edge.
    """
    moved = displacement(u, v, subject, box[2] - box[0], box[3] - box[1])
    if moved is None:
        return rgb
    dx, dy = moved
    map_x = np.arange(rgb.shape[1], dtype=np.float32)[None, :] - dx
    map_y = np.broadcast_to(np.arange(rgb.shape[0], dtype=np.float32)[:, None], map_x.shape) - dy
    return cv2.remap(rgb, np.ascontiguousarray(map_x, dtype=np.float32), np.ascontiguousarray(map_y, dtype=np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_points(points: np.ndarray, subject: Subject) -> np.ndarray:
    """Where ``subject``'s warp puts photo points (N×2, face-box units): the output q with q - D(q) = point.

    Solved by fixed-point iteration q ← point + D(q); every term moves less than its own distance
    over the allowed field ranges (the warp never folds), so it converges.
    """
    points = np.asarray(points, np.float64).reshape(-1, 2)
    warped = points.copy()
    for _ in range(60):
        moved = displacement(warped[:, 0], warped[:, 1], subject)
        if moved is None:
            return warped
        target = points + np.column_stack(moved)
        if np.max(np.abs(target - warped)) < 1e-10:
            return target
        warped = target
    return warped


def features(subject: Subject) -> Dict[str, Tuple[float, float]]:
    """``FEATURES`` where ``subject``'s warp puts them (face-box units; the image's right one of each pair)."""
    moved = warp_points(np.float64(list(FEATURES.values())), subject)
    return {name: (float(p[0]), float(p[1])) for name, p in zip(FEATURES, moved)}
