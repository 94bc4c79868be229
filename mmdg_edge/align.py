"""FaceAligner: find the face once, cut the same square box out of RGB, depth and IR.

The crops must look like the benchmark datasets' loose face crops (METHOD.md §5): the detector's
box enlarged by a fixed margin, made square, zero-padded at the image border, resized to 224;
depth encoded relative to the face and IR contrast-normalised by mmdg_edge.preprocess. Detection
runs on RGB and falls back to IR when RGB is missing or dark. Never raises: every failure is an
AlignResult with a status and a reason.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .frames import CROP_SIZE, FaceCrops, FaceQuality, FrameSet
from .preprocess import PreprocessConfig, face_depth_m, gray_to_rgb, normalize_depth, normalize_ir
from .temporal import box_iou

logger = logging.getLogger(__name__)

Box = Tuple[float, float, float, float]
ALIGN_STATUSES = ("ok", "no_face", "unreliable", "error")


@dataclass(frozen=True)
class AlignConfig:
    """Crop geometry, detection and quality thresholds.

    ``margin`` 1.5: the benchmarks' crops are loose (forehead, chin and some background around a
    detector-tight box); 1.5× the Haar box reproduces that framing.
    """

    margin: float = 1.5
    detect_width: int = 320  # detect on a downscaled grey image: Haar cost grows with pixels
    min_face_px: float = 60.0
    max_distance_m: float = 1.5
    min_blur: float = 15.0
    min_depth_coverage: float = 0.5
    dark_rgb_level: float = 25.0  # mean grey below this: fall back to IR
    smoothing: float = 0.5  # weight of the previous box (0 = off)
    reset_iou: float = 0.4  # a jump below this IoU restarts smoothing

    def __post_init__(self) -> None:
        if self.margin < 1.0:
            raise ValueError(f"AlignConfig.margin: expected ≥ 1, got {self.margin}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"AlignConfig.smoothing: expected a value in [0, 1), got {self.smoothing}")


@dataclass
class AlignResult:
    """Either crops (status "ok") or a reason; ``depth_box`` is the face box in depth/IR pixels."""

    status: str
    reason: str
    crops: Optional[FaceCrops] = None
    num_faces: int = 0
    depth_box: Optional[Box] = None


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (ships inside opencv-python 4.x: nothing is downloaded)."""

    # 7 neighbours: fewer false faces on clothing and backgrounds than OpenCV's 3, at no cost on real faces
    def __init__(self, min_neighbors: int = 7, scale_factor: float = 1.1) -> None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise FileNotFoundError(f"Haar cascade not found at {path}; install opencv-python<5")
        self.min_neighbors, self.scale_factor = min_neighbors, scale_factor

    def __call__(self, gray: np.ndarray) -> List[Box]:
        found = self._cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                               minSize=(24, 24))
        return [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in np.reshape(found, (-1, 4))]


def choose_face(boxes: Sequence[Box], width: int, height: int) -> Box:
    """The largest face, ties broken towards the image centre."""
    def key(box: Box) -> Tuple[float, float]:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return ((box[2] - box[0]) * (box[3] - box[1]), -((cx - width / 2) ** 2 + (cy - height / 2) ** 2))

    return max(boxes, key=key)


def square_box(box: Box, margin: float) -> Box:
    """A square of side margin·max(w, h) around the box centre."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = margin * max(box[2] - box[0], box[3] - box[1]) / 2
    return (cx - half, cy - half, cx + half, cy + half)


def crop_square(image: np.ndarray, box: Box, interpolation: int) -> np.ndarray:
    """Cut ``box`` out of ``image`` with zero padding outside it, resized to CROP_SIZE²."""
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    side = max(1, int(round(box[2] - box[0])))
    out = np.zeros((side, side) + image.shape[2:], image.dtype)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(image.shape[1], x0 + side), min(image.shape[0], y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return cv2.resize(out, (CROP_SIZE, CROP_SIZE), interpolation=interpolation)


def map_box_to_depth(box: Box, distance_m: float, frameset: FrameSet) -> Box:
    """Move a colour-pixel box into depth pixels: deproject its corners at the face distance,
    apply the inverse depth→colour extrinsic, project with the depth intrinsics."""
    color, depth = frameset.intrinsics["rgb"], frameset.intrinsics["depth"]
    rotation, translation = frameset.depth_to_color.matrix()
    corners = np.array([[box[0], box[1]], [box[2], box[3]]], np.float64)
    points = np.stack([(corners[:, 0] - color.ppx) / color.fx * distance_m,
                       (corners[:, 1] - color.ppy) / color.fy * distance_m, np.full(2, distance_m)])
    in_depth = rotation.T @ (points - translation[:, None])
    u = in_depth[0] / in_depth[2] * depth.fx + depth.ppx
    v = in_depth[1] / in_depth[2] * depth.fy + depth.ppy
    return (float(u[0]), float(v[0]), float(u[1]), float(v[1]))


class FaceAligner:
    """Turn a FrameSet into FaceCrops, or into the reason it cannot.

    Args:
        config: geometry and quality thresholds.
        detector: callable grey image → list of (x0, y0, x1, y1) boxes; default Haar.
        preprocess: the crop encoding (depth window, IR percentiles) of the model in use.

    Example:
        >>> result = FaceAligner().align(frameset)  # doctest: +SKIP
        >>> result.status, result.reason
    """

    def __init__(self, config: AlignConfig = AlignConfig(), detector: Optional[Callable[[np.ndarray], List[Box]]] = None,
                 preprocess: PreprocessConfig = PreprocessConfig()) -> None:
        self.config = config
        self.detector = detector if detector is not None else HaarFaceDetector()
        self.preprocess = preprocess
        self._previous: Optional[Box] = None

    def reset(self) -> None:
        """Forget the smoothed box (call when a new stream starts)."""
        self._previous = None

    def align(self, frameset: FrameSet) -> AlignResult:
        try:
            frameset.validate()
        except (ValueError, AttributeError) as exc:
            return AlignResult("error", f"invalid frameset: {exc}")
        if frameset.rgb is None and frameset.ir is None:
            return AlignResult("no_face", "no RGB or IR image to find a face in")
        grey, source = self._detection_image(frameset)
        scale = min(1.0, self.config.detect_width / grey.shape[1])
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey
        boxes = [tuple(v / scale for v in b) for b in self.detector(small)]
        if not boxes:
            self.reset()
            return AlignResult("no_face", f"no face found in {source}")
        face = self._smooth(choose_face(boxes, grey.shape[1], grey.shape[0]))
        return self._crop(frameset, face, source, len(boxes))

    def _detection_image(self, frameset: FrameSet) -> Tuple[np.ndarray, str]:
        if frameset.rgb is not None:
            grey = cv2.cvtColor(frameset.rgb, cv2.COLOR_RGB2GRAY)
            if grey.mean() >= self.config.dark_rgb_level or frameset.ir is None:
                return grey, "RGB"
        ir = frameset.ir
        return (normalize_ir(ir, self.preprocess) if ir.dtype != np.uint8 else ir), "IR"

    def _smooth(self, box: Box) -> Box:
        weight = self.config.smoothing
        if weight > 0 and self._previous is not None and box_iou(box, self._previous) >= self.config.reset_iou:
            box = tuple(weight * p + (1 - weight) * b for p, b in zip(self._previous, box))
        self._previous = box
        return box

    def _crop(self, frameset: FrameSet, face: Box, source: str, num_faces: int) -> AlignResult:
        cfg = self.config
        size = max(face[2] - face[0], face[3] - face[1])
        depth_box = face
        distance = coverage = None
        if frameset.depth is not None:
            if source == "RGB" and not frameset.color_aligned_to_depth:
                if frameset.depth_to_color is None or not {"rgb", "depth"} <= set(frameset.intrinsics):
                    return AlignResult("error", "colour is not aligned to depth and the frameset has no intrinsics/"
                                                "extrinsics to map the face box", num_faces=num_faces)
                guess = face_depth_m(frameset.depth, frameset.depth_scale_m) or 0.6
                depth_box = map_box_to_depth(face, guess, frameset)
            x0, y0, x1, y1 = (int(round(v)) for v in depth_box)
            region = frameset.depth[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)]
            coverage = float((region > 0).mean()) if region.size else 0.0
            distance = face_depth_m(region, frameset.depth_scale_m) if region.size else None
        square = square_box(face, cfg.margin)
        depth_square = square_box(depth_box, cfg.margin)
        mask = np.array(frameset.present)
        blank = np.zeros((CROP_SIZE, CROP_SIZE, 3), np.uint8)
        rgb = crop_square(frameset.rgb, square, cv2.INTER_AREA) if frameset.rgb is not None else blank
        depth_crop = ir_crop = blank
        if frameset.depth is not None:
            raw = crop_square(frameset.depth, depth_square, cv2.INTER_NEAREST)  # no blending across holes
            if distance is None:
                mask[1] = False
            else:
                depth_crop = gray_to_rgb(normalize_depth(raw, frameset.depth_scale_m, distance, self.preprocess))
        if frameset.ir is not None:
            ir_crop = gray_to_rgb(normalize_ir(crop_square(frameset.ir, depth_square, cv2.INTER_AREA), self.preprocess))
        blur_source = rgb if source == "RGB" else ir_crop
        blur = float(cv2.Laplacian(cv2.cvtColor(blur_source, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())
        failures = []
        if size < cfg.min_face_px:
            failures.append(f"face {size:.0f} px < {cfg.min_face_px:.0f} px")
        if distance is not None and distance > cfg.max_distance_m:
            failures.append(f"face at {distance:.2f} m > {cfg.max_distance_m} m")
        if blur < cfg.min_blur:
            failures.append(f"blur {blur:.1f} < {cfg.min_blur}")
        if coverage is not None and coverage < cfg.min_depth_coverage:
            failures.append(f"depth covers {coverage:.0%} of the face < {cfg.min_depth_coverage:.0%}")
        quality = FaceQuality(size, distance, blur, coverage, not failures, tuple(failures))
        if not mask.any():
            return AlignResult("unreliable", "no usable modality on the face", num_faces=num_faces)
        crops = FaceCrops(rgb, depth_crop, ir_crop, mask, face, quality, num_faces)
        return AlignResult("ok", f"face found in {source}", crops, num_faces, depth_box)
