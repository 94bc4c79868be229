"""Face detector backends behind one small interface: ``detector(image) -> list[Detection]``.

``image`` is a grey H×W uint8 array, or H×W×3 RGB when the detector sets ``wants_color = True``
and colour is what the aligner detects on. A detector that sets ``takes_size_range = True`` also
takes ``size_range=(min_px, max_px)``, which the aligner passes while tracking a face of known size. Boxes are in the pixels of the image passed in. Any
callable returning Detections, (x0, y0, x1, y1) boxes or an N×4 array works; ``to_detections``
turns its answer into Detections and refuses malformed ones.

Backends: ``BlazeFaceDetector`` (MediaPipe's learned short- or full-range detector, bundled,
onnxruntime: box, six keypoints, score), ``HaarFaceDetector`` (OpenCV's cascade: box only) and
``YuNetFaceDetector`` (OpenCV's YuNet, a model file you supply: box, five keypoints, score).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

import cv2
import numpy as np

from .assets import BLAZEFACE_FULL_MODEL, BLAZEFACE_MODEL, MAKE_FACE_MODELS, bundled
from .geometry import Box

__all__ = [
    "BLAZEFACE_KEYPOINTS", "BlazeFaceDetector", "Detection", "HaarFaceDetector", "YuNetFaceDetector",
    "blazeface_anchors", "to_detections",
]

BLAZEFACE_KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear_tragion",
                       "left_ear_tragion")
"""The rows of a BlazeFace Detection's landmarks (the subject's right and left)."""


@dataclass(frozen=True)
class Detection:
    """One face: box (x0, y0, x1, y1), detector score, optional 5×2 or 6×2 landmarks (x, y pixels).

    The first two rows are always the right eye and the left eye (the subject's, so in a camera
    image that is not mirrored the right eye is on the image's left); the aligner levels the eye
    line with them. The rest depends on the detector:
    - 5×2 (YuNet): right eye, left eye, nose tip, right and left mouth corners;
    - 6×2 (BlazeFace, ``BLAZEFACE_KEYPOINTS``): right eye, left eye, nose tip, mouth centre, right
      and left ear tragion.
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
    if det.landmarks is not None and np.shape(det.landmarks) not in ((5, 2), (6, 2)):
        raise ValueError(f"face detector: expected 5×2 (YuNet) or 6×2 (BlazeFace) landmarks, "
                         f"got shape {np.shape(det.landmarks)}")
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


def _open_face_model(model_path: Union[str, Path], owner: str, inputs: Tuple[int, ...],
                     outputs: Tuple[Tuple[int, ...], ...], threads: int):
    """An onnxruntime CPU session of a bundled face model, refused unless its tensors are as expected.

    A file of the wrong model (the mesh given as the detector) would run and answer nonsense, so
    the input shape and every output shape are compared before the session is used.
    """
    # Imported here: the aligner imports this module, and a Haar-only aligner needs no onnxruntime.
    import onnxruntime as ort

    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"{owner}.threads: expected an integer ≥ 1, got {threads!r}")
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"{owner}.model_path: no file at {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        raise ValueError(f"{owner}.model_path: onnxruntime cannot load {path} as an ONNX model ({exc})") from exc
    found_in = tuple(tuple(t.shape) for t in session.get_inputs())
    found_out = tuple(tuple(t.shape) for t in session.get_outputs())
    if found_in != (inputs,) or found_out != outputs:
        raise ValueError(f"{owner}.model_path: {path} has inputs {found_in} and outputs {found_out}; expected "
                         f"inputs {(inputs,)} and outputs {outputs} (is it another model?)")
    return session


def _check_image(image: np.ndarray, owner: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or not (
            image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)) or image.size == 0:
        raise ValueError(f"{owner}: expected an H×W (grey) or H×W×3 (RGB) uint8 image, got "
                         f"{getattr(image, 'dtype', type(image).__name__)} of shape {np.shape(image)}")


def blazeface_anchors(input_size: int = 128, strides: Tuple[int, ...] = (8, 16, 16, 16),
                      per_layer: int = 2) -> np.ndarray:
    """BlazeFace's SSD anchor centres, (N, 2) x, y in 0..1, in the model's output order.

    MediaPipe's SsdAnchorsCalculator with the face detectors' options: each layer puts
    ``per_layer`` anchors on every cell of its stride's grid (short range: aspect ratio 1 and its
    interpolated scale, 2; full range: 1); layers of the same stride share a grid. Short range
    (the defaults): the 16×16 grid gets 2 anchors per cell and the 8×8 grid 6, 896 in all; full
    range (192, (4,), 1): one per cell of a 48×48 grid, 2304. With ``fixed_anchor_size`` every
    anchor's width and height are 1, so only the centres matter.
    """
    groups: List[Tuple[int, int]] = []
    for stride in strides:
        if groups and groups[-1][0] == stride:
            groups[-1] = (stride, groups[-1][1] + per_layer)
        else:
            groups.append((stride, per_layer))
    centres = []
    for stride, per_cell in groups:
        cells = math.ceil(input_size / stride)
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres)


def _weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                  iou_threshold: float) -> List[Detection]:
    """MediaPipe's weighted non-max suppression: each cluster (IoU > threshold with its best box)
    becomes one face whose box and keypoints are the score-weighted means and whose score is the best.

    Averaging the overlapping anchors' answers steadies the box and keypoints from frame to frame
    more than keeping the single best anchor would.
    """
    remaining = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    faces = []
    while remaining.size:
        top, rest = remaining[0], boxes[remaining]
        width = np.clip(np.minimum(rest[:, 2], boxes[top, 2]) - np.maximum(rest[:, 0], boxes[top, 0]), 0, None)
        height = np.clip(np.minimum(rest[:, 3], boxes[top, 3]) - np.maximum(rest[:, 1], boxes[top, 1]), 0, None)
        overlap = width * height
        in_cluster = overlap / (areas[remaining] + areas[top] - overlap) > iou_threshold
        in_cluster[0] = True
        cluster = remaining[in_cluster]
        weights = scores[cluster] / scores[cluster].sum()
        box = tuple(float(v) for v in weights @ boxes[cluster])
        marks = np.tensordot(weights, keypoints[cluster], axes=1)
        faces.append(Detection(box, float(scores[top]), marks))
        remaining = remaining[~in_cluster]
    return faces


@dataclass(frozen=True)
class _BlazeFaceVariant:
    """One BlazeFace model: its bundled file, input side and anchor layout (``blazeface_anchors``)."""

    asset: Path
    input_size: int
    strides: Tuple[int, ...]
    anchors_per_layer: int


_BLAZEFACE_VARIANTS = {
    "short": _BlazeFaceVariant(BLAZEFACE_MODEL, 128, (8, 16, 16, 16), 2),
    "full": _BlazeFaceVariant(BLAZEFACE_FULL_MODEL, 192, (4,), 1),
}


class BlazeFaceDetector:
    """MediaPipe's BlazeFace face detector on onnxruntime: box, six keypoints, score.

    The image is letterboxed to the model's square input (aspect kept, black bars). On the
    astronaut photo pasted into a 640×480 frame:
    - ``"short"`` range (128×128, the default, the faster): 0.87 at 88 px face width, 0.6 at
      73 px, lost below about 65 px (1/10 of the longer side; a 15 cm face at about 1.4 m for a
      D435's colour lens);
    - ``"full"`` range (192×192): 0.9 at 88 px, 0.72 at 44 px, 0.59 at 37 px, lost below about
      35 px (about 2.6 m); its model takes 2.4× the short one's time (5.2 vs 2.2 ms, one thread;
      ``benchmarks/bench_face_models.py``): a search for far faces, not every frame.
    Keypoints are ``BLAZEFACE_KEYPOINTS``. One session serves every call and holds no per-call
    state: one detector may be shared by threads.

    Args:
        model_path: a converted ONNX model of ``variant``; None = the bundled one
            (``blazeface_short.onnx`` or ``blazeface_full.onnx``).
        score_threshold: minimum face probability (MediaPipe's default 0.5).
        nms_threshold: IoU above which overlapping answers merge into one face (MediaPipe: 0.3).
        threads: onnxruntime intra-op threads.
        variant: ``"short"`` or ``"full"`` range.

    Raises:
        FileNotFoundError: the model file does not exist.
        ValueError: onnxruntime cannot load it, or its tensors are not BlazeFace's.

    Example:
        >>> faces = BlazeFaceDetector()(rgb)  # doctest: +SKIP
        >>> right_eye, left_eye = faces[0].landmarks[:2]  # doctest: +SKIP
    """

    wants_color = True

    def __init__(self, model_path: Optional[Union[str, Path]] = None, score_threshold: float = 0.5,
                 nms_threshold: float = 0.3, threads: int = 1, variant: str = "short") -> None:
        if variant not in _BLAZEFACE_VARIANTS:
            raise ValueError(f"BlazeFaceDetector.variant: expected one of {sorted(_BLAZEFACE_VARIANTS)}, "
                             f"got {variant!r}")
        for field_name, value in (("score_threshold", score_threshold), ("nms_threshold", nms_threshold)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"BlazeFaceDetector.{field_name}: expected a value in (0, 1), got {value}")
        spec = _BLAZEFACE_VARIANTS[variant]
        side = spec.input_size
        self._anchors = blazeface_anchors(side, spec.strides, spec.anchors_per_layer)
        count = len(self._anchors)
        path = bundled(spec.asset, MAKE_FACE_MODELS) if model_path is None else model_path
        self._session = _open_face_model(path, "BlazeFaceDetector", (1, 3, side, side), ((1, count, 16), (1, count, 1)),
                                         threads)
        self._input = self._session.get_inputs()[0].name
        self.variant, self.input_size = variant, side
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold

    def __call__(self, image: np.ndarray) -> List[Detection]:
        """Faces in ``image`` (H×W grey or H×W×3 RGB uint8), best first, in its pixels."""
        _check_image(image, "BlazeFaceDetector")
        tensor, scale, pad = self._letterbox(image)
        regressors, logits = self._session.run(None, {self._input: tensor})
        # MediaPipe clips the logits to ±100 before the sigmoid (score_clipping_thresh).
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[0, :, 0].astype(np.float64), -100.0, 100.0)))
        keep = np.flatnonzero(scores >= self.score_threshold)
        if keep.size == 0:
            return []
        raw = regressors[0, keep].astype(np.float64) / self.input_size
        anchors = self._anchors[keep]
        centres, sizes = raw[:, 0:2] + anchors, raw[:, 2:4]
        # Normalised letterbox coordinates → pixels of the image passed in.
        to_image = self.input_size / scale
        offset = pad / scale
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1) * np.tile(to_image, 2) \
            - np.tile(offset, 2)
        keypoints = (raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]) * to_image - offset
        sane = (np.isfinite(boxes).all(axis=1) & np.isfinite(keypoints).all(axis=(1, 2))
                & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
        return _weighted_nms(boxes[sane], keypoints[sane], scores[keep][sane], self.nms_threshold)

    def _letterbox(self, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(1, 3, S, S) float32 in [-1, 1] (S = input_size), the x/y scale image → input, the x/y padding."""
        height, width = image.shape[:2]
        side = self.input_size
        fit = side / max(height, width)
        new_w, new_h = max(1, round(width * fit)), max(1, round(height * fit))
        # INTER_AREA averages the pixels a downscale drops (640 → 128 would alias with bilinear).
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if fit < 1 else cv2.INTER_LINEAR)
        pad_x, pad_y = (side - new_w) // 2, (side - new_h) // 2
        canvas = np.zeros((side, side, 3), np.uint8)
        canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized[..., None] if resized.ndim == 2 else resized
        tensor = np.divide(canvas.transpose(2, 0, 1)[None], 127.5, dtype=np.float32, order="C")  # cast and scale
        tensor -= 1.0
        return tensor, np.array([new_w / width, new_h / height]), np.array([pad_x, pad_y], np.float64)
