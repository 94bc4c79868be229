"""Box geometry every stage shares: overlap, and the move of a box between the colour and the
depth/IR pixel grids.

Registration treats the face as a plane at its median depth (a face is ~10 cm deep at 0.4-1 m, so
the parallax error inside it stays under a pixel or two for a D4xx baseline). Lens distortion is
ignored: D4xx depth/IR streams are rectified and the colour distortion is < 1 px at the centre.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .frames import FrameSet, Intrinsics

Box = Tuple[float, float, float, float]
"""(x0, y0, x1, y1) in pixels."""


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _move_box(box: Box, distance_m: float, source: Intrinsics, target: Intrinsics, rotation: np.ndarray,
              translation: np.ndarray) -> Box:
    # The box centre goes through 3-D (deproject at the face distance, rigid transform, project); the
    # size scales with focal length and depth so a square stays a square.
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    point = np.array([(cx - source.ppx) / source.fx * distance_m, (cy - source.ppy) / source.fy * distance_m,
                      distance_m])
    moved = rotation @ point + translation
    if moved[2] <= 0:
        raise ValueError(f"registration: the face maps behind the target camera (z = {moved[2]:.3f} m)")
    u, v = moved[0] / moved[2] * target.fx + target.ppx, moved[1] / moved[2] * target.fy + target.ppy
    half_w = (box[2] - box[0]) / 2 * target.fx / source.fx * distance_m / moved[2]
    half_h = (box[3] - box[1]) / 2 * target.fy / source.fy * distance_m / moved[2]
    return (float(u - half_w), float(v - half_h), float(u + half_w), float(v + half_h))


def _calibration(frameset: FrameSet) -> Tuple[Intrinsics, Intrinsics, np.ndarray, np.ndarray]:
    color = frameset.intrinsics.get("rgb")
    depth = frameset.intrinsics.get("depth", frameset.intrinsics.get("ir"))  # one sensor, one pixel grid
    if color is None or depth is None or frameset.depth_to_color is None:
        raise ValueError("colour is not aligned to depth and the frameset has no intrinsics (rgb, depth or ir) "
                         "and depth_to_color extrinsics to map the face box")
    rotation, translation = frameset.depth_to_color.matrix()
    return color, depth, rotation, translation


def map_box_to_depth(box: Box, distance_m: float, frameset: FrameSet) -> Box:
    """Move a colour-pixel box into depth/IR pixels: deproject at ``distance_m`` with the colour
    intrinsics, apply the inverse depth→colour extrinsic, project with the depth intrinsics."""
    color, depth, rotation, translation = _calibration(frameset)
    return _move_box(box, distance_m, color, depth, rotation.T, -rotation.T @ translation)


def map_box_to_color(box: Box, distance_m: float, frameset: FrameSet) -> Box:
    """Move a depth/IR-pixel box into colour pixels (the inverse of ``map_box_to_depth``)."""
    color, depth, rotation, translation = _calibration(frameset)
    return _move_box(box, distance_m, depth, color, rotation, translation)
