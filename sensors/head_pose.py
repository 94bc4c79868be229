"""Turning a rendered head: a height field rotated in 3-D and seen again from the front.

The synthetic camera paints a head as a height field (depth behind the face plane per pixel) with
its photo on it. A yaw or pitch rotates that surface about the head's centre; seen along the
camera axis (the head is small against its distance, so orthographically) each image row (yaw)
or column (pitch) shows, at every pixel, the nearest part of the rotated surface. ``turn_height_field``
returns where each output pixel's surface point was before the turn, so texture, IR and glints
follow the surface by one remap, and the turned depth.
"""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

__all__ = ["turn_height_field", "turn_points"]


def _turn_rows(depth: np.ndarray, inside: np.ndarray, axis_x: float, axis_z: float,
               angle: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate each row's profile about the vertical axis at (``axis_x``, ``axis_z``) by ``angle`` radians.

    A positive angle moves the near surface (a nose) towards +x and the +x side away. Returns, per
    output pixel, the source column, the rotated depth and whether the surface covers it there.

    Seen along the camera axis, a source point is hidden exactly when a point before it (in the
    direction the surface turns from) rotates to the same or a larger x: the view ray in the
    source frame runs back across those points. So the visible points are the records of the
    running maximum of the rotated x along each row, strictly increasing, and every output column
    between a row's first and last record is interpolated between them.
    """
    h, w = depth.shape
    flip = angle < 0
    if flip:  # mirror the row so the turn is positive, then mirror the answer back
        depth, inside, axis_x = depth[:, ::-1], inside[:, ::-1], w - 1 - axis_x
    cos, sin = float(np.cos(abs(angle))), float(np.sin(abs(angle)))
    across = np.arange(w, dtype=np.float64)[None, :] - axis_x
    behind = depth.astype(np.float64) - axis_z
    turned_x = np.where(inside, across * cos - behind * sin, -np.inf)
    turned_z = axis_z + across * sin + behind * cos
    before = np.concatenate([np.full((h, 1), -np.inf), np.maximum.accumulate(turned_x, axis=1)[:, :-1]], axis=1)
    seen = inside & (turned_x > before)
    if not seen.any():
        return np.zeros((h, w), np.float32), np.zeros((h, w), np.float32), np.zeros((h, w), bool)
    rows = np.nonzero(seen)[0]
    # One np.interp for all rows: row r's keys are shifted by r·span, beyond any other row's.
    span = 4.0 * (w + float(np.abs(behind[inside]).max(initial=0.0))) + 4.0
    keys = turned_x[seen] + rows * span
    output = np.broadcast_to(across, (h, w)) + np.arange(h)[:, None] * span
    source_x = np.interp(output, keys, np.broadcast_to(np.arange(w, dtype=np.float64), (h, w))[seen])
    new_z = np.interp(output, keys, turned_z[seen])
    first = np.where(seen, turned_x, np.inf).min(axis=1, initial=np.inf)[:, None]
    last = np.where(seen, turned_x, -np.inf).max(axis=1, initial=-np.inf)[:, None]
    covered = (across >= first) & (across <= last)
    if flip:
        source_x, new_z, covered = w - 1 - source_x[:, ::-1], new_z[:, ::-1], covered[:, ::-1]
    return source_x.astype(np.float32), new_z.astype(np.float32), covered


def turn_height_field(depth: np.ndarray, inside: np.ndarray, axis: Tuple[float, float, float], yaw_deg: float,
                      pitch_deg: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The height field ``depth`` (pixels behind the face plane, where ``inside``) turned by yaw, then pitch.

    Args:
        depth: H×W depth of the surface, in pixels (metres × pixels per metre at the head's distance).
        inside: H×W bool, where the surface is.
        axis: (x, y, z) of the head's centre, pixels: the turn's pivot.
        yaw_deg: positive turns the face towards +x (the nose moves right in the image).
        pitch_deg: positive lifts the face (the nose moves up, towards -y).

    Returns:
        (map_x, map_y, turned, covered): for each output pixel the source pixel (float32, for
        cv2.remap), the turned depth (float32 pixels) and whether the turned surface covers it.
    """
    h, w = depth.shape
    rows = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w))
    map_y, pitched, covered = rows, depth.astype(np.float32), inside
    if pitch_deg:
        map_y, pitched, covered = (a.T for a in _turn_rows(depth.T, inside.T, axis[1], axis[2],
                                                           -np.radians(pitch_deg)))
        map_y = np.ascontiguousarray(map_y)
    map_x = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], (h, w))
    turned = pitched
    if yaw_deg:
        map_x, turned, covered = _turn_rows(pitched, covered, axis[0], axis[2], np.radians(yaw_deg))
        if pitch_deg:  # the pitched surface's own source rows, looked up where the yaw took each pixel from
            map_y = cv2.remap(map_y, map_x, np.ascontiguousarray(rows), cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    return (np.ascontiguousarray(map_x, dtype=np.float32), np.ascontiguousarray(map_y, dtype=np.float32),
            np.ascontiguousarray(turned, dtype=np.float32), covered)


def turn_points(points: np.ndarray, axis: Tuple[float, float, float], yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Where ``turn_height_field`` takes points of the surface (N×3: x, y, depth, pixels): the same turn, forwards.

    Example:
        >>> turn_points(np.float64([[10.0, 0.0, 0.0]]), (0.0, 0.0, 10.0), 90.0, 0.0).round(6).tolist()
        [[10.0, 0.0, 20.0]]
    """
    x, y, z = (points[:, i] - axis[i] for i in range(3))
    pitch, yaw = np.radians(pitch_deg), np.radians(yaw_deg)
    y, z = y * np.cos(pitch) + z * np.sin(pitch), z * np.cos(pitch) - y * np.sin(pitch)
    x, z = x * np.cos(yaw) - z * np.sin(yaw), x * np.sin(yaw) + z * np.cos(yaw)
    return np.column_stack([x + axis[0], y + axis[1], z + axis[2]])
