"""MediaPipe's Face Mesh on onnxruntime: 468 3-D landmarks of one face, in image pixels.

The mesh runs on a square region of the image, rotated so the eye line is level: the first time
from a detection (``roi_from_detection``), then, while the face is tracked, from the previous
frame's landmarks (``roi_from_landmarks``), so no full-frame search is needed every frame.

Coordinates: x to the image's right, y down, in pixels of the image passed in; z in the same pixel
scale, relative to the face's centre, smaller z nearer the camera (MediaPipe's convention). "Right"
and "left" are the subject's: in a camera image that is not mirrored the right eye is on the
image's left. The index constants name points of MediaPipe's Face Mesh topology.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple, Union

import cv2
import numpy as np

from .assets import FACE_MESH_MODEL, MAKE_FACE_MODELS, bundled
from .face_detectors import Detection, _check_image, _open_face_model

__all__ = [
    "CHIN", "EYE_CHEEK_POINTS", "FACE_LEFT_SIDE", "FACE_OVAL", "FACE_RIGHT_SIDE", "FOREHEAD", "FaceLandmarks", "FaceMesh",
    "LEFT_BROW", "LEFT_CHEEK", "MIDLINE_POINTS", "LEFT_EYE_INNER", "LEFT_EYE_OUTER", "MOUTH_LEFT", "MOUTH_RIGHT", "MeshRoi",
    "MATERIAL_POINTS", "NOSE_POINTS", "NOSE_TIP", "NUM_LANDMARKS", "RIGHT_BROW", "RIGHT_CHEEK", "RIGHT_EYE_INNER", "RIGHT_EYE_OUTER",
    "ROI_SCALE", "SHAPE_POINTS", "head_pose", "roi_from_detection", "roi_from_landmarks",
]

NUM_LANDMARKS = 468
NOSE_TIP = 1
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133
LEFT_EYE_INNER, LEFT_EYE_OUTER = 362, 263
MOUTH_RIGHT, MOUTH_LEFT = 61, 291
CHIN = 152
FOREHEAD = 10
"""Top of the forehead on the face's midline (the face oval's first point)."""
FACE_RIGHT_SIDE, FACE_LEFT_SIDE = 234, 454
"""The silhouette at eye height, beside each ear."""
RIGHT_CHEEK, LEFT_CHEEK = 50, 280
"""On each cheekbone, below the eye."""
RIGHT_BROW = (70, 63, 105, 66, 107)
LEFT_BROW = (300, 293, 334, 296, 336)
"""Upper edge of each eyebrow, from its outer end to its inner end."""
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
"""The face's silhouette, 36 points in order (forehead → the subject's left → chin → right): a
polygon that holds the face and nothing beside it."""

SHAPE_POINTS = (
    1, 4, 5, 195, 197, 6, 168,  # nose tip up the bridge to between the eyes
    33, 133, 362, 263,  # eye corners
    50, 280, 101, 330, 205, 425, 187, 411, 123, 352, 116, 345,  # cheeks
    9, 151, 108, 337, 69, 299,  # forehead below the hairline
    0, 17, 61, 291,  # lips and mouth corners
    199, 175, 152, 208, 428,  # chin
)
"""Where depth is sampled for the face-shape check (``mmdg_edge.physics``): the whole face inside
its silhouette (silhouette points would sample the wall behind a turned head)."""
NOSE_POINTS = (1, 4, 5, 195, 197)
"""The nose tip and the ridge above it: no model of the face's depth may leave them out."""
MIDLINE_POINTS = (9, 151, 199, 175, 152)
"""The forehead (first two) and the chin on the face's midline: the line the nose tip stands out of."""
EYE_CHEEK_POINTS = (RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER, RIGHT_CHEEK, LEFT_CHEEK,
                    205, 425)
"""The eye corners and the cheeks: the plane the nose tip stands out of."""

MATERIAL_POINTS = (151, 6, 205, 425, 199)
"""Where the IR material check looks at the projector's dots: forehead, nose bridge, both cheeks, chin."""

ROI_SCALE = 1.5
"""The mesh's region is 1.5× the face's size (MediaPipe's RectTransformation for the face mesh)."""
_INPUT = 192


@dataclass(frozen=True)
class MeshRoi:
    """A square region of side ``size`` pixels centred on (cx, cy), rotated by ``angle_rad``.

    ``angle_rad`` is the direction of the region's x axis in the image (y down), so a positive angle
    turns it clockwise as seen: the angle of the face's eye line, right eye → left eye.
    """

    cx: float
    cy: float
    size: float
    angle_rad: float

    def __post_init__(self) -> None:
        values = (self.cx, self.cy, self.size, self.angle_rad)
        if not all(math.isfinite(v) for v in values) or self.size <= 0:
            raise ValueError(f"MeshRoi: expected finite cx, cy, angle_rad and size > 0, got {values}")

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Points (N, 2+) in the region's unit square (0..1, x along the eye line) → image pixels."""
        cos, sin = math.cos(self.angle_rad), math.sin(self.angle_rad)
        u, v = (points[:, 0] - 0.5) * self.size, (points[:, 1] - 0.5) * self.size
        return np.stack([self.cx + cos * u - sin * v, self.cy + sin * u + cos * v], axis=1)


@dataclass(frozen=True)
class FaceLandmarks:
    """The mesh's answer: ``points`` (468, 3) float64 image pixels (see the module docstring),
    ``score`` the face-presence probability, ``roi`` the region they were computed in."""

    points: np.ndarray
    score: float
    roi: MeshRoi


def _square_roi(points: np.ndarray, angle_rad: float, scale: float) -> MeshRoi:
    """A square ``scale``× the bounding box of ``points`` measured along the rotated axes."""
    cos, sin = math.cos(angle_rad), math.sin(angle_rad)
    along = points[:, 0] * cos + points[:, 1] * sin
    across = -points[:, 0] * sin + points[:, 1] * cos
    mid_along, mid_across = (along.min() + along.max()) / 2, (across.min() + across.max()) / 2
    size = scale * max(along.max() - along.min(), across.max() - across.min())
    return MeshRoi(float(mid_along * cos - mid_across * sin), float(mid_along * sin + mid_across * cos),
                   float(size), float(angle_rad))


def roi_from_detection(det: Detection, scale: float = ROI_SCALE) -> MeshRoi:
    """The mesh's region for a detected face (MediaPipe's rule for the face mesh).

    Centred on the detector's box, rotated by the eye line (landmarks 0 → 1: right eye → left eye),
    a square ``scale``× the box's longer side.

    Raises:
        ValueError: the detection has no landmarks (Haar boxes carry none; the eye line is needed).
    """
    if det.landmarks is None:
        raise ValueError("roi_from_detection: expected a Detection with eye landmarks (BlazeFace or YuNet), "
                         "got one without landmarks")
    (rx, ry), (lx, ly) = np.asarray(det.landmarks, np.float64)[:2]
    x0, y0, x1, y1 = det.box
    return MeshRoi((x0 + x1) / 2, (y0 + y1) / 2, scale * max(x1 - x0, y1 - y0), math.atan2(ly - ry, lx - rx))


def roi_from_landmarks(points: np.ndarray, scale: float = ROI_SCALE) -> MeshRoi:
    """The next frame's region from this frame's landmarks, for tracking.

    Rotated by the line between the outer eye corners (33 → 263), a square ``scale``× the
    landmarks' bounding box measured along that rotation, so a tilted head gets the same size
    of region as an upright one.

    Raises:
        ValueError: ``points`` is not (468, 2+) finite.
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[0] != NUM_LANDMARKS or points.shape[1] < 2 \
            or not np.isfinite(points[:, :2]).all():
        raise ValueError(f"roi_from_landmarks: expected ({NUM_LANDMARKS}, 2 or 3) finite points, got shape "
                         f"{points.shape}")
    dx, dy = points[LEFT_EYE_OUTER, :2] - points[RIGHT_EYE_OUTER, :2]
    return _square_roi(points[:, :2], math.atan2(dy, dx), scale)


class FaceMesh:
    """MediaPipe's Face Mesh (192×192 input) on onnxruntime: 468 3-D landmarks and face presence.

    One session serves every call and holds no per-call state: one mesh may be shared by threads.

    Args:
        model_path: the converted ONNX model; None = the bundled ``face_mesh.onnx``.
        threads: onnxruntime intra-op threads.

    Raises:
        FileNotFoundError: the model file does not exist.
        ValueError: onnxruntime cannot load it, or its tensors are not the Face Mesh's.

    Example:
        >>> face = BlazeFaceDetector()(rgb)[0]  # doctest: +SKIP
        >>> marks = FaceMesh()(rgb, roi_from_detection(face))  # doctest: +SKIP
        >>> nose = marks.points[NOSE_TIP]  # doctest: +SKIP
    """

    def __init__(self, model_path: Optional[Union[str, Path]] = None, threads: int = 1) -> None:
        path = bundled(FACE_MESH_MODEL, MAKE_FACE_MODELS) if model_path is None else model_path
        self._session = _open_face_model(path, "FaceMesh", (1, 3, _INPUT, _INPUT),
                                         ((1, NUM_LANDMARKS * 3, 1, 1), (1, 1, 1, 1)), threads)
        self._input = self._session.get_inputs()[0].name

    def __call__(self, image: np.ndarray, roi: MeshRoi) -> FaceLandmarks:
        """Landmarks of the face in ``roi`` of ``image`` (H×W grey or H×W×3 RGB uint8).

        The score says whether a face is there at all: below ~0.5 the points are meaningless
        (the region lost the face, or never held one).

        Raises:
            ValueError: not such an image, or the model answered non-finite values.
            TypeError: ``roi`` is not a MeshRoi.
        """
        _check_image(image, "FaceMesh")
        if not isinstance(roi, MeshRoi):
            raise TypeError(f"FaceMesh: expected a MeshRoi, got {type(roi).__name__}")
        crop = cv2.warpAffine(image, self._crop_matrix(roi), (_INPUT, _INPUT),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
        if crop.ndim == 2:
            crop = np.repeat(crop[..., None], 3, axis=2)
        tensor = np.divide(crop.transpose(2, 0, 1)[None], 255.0, dtype=np.float32, order="C")  # one pass
        raw, flag = self._session.run(None, {self._input: tensor})
        if not (np.isfinite(raw).all() and np.isfinite(flag).all()):
            raise ValueError("FaceMesh: the model answered non-finite landmarks or presence; no landmarks")
        local = raw.reshape(NUM_LANDMARKS, 3).astype(np.float64) / _INPUT
        points = np.empty((NUM_LANDMARKS, 3))
        points[:, :2] = roi.to_image(local)
        points[:, 2] = local[:, 2] * roi.size
        score = 1.0 / (1.0 + math.exp(-float(np.clip(flag.ravel()[0], -100.0, 100.0))))
        return FaceLandmarks(points, score, roi)

    @staticmethod
    def _crop_matrix(roi: MeshRoi) -> np.ndarray:
        """2×3 affine: crop pixel index → image pixel index (pixel i covers [i, i + 1))."""
        cos, sin = math.cos(roi.angle_rad), math.sin(roi.angle_rad)
        step = roi.size / _INPUT
        linear = np.array([[cos, -sin], [sin, cos]]) * step
        # Crop pixel centre u + 0.5 sits at (u + 0.5)·step − size/2 from the region's centre.
        offset = np.array([roi.cx, roi.cy]) + linear @ np.array([0.5, 0.5]) - roi.size / 2 * np.array(
            [cos - sin, sin + cos]) - 0.5
        return np.hstack([linear, offset[:, None]])


def _dot(a, b) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def head_pose(points: np.ndarray) -> Tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from the 3-D landmarks; all 0 for a face looking into the camera.

    The face's frame: x along the eye line (right eye corners → left eye corners), y from the eyes
    down to the mouth corners made perpendicular to x, z = x × y (into the face, away from the
    camera for a frontal face). Eye and mouth corners lie close to one plane on a real face, which
    is why they, and not the nose or chin, define it. With the face's orientation R = [x y z]
    written as R = Ry(−yaw)·Rx(−pitch)·Rz(roll) in the camera's axes (x right, y down, z away):

    - yaw > 0: the nose points toward the image's right (the subject turns to their own left in a
      camera image that is not mirrored);
    - pitch > 0: the nose points up (chin up);
    - roll > 0: the eye line tilts clockwise in the image (as ``align.py`` measures roll).

    Raises:
        ValueError: ``points`` is not (468, 3) finite, or the eye and mouth points coincide.
    """
    points = np.asarray(points, np.float64)
    if points.shape != (NUM_LANDMARKS, 3) or not np.isfinite(points).all():
        raise ValueError(f"head_pose: expected ({NUM_LANDMARKS}, 3) finite points, got shape {points.shape}")
    # Six points, so plain floats: a few dozen numpy calls on 3-vectors cost more than the arithmetic.
    r_out, r_in, l_in, l_out, m_r, m_l = points[[RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER,
                                                 MOUTH_RIGHT, MOUTH_LEFT]].tolist()
    right_eye = [(a + b) / 2 for a, b in zip(r_out, r_in)]
    left_eye = [(a + b) / 2 for a, b in zip(l_in, l_out)]
    x_axis = [b - a for a, b in zip(right_eye, left_eye)]
    down = [(a + b) / 2 - (c + d) / 2 for a, b, c, d in zip(m_r, m_l, left_eye, right_eye)]
    along = _dot(down, x_axis) / max(_dot(x_axis, x_axis), 1e-12)
    y_axis = [d - along * x for d, x in zip(down, x_axis)]
    x_norm, y_norm = math.sqrt(_dot(x_axis, x_axis)), math.sqrt(_dot(y_axis, y_axis))
    if x_norm < 1e-9 or y_norm < 1e-9:
        raise ValueError("head_pose: the eye corners or the mouth corners coincide; no orientation to measure")
    (x0, x1, x2), (y0, y1, y2) = (v / x_norm for v in x_axis), (v / y_norm for v in y_axis)
    forward = (-(x1 * y2 - x2 * y1), -(x2 * y0 - x0 * y2), -(x0 * y1 - x1 * y0))  # −(x × y)
    yaw = math.atan2(forward[0], -forward[2])
    pitch = math.atan2(-forward[1], math.hypot(forward[0], forward[2]))
    # Undo yaw and pitch; what is left is a rotation about the camera's z axis: the roll. The x axis
    # taken back through Ry(−yaw)·Rx(−pitch): its first two components.
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    roll = math.atan2(sy * sp * x0 + cp * x1 - cy * sp * x2, cy * x0 + sy * x2)
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)
