"""What the camera sees worn on a head as objects of their own: glasses on people and masks, wigs on masks.

Physical, not only painted on: glasses' frames stand before the face or mask (the depth camera
sees them) in hard plastic that keeps the projector's dots sharp, and their lenses dim what lies
behind in colour and near-infrared; a wig's hair stands off the head, reflects the projector's
850 nm light as hair does (melanin absorbs little there: dark hair shows mid-grey) and spreads its
dots as fibres do. ``glasses_planes`` draws the rims (``face_paint`` paints a person's glasses with
it, ``render`` stands them off the face); ``wear_layers`` draws what a mask wears as planes over
the head's region of interest, which ``render`` turns with the head like every other layer;
``dress`` puts them on a painted mask surface.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Sequence, Tuple

import cv2
import numpy as np

if TYPE_CHECKING:  # render and face_paint import this module
    from .cast import MaskMaterial
    from .render import Canvas, Roi

__all__ = ["GLASSES_STANDOFF_M", "WIG_STANDOFF_M", "glasses_planes", "wear_layers", "covering", "dress"]

GLASSES_STANDOFF_M = 0.012  # the frames before the face's (or mask's) surface at the eyes
WIG_STANDOFF_M = 0.015  # the hair's volume over the scalp
_FRAME_RGB = (28.0, 26.0, 30.0)
_FRAME_IR = 60.0  # dark acetate at the face's distance, before the IR gain
_HAIR_IR = 130.0
_LENS_DIM = 0.1  # what a clear lens takes from colour and near-infrared (reflection, tint)
_SHIFT = 2  # cv2 draws with 2 fractional bits: sub-pixel rims


def glasses_planes(roi: Sequence[int], box: Sequence[float], centres: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Frame and lens coverage (0..1) over ``roi`` (x0, y0, x1, y1) of a face ``box``: two rims round
    ``centres`` (2×2 pixels, ``render.glasses_centres``) and a bridge (the temples run backwards,
    foreshortened to nothing from the front)."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    size = (roi[3] - roi[1], roi[2] - roi[0])
    frame, lens = np.zeros(size, np.uint8), np.zeros(size, np.uint8)
    s = 1 << _SHIFT
    thickness = max(1, int(round(0.014 * bw)))
    axes = (int(0.15 * bw * s), int(0.1 * bh * s))
    centres = [(int((x - roi[0]) * s), int((y - roi[1]) * s)) for x, y in np.asarray(centres)]
    for centre in centres:
        cv2.ellipse(lens, centre, axes, 0, 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
        cv2.ellipse(frame, centre, axes, 0, 0, 360, 255, thickness, cv2.LINE_AA, _SHIFT)
    row = int(centres[0][1] - 0.02 * bh * s)
    cv2.line(frame, (centres[0][0] + axes[0], row), (centres[1][0] - axes[0], row), 255, thickness, cv2.LINE_AA,
             _SHIFT)
    return frame.astype(np.float32) / 255.0, lens.astype(np.float32) / 255.0


def _wig(x: np.ndarray, y: np.ndarray, box: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Wig coverage (0 or 1) and its strands' brightness (0.6..1) over the grid ``x``, ``y``: hair over
    the top of the head down to a wavy fringe above the brows, and over the sides past the ears."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    u, v = (x - (box[0] + box[2]) / 2) / bw, (y - (box[1] + box[3]) / 2) / bh
    fringe = -0.38 + 0.03 * np.cos(2 * np.pi * 6.0 * u)
    cover = ((v < fringe) | ((np.abs(u) > 0.4) & (v < 0.15))).astype(np.float32)
    period = max(2.0, 0.02 * bw)  # strands about 3 mm apart, running down from the crown
    strands = 0.8 + 0.2 * np.cos(2 * np.pi * (x + 0.3 * y) / period) * np.cos(2 * np.pi * 0.37 * x / period)
    return cover, strands.astype(np.float32)


def wear_layers(canvas: "Canvas", roi: "Roi", x: np.ndarray, y: np.ndarray, material: "MaskMaterial",
                glasses: np.ndarray) -> List[Any]:
    """Frame, lens, wig coverage and strand planes over ``roi`` (0.0 for what ``material`` does not wear);
    ``glasses``: where the rims centre (2×2 image pixels, ``render.glasses_centres``)."""
    frame: Any = 0.0
    lens: Any = 0.0
    wig: Any = 0.0
    strands: Any = 0.0
    if material.glasses:
        frame, lens = glasses_planes(roi, canvas.box, glasses)
    if material.wig:
        wig, strands = _wig(x, y, canvas.box)
    return [frame, lens, wig, strands]


def covering(worn: Sequence[Any]) -> Any:
    """Where the frames or the hair of ``wear_layers``' planes cover the head (bool; False: nothing worn)."""
    frame, _, wig, _ = (np.asarray(layer) for layer in worn)
    return (frame > 0.5) | (wig > 0.5)


def dress(canvas: "Canvas", rgb: List[Any], depth_m: Any, ir: Any, layers: Sequence[Any],
          material: "MaskMaterial") -> Tuple[List[Any], Any, Any]:
    """A mask surface's RGB, depth and IR with the glasses and wig of ``layers`` put on (where the
    frames or the hair cover it, the caller gives hard or fibre scatter)."""
    if not (material.glasses or material.wig):
        return rgb, depth_m, ir
    frame, lens, wig, strands = (np.asarray(layer, np.float32) for layer in layers)
    ir = np.asarray(ir, np.float32) * (1.0 - _LENS_DIM * lens)
    rgb = [np.asarray(plane, np.float32) * (1.0 - _LENS_DIM * lens) for plane in rgb]
    hair = [np.float32(c * g) * strands for c, g in zip(material.wig_colour, canvas.light)]
    rgb = [plane + wig * (h - plane) for plane, h in zip(rgb, hair)]
    ir = ir + wig * (np.float32(_HAIR_IR * canvas.ir_gain) * strands - ir)
    rims = [np.float32(c * g) for c, g in zip(_FRAME_RGB, canvas.light)]
    rgb = [plane + frame * (r - plane) for plane, r in zip(rgb, rims)]
    ir = ir + frame * (np.float32(_FRAME_IR * canvas.ir_gain) - ir)
    depth_m = depth_m - WIG_STANDOFF_M * (wig > 0.5) - GLASSES_STANDOFF_M * (frame > 0.5)
    return rgb, depth_m, ir
