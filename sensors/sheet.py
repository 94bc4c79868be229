"""Sheets before the synthetic camera: prints (flat, bent, folded, rolled, hand-held, eyes cut out) and screens.

A sheet's depth is one function of the image position (``_sheet_depth``); its slopes give the
camera illuminator's shading and gloss (``Canvas.illumination``). Painters take ``cast``'s
materials and paint into a ``render.Canvas``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, Tuple

import cv2
import numpy as np

from .render import SKIN_SCATTER_MM, Box, Canvas, Roi, face_points, grid, halftone, moire, noise_bank

if TYPE_CHECKING:  # cast's materials build on render, which this module builds on too
    from .cast import PaperMaterial, ScreenMaterial, Subject

__all__ = ["SHEET_FOLDS", "paint_print", "paint_screen", "paint_hand", "eye_holes", "sheet_landmarks"]

SHEET_FOLDS = ("none", "v", "w", "roll")  # how a print's sheet is shaped beyond its bend: _fold_profile


def _fold_profile(u: np.ndarray, fold: str, fold_m: float, face_m: float) -> Tuple[np.ndarray, np.ndarray]:
    """Depth (m) that a fold or roll adds at ``u`` face widths from the sheet's centre, and dz/du (m per face width).

    "v": one crease down the centre, ridge towards the camera (where a nose would be), the sheet
    ``fold_m`` farther at the face's edges (u = ±0.5). "w": a zig-zag of two creases at u = ±1/6
    (the face in thirds), a valley on the left and a ridge on the right, each ``fold_m`` from the
    face edge beside it; the outer panels run on flat. "roll": a cylinder about a vertical axis
    whose surface is ``fold_m`` farther at the face's edges than at the centre (radius
    (h² + fold_m²) / (2 fold_m) for a half face width h); the sheet past its silhouette is out of view.
    """
    if fold == "v":
        return 2.0 * fold_m * np.abs(u), 2.0 * fold_m * np.sign(u)
    if fold == "w":
        third = np.float32(1.0 / 6.0)
        depth = np.where(u < -third, fold_m + 3.0 * fold_m * (u + third),
                         np.where(u < third, fold_m - 3.0 * fold_m * (u + third), 3.0 * fold_m * (u - third)))
        return depth, np.where(np.abs(u) < third, -3.0 * fold_m, 3.0 * fold_m)
    half = face_m / 2.0
    radius = (half * half + fold_m * fold_m) / (2.0 * fold_m)
    across = u * face_m
    under = np.sqrt(np.maximum(radius * radius - across * across, (1e-3 * radius) ** 2))
    return radius - under, face_m * across / under


def _sheet_in_view(canvas: Canvas, x: np.ndarray, fold: str, fold_m: float) -> np.ndarray:
    """Columns where the sheet faces the camera: all but the far sides of a roll, past its silhouette."""
    face_m = canvas.face_width * canvas.distance / canvas.camera[0]
    if fold != "roll":
        return np.ones(x.shape, bool)
    radius = ((face_m / 2.0) ** 2 + fold_m * fold_m) / (2.0 * fold_m)
    return np.abs((x - canvas.centre[0]) / canvas.face_width * face_m) < radius


def _sheet_depth(canvas: Canvas, x: np.ndarray, y: np.ndarray, bend_m: float, tilt_m: float,
                 pitch_m: float, fold: str = "none", fold_m: float = 0.0) -> Tuple[np.ndarray, Any, Any]:
    """Depth of a sheet (sagging by ``bend_m``, tilted by ``tilt_m``/``pitch_m`` per face width, folded or
    rolled by ``fold``/``fold_m`` as ``_fold_profile`` says) and its slopes dz/dX, dz/dY."""
    bw = canvas.face_width
    u = (x - canvas.centre[0]) / bw
    depth = canvas.distance + bend_m * u * u + tilt_m * u
    v = (y - canvas.centre[1]) / bw
    if pitch_m:
        depth = depth + pitch_m * v
    per_face = canvas.camera[0] / (bw * canvas.distance)  # face widths per metre
    slope_x = (2.0 * bend_m * u + tilt_m) * per_face
    if fold != "none":
        folded, slope = _fold_profile(u, fold, fold_m, 1.0 / per_face)
        depth, slope_x = depth + folded, slope_x + slope * per_face
    return depth, slope_x, pitch_m * per_face


def _arc_length(canvas: Canvas, x0: float, x1: float, bend_m: float, tilt_m: float, fold: str,
                fold_m: float) -> Tuple[np.ndarray, np.ndarray]:
    """Image columns from ``x0`` to ``x1`` (and the sheet's centre) and the sheet's arc length from its
    centre to each, in pixels at the sheet's distance: increasing, so it maps both ways by np.interp."""
    cx = canvas.centre[0]
    step = 0.25  # px: the arc length is integrated on quarter pixels, fine enough for a crease
    edges = np.arange(min(x0, cx), max(x1, cx) + 2 * step, step, dtype=np.float64)
    middles = np.float32(edges[:-1] + step / 2)[None, :]
    _, slope, _ = _sheet_depth(canvas, middles, np.float32([[canvas.centre[1]]]), bend_m, tilt_m, 0.0, fold, fold_m)
    arc = np.concatenate([[0.0], np.cumsum(np.sqrt(1.0 + np.float64(slope[0]) ** 2) * step)])
    return edges, arc - np.interp(cx, edges, arc)


def sheet_landmarks(canvas: Canvas, subject: Subject, bend_m: float = 0.0, tilt_m: float = 0.0, fold: str = "none",
                    fold_m: float = 0.0) -> np.ndarray:
    """``face_points`` of ``subject``'s photo on a sheet where the camera sees them (3×2 image pixels): on a
    folded or rolled sheet each lies at its arc length from the centre, as ``_unfolded_planes`` paints it."""
    points = face_points(canvas.box, subject)
    if fold != "none":
        e = canvas.extent
        edges, arc = _arc_length(canvas, e[0], e[2], bend_m, tilt_m, fold, fold_m)
        points[:, 0] = np.interp(points[:, 0] - canvas.centre[0], arc, edges)
    return points


def _unfolded_planes(canvas: Canvas, roi: Roi, bend_m: float, tilt_m: float, fold: str,
                     fold_m: float) -> Tuple[List[np.ndarray], np.ndarray, np.ndarray]:
    """The photo as a folded or rolled sheet shows it, where the sheet is, and each column's x on the flat sheet.

    Each column shows the part of the print that lies at its arc length from the sheet's centre
    when the sheet is laid flat, so panels turned away from the camera are foreshortened, as paper
    is: it bends but does not stretch. Columns the laid-flat photo does not reach show no sheet.
    """
    cx = canvas.centre[0]
    edges, arc = _arc_length(canvas, roi[0] - 0.5, roi[2] - 0.5, bend_m, tilt_m, fold, fold_m)
    x, y = grid(roi)
    sheet_x = cx + np.interp(x[0], edges, arc).astype(np.float32)[None, :]
    map_x = np.broadcast_to((sheet_x - canvas.origin[0]) / canvas.scale, (roi[3] - roi[1], roi[2] - roi[0]))
    map_y = np.broadcast_to((y - canvas.origin[1]) / canvas.scale, map_x.shape)
    planes = cv2.remap(canvas.texture.planes, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y),
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    on_sheet = (map_x >= 0) & (map_x <= canvas.texture.planes.shape[1] - 1) & _sheet_in_view(canvas, x, fold, fold_m)
    return cv2.split(planes), on_sheet, sheet_x


def paint_print(canvas: Canvas, paper: PaperMaterial, bend_m: float, tilt_m: float, pitch_m: float = 0.0,
                fold: str = "none", fold_m: float = 0.0, eye_spacing: float = 1.0) -> None:
    """The photo printed on ``paper``: one sheet, bent by ``bend_m``, tilted, folded or rolled (``_fold_profile``).

    Gloss mirrors the illuminator along the sheet's slopes. A folded or rolled sheet's turned
    panels darken in IR (Lambertian); bent sheets keep the unshaded IR they always had, so their
    renders (and the demo model trained on them) stay as they were. ``paper.eye_holes`` cuts the
    printed eyes out (where the face's eyes are for ``eye_spacing``); ``paper.hand`` paints the hand
    that holds the sheet.
    """
    roi = canvas.roi(*canvas.extent)
    if roi is None:
        return
    x, y = grid(roi)
    depth, slope_x, slope_y = _sheet_depth(canvas, x, y, bend_m, tilt_m, pitch_m, fold, fold_m)
    if fold == "none":
        r, g, b, lum = canvas.texture_planes(roi)
        on_sheet, sheet_x = np.ones(lum.shape, bool), x
    else:
        (r, g, b, lum), on_sheet, sheet_x = _unfolded_planes(canvas, roi, bend_m, tilt_m, fold, fold_m)
    ink = 1.0 - paper.halftone_depth * halftone(x, y, paper.halftone_period_px)
    grain = paper.grain * noise_bank(*canvas.depth_m.shape)[roi[1]:roi[3], roi[0]:roi[2]]
    rgb = [((paper.contrast * plane + paper.paper_white) * ink + grain) * gain
           for plane, gain in zip((r, g, b), canvas.light)]
    ir = (paper.ir_paper + paper.ir_contrast * lum) * canvas.ir_gain
    if fold != "none":
        ir = ir * canvas.illumination(x, y, slope_x, slope_y)[0]
    if paper.gloss_ir > 0.0:
        _, miss = canvas.illumination(x, y, slope_x, slope_y)
        ir = ir + paper.gloss_ir * canvas.ir_gain * np.exp(-miss / (2.0 * paper.gloss_spread ** 2))
    if paper.eye_holes:
        on_sheet = on_sheet & ~eye_holes(sheet_x, y, canvas.box, eye_spacing)
    canvas.paint(roi, on_sheet, rgb, depth, ir)
    if paper.hand != "none":
        paint_hand(canvas, 1 if paper.hand == "right" else -1,
                   lambda hx, hy: _sheet_depth(canvas, hx, hy, bend_m, tilt_m, pitch_m, fold, fold_m)[0])


def eye_holes(x: np.ndarray, y: np.ndarray, box: Box, eye_spacing: float = 1.0) -> np.ndarray:
    """The holes an attacker cuts over a printed face's eyes: ellipses 3 × 1.5 cm on a 15 cm face."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2 - 0.12 * bh
    return sum(((x - cx - side * eye_spacing * bw) / (0.1 * bw)) ** 2 + ((y - cy) / (0.05 * bw)) ** 2 < 1.0
               for side in (-0.21, 0.21)) > 0


# A hand holding a sheet by its lower edge, on the image's right (mirrored for the left), in face
# widths from the face centre: the palm (centre, half axes) and four fingers (base, tip), reaching
# over the lower cheek and jaw as a hand gripping a photo in front of a face does.
_PALM = ((0.56, 0.86), (0.24, 0.17))
_FINGERS = (((0.68, 0.74), (0.48, 0.30)), ((0.58, 0.70), (0.36, 0.20)), ((0.48, 0.70), (0.25, 0.23)),
            ((0.38, 0.74), (0.16, 0.34)))
_FINGER_RADIUS = 0.055  # face widths: 1.65 cm fingers on a 15 cm face
_HAND_BEFORE_M = 0.015  # the fingers lie on the sheet's front: their middle 1.5 cm before it
_HAND_LUMINANCE = 0.55  # the skin's NIR reflectance as render.paint_head reads it from a face's luminance


def paint_hand(canvas: Canvas, side: int, sheet_depth: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """A hand (palm and four fingers) holding a sheet on the image's right (``side`` 1) or left (-1).

    Skin colour and skin IR (shaded like a live face's, falling off towards the fingers' sides);
    its depth is ``sheet_depth(x, y)`` (the sheet's, extended past its edge) minus 1.5 cm, the
    fingers rounded as cylinders.
    """
    bw, (cx, cy) = canvas.face_width, canvas.centre
    roi = canvas.roi(cx + min(side * 0.05, side * 0.85) * bw, cy + 0.1 * bw, cx + max(side * 0.05, side * 0.85) * bw,
                     cy + 1.1 * bw)
    if roi is None:
        return
    x, y = grid(roi)
    u, v = side * (x - cx) / bw, (y - cy) / bw
    (pu, pv), (au, av) = _PALM
    round_ = np.sqrt(np.clip(1.0 - ((u - pu) / au) ** 2 - ((v - pv) / av) ** 2, 0.0, 1.0))
    for (bu, bv), (tu, tv) in _FINGERS:
        du, dv = tu - bu, tv - bv
        t = np.clip(((u - bu) * du + (v - bv) * dv) / (du * du + dv * dv), 0.0, 1.0)
        off = np.sqrt((u - bu - t * du) ** 2 + (v - bv - t * dv) ** 2) / _FINGER_RADIUS
        round_ = np.maximum(round_, np.sqrt(np.clip(1.0 - off * off, 0.0, 1.0)))
    hand = round_ > 0.0
    facing = 0.75 + 0.25 * round_
    radius_m = _FINGER_RADIUS * bw * canvas.distance / canvas.camera[0]
    depth = sheet_depth(x, y) - _HAND_BEFORE_M - radius_m * (round_ - 0.5)
    skin = [0.9 * s * g * facing for s, g in zip(canvas.texture.skin, canvas.light)]
    canvas.paint(roi, hand, skin, depth, (90.0 + 90.0 * _HAND_LUMINANCE) * facing * canvas.ir_gain, SKIN_SCATTER_MM)


def paint_screen(canvas: Canvas, screen: ScreenMaterial, bend_m: float, tilt_m: float, pitch_m: float,
                 phase: float) -> None:
    """The photo on a ``screen`` in a dark bezel; its glass mirrors the illuminator where it faces the camera."""
    bezel, e = screen.bezel_width * canvas.face_width, canvas.extent
    roi = canvas.roi(e[0] - bezel, e[1] - bezel, e[2] + bezel, e[3] + bezel)
    if roi is None:
        return
    x, y = grid(roi)
    depth, slope_x, slope_y = _sheet_depth(canvas, x, y, bend_m, tilt_m, pitch_m)
    r, g, b, _ = canvas.texture_planes(roi)
    # A screen emits its own light (no room tint) and no NIR; its pixel grid gives scanlines and moiré.
    picture = (x >= e[0]) & (x < e[2]) & (y >= e[1]) & (y < e[3])
    rows = np.where(np.arange(roi[1], roi[3])[:, None] % 3 == 0, screen.scanline, 1.0).astype(np.float32)
    pattern = rows * (1.0 + screen.moire * moire(x, y, phase, screen.moire_frequency))
    glare: Any = 0.0
    if screen.glare_ir > 0.0:
        _, miss = canvas.illumination(x, y, slope_x, slope_y)
        glare = screen.glare_ir * canvas.ir_gain * np.exp(-miss / (2.0 * screen.glare_spread ** 2))
    canvas.paint(roi, np.ones(picture.shape, bool), screen.bezel_rgb, depth, screen.bezel_ir + glare)
    rgb = [(screen.brightness * plane + glow) * pattern for plane, glow in zip((r, g, b), screen.glow)]
    canvas.paint(roi, picture, rgb, depth, screen.screen_ir + glare)
