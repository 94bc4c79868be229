"""Colour to depth viewpoint, in numpy: deproject depth pixels, move them, project into colour.

What `rs.align(rs.stream.depth)` does, on our own frames (so recordings read stream by stream can
still be aligned). Lens distortion is ignored: D4xx colour streams report near-zero coefficients.
"""
from __future__ import annotations

import numpy as np

from ..frames import Extrinsics, Intrinsics


def align_color_to_depth(
    color: np.ndarray, depth: np.ndarray, depth_scale_m: float, depth_intrinsics: Intrinsics,
    color_intrinsics: Intrinsics, depth_to_color: Extrinsics,
) -> np.ndarray:
    """Resample ``color`` onto the depth pixel grid; pixels without depth or outside colour are 0.

    Args:
        color: Hc×Wc×3 colour image.
        depth: Hd×Wd z16 depth (0 = no data).
        depth_scale_m: metres per depth unit.
        depth_intrinsics, color_intrinsics: pinhole intrinsics of each stream.
        depth_to_color: p_color = R·p_depth + t.

    Returns:
        Hd×Wd×3 colour as seen from the depth camera.
    """
    rows, cols = np.nonzero(depth)
    z = depth[rows, cols].astype(np.float64) * depth_scale_m
    points = np.stack([(cols - depth_intrinsics.ppx) / depth_intrinsics.fx * z,
                       (rows - depth_intrinsics.ppy) / depth_intrinsics.fy * z, z])
    rotation, translation = depth_to_color.matrix()
    moved = rotation @ points + translation[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.rint(moved[0] / moved[2] * color_intrinsics.fx + color_intrinsics.ppx)
        v = np.rint(moved[1] / moved[2] * color_intrinsics.fy + color_intrinsics.ppy)
    inside = (moved[2] > 0) & (u >= 0) & (u < color.shape[1]) & (v >= 0) & (v < color.shape[0])
    out = np.zeros(depth.shape + (3,), color.dtype)
    out[rows[inside], cols[inside]] = color[v[inside].astype(np.intp), u[inside].astype(np.intp)]
    return out


def is_registered(depth_intrinsics: Intrinsics, color_intrinsics: Intrinsics, depth_to_color: Extrinsics) -> bool:
    """True when colour already sits on the depth grid (same intrinsics, identity extrinsics)."""
    same = all(
        np.isclose(getattr(depth_intrinsics, k), getattr(color_intrinsics, k))
        for k in ("width", "height", "fx", "fy", "ppx", "ppy")
    )
    rotation, translation = depth_to_color.matrix()
    return bool(same and np.allclose(rotation, np.eye(3)) and np.allclose(translation, 0.0))
