"""Face detector backends behind one small interface: ``detector(image) -> list[Detection]``.

``image`` is a grey H×W uint8 array, or H×W×3 RGB when the detector sets ``wants_color = True``
and colour is what the aligner detects on. A detector that sets ``takes_size_range = True`` also
takes ``size_range=(min_px, max_px)``, which the aligner passes while tracking a face of known size. Boxes are in the pixels of the image passed in. Any
callable returning Detections, (x0, y0, x1, y1) boxes or an N×4 array works; ``to_detections``
turns its answer into Detections and refuses malformed ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

import cv2
import numpy as np

from .geometry import Box


@dataclass(frozen=True)
class Detection:
    """One face: box (x0, y0, x1, y1), detector score, optional 5×2 landmarks.

    Landmarks follow YuNet's order: right eye, left eye (the subject's, so the right eye is on the
    image's left), nose tip, right and left mouth corners.
    """

    box: Box
    score: float = 1.0
    landmarks: Optional[np.ndarray] = None

    def scaled(self, factor: float, offset: Tuple[float, float] = (0.0, 0.0)) -> "Detection":
        """The same face in another image: coordinates × factor + offset."""
        ox, oy = offset
        box = (self.box[0] * factor + ox, self.box[1] * factor + oy, self.box[2] * factor + ox,
               self.box[3] * factor + oy)
        marks = None if self.landmarks is None else self.landmarks * factor + np.array([ox, oy])
        return Detection(box, self.score, marks)


def _as_detection(item: Any) -> Detection:
    if isinstance(item, Detection):
        det = item
    else:
        values = np.asarray(item, np.float64).ravel()
        if values.size != 4:
            raise ValueError(f"face detector: expected a Detection or an (x0, y0, x1, y1) box, got {item!r}")
        det = Detection(tuple(float(v) for v in values))
    x0, y0, x1, y1 = det.box
    if not all(math.isfinite(v) for v in det.box) or x1 <= x0 or y1 <= y0:
        raise ValueError(f"face detector: expected a finite box with x1 > x0 and y1 > y0, got {det.box}")
    if det.landmarks is not None and np.shape(det.landmarks) != (5, 2):
        raise ValueError(f"face detector: expected 5×2 landmarks, got shape {np.shape(det.landmarks)}")
    return det


def to_detections(found: Union[np.ndarray, List[Any], Tuple[Any, ...], None]) -> List[Detection]:
    """Normalise a detector's answer (Detections, boxes or an N×4 array) to a list of Detections."""
    if found is None:
        return []
    if isinstance(found, np.ndarray):
        if found.size == 0:
            return []
        if found.ndim != 2 or found.shape[1] != 4:
            raise ValueError(f"face detector: expected an N×4 box array, got shape {found.shape}")
    return [_as_detection(item) for item in found]


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (ships inside opencv-python 4.x: nothing is downloaded).

    Not thread-safe (OpenCV's CascadeClassifier keeps per-call state): give each thread's aligner
    its own, as ``FaceAligner()`` does by default.

    Args:
        min_neighbors: overlapping hits needed to accept a face; 7 (OpenCV's default is 3) gives
            fewer false faces on clothing and backgrounds at no cost on real faces.
        scale_factor: pyramid step; 1.1 finds faces the aligner's 320 px copy shows at 24-40 px.
        min_size: smallest face in pixels of the image passed in (24 = the cascade's window).
        cascade: a file name inside ``cv2.data.haarcascades``.
    """

    wants_color = False
    takes_size_range = True

    def __init__(self, min_neighbors: int = 7, scale_factor: float = 1.1, min_size: int = 24,
                 cascade: str = "haarcascade_frontalface_default.xml") -> None:
        if scale_factor <= 1.0:
            raise ValueError(f"HaarFaceDetector.scale_factor: expected > 1, got {scale_factor}")
        path = cv2.data.haarcascades + cascade
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise FileNotFoundError(f"Haar cascade not found at {path}; install opencv-python<5")
        self.min_neighbors, self.scale_factor, self.min_size = min_neighbors, scale_factor, min_size

    def __call__(self, image: np.ndarray, size_range: Optional[Tuple[int, int]] = None) -> List[Detection]:
        """Faces in ``image``; ``size_range`` (min, max) px limits the pyramid to those face sizes.

        Each pyramid level costs a fixed overhead on top of its pixels, so a tracker that knows the
        face size saves most of the time by searching a few levels only.
        """
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        low, high = size_range if size_range is not None else (self.min_size, 0)
        low = max(low, self.min_size)
        if min(grey.shape) < low:
            return []
        boxes, neighbours = self._cascade.detectMultiScale2(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(low, low),
            maxSize=(high, high))
        return [Detection((float(x), float(y), float(x + w), float(y + h)), float(n))
                for (x, y, w, h), n in zip(np.reshape(boxes, (-1, 4)), np.ravel(neighbours))]


class YuNetFaceDetector:
    """OpenCV's ``FaceDetectorYN`` (YuNet, an ONNX model file you supply): boxes plus five landmarks.

    Args:
        model_path: the YuNet ``.onnx`` file (e.g. face_detection_yunet_2023mar.onnx from the
            OpenCV model zoo); nothing is downloaded.
        score_threshold: minimum face confidence.
        nms_threshold: overlap above which weaker boxes are suppressed.

    Raises:
        FileNotFoundError: ``model_path`` does not exist.
        ValueError: OpenCV cannot load it as a YuNet model.
    """

    wants_color = True

    def __init__(self, model_path: Union[str, Path], score_threshold: float = 0.6,
                 nms_threshold: float = 0.3) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"YuNetFaceDetector.model_path: no file at {path}")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise ValueError(f"YuNetFaceDetector: OpenCV {cv2.__version__} has no FaceDetectorYN (needs 4.5.4+)")
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold)
        except cv2.error as exc:
            raise ValueError(f"YuNetFaceDetector.model_path: OpenCV cannot load {path} as a YuNet model") from exc
        self._size: Tuple[int, int] = (320, 320)

    def __call__(self, image: np.ndarray) -> List[Detection]:
        bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)
        size = (bgr.shape[1], bgr.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, faces = self._net.detect(bgr)
        if faces is None:
            return []
        # Each row: x, y, w, h, five (x, y) landmarks, score (OpenCV FaceDetectorYN documentation).
        return [Detection((float(f[0]), float(f[1]), float(f[0] + f[2]), float(f[1] + f[3])), float(f[14]),
                          np.asarray(f[4:14], np.float64).reshape(5, 2)) for f in faces]
