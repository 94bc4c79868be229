"""FaceAligner: find the face once, cut the same square box out of RGB, depth and IR.

Geometry only: the crops are raw pixels (``mmdg_edge.preprocess.encode`` turns them into the
model's input). They frame the face like the benchmark datasets' loose face crops (METHOD.md §5):
the detector's box enlarged by a fixed margin, made square, zero-padded at the image border,
resized to 224. Detection runs on RGB and falls back to IR when RGB is missing or dark. The face's
inner region (``geometry.inner_box``) gives the face distance and the depth coverage, and travels
on the crops for the physical checks. Never raises on bad input: every failure is an AlignResult
with a status and a reason.

Registration (colour not aligned to depth): the face box is moved between the colour and the
depth/IR pixel grids through the frameset's calibration (``mmdg_edge.geometry``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .face_detectors import Detection, HaarFaceDetector, YuNetFaceDetector, to_detections
from .frames import CROP_SIZE, FaceCrops, FaceQuality, FrameSet
from .geometry import Box, box_iou, inner_box, map_box_to_color, map_box_to_depth, region, square_box

__all__ = [
    "ALIGN_STATUSES", "AlignConfig", "AlignResult", "Detection", "FaceAligner", "HaarFaceDetector",
    "YuNetFaceDetector", "choose_face", "crop_square", "face_distance_m",
]

ALIGN_STATUSES = ("ok", "no_face", "unreliable", "error")
FaceDetector = Callable[[np.ndarray], Any]
# The Haar cascade's window is 24 px, but with the aligner's 7 neighbours it finds faces reliably from about
# 1.5 times that: the full-frame passes are sized so the faces they look for measure at least this much.
_RELIABLE_PX = 36


@dataclass(frozen=True)
class AlignConfig:
    """Crop geometry, detection, tracking and quality thresholds.

    ``margin`` 1.5: the benchmarks' crops are loose (forehead, chin and some background around a
    detector-tight box); 1.5× the Haar box reproduces that framing.
    """

    margin: float = 1.5
    # Full-frame search on a downscaled copy (Haar cost grows with pixels): first at this width, which
    # finds the large faces of a kiosk (≥ 144 px at 640 wide); only when that finds none, again at the
    # scale where a min_face_px face measures 36 px, for the faces between the two.
    detect_width: int = 160
    min_face_px: float = 60.0
    max_distance_m: float = 1.5
    min_blur: float = 15.0
    min_depth_coverage: float = 0.5
    max_faces: Optional[int] = None  # e.g. 1: a second face in view fails quality (None: any number)
    dark_rgb_level: float = 25.0  # mean grey below this: fall back to IR, and a face this dark shows nothing
    min_rgb_contrast: float = 3.0  # grey standard deviation on the face below this: the colour crop shows nothing
    smoothing: float = 0.5  # EMA weight of the previous box (0 = off)
    # A jump below this IoU restarts smoothing. A still face's detector jitter keeps IoU above 0.8; a
    # lower overlap is a new face or a fast move, and averaging with it shifts the crop off the face
    # (the soak's live framesets: 17 % denied with 0.4, 7 % with 0.7).
    reset_iou: float = 0.7
    # Tracking: search a window twice the previous face, scaled so the face is ~40 px (the Haar
    # window is 24), and the whole frame again every ``full_search_every`` frames to count faces.
    track: bool = True
    track_face_px: int = 40
    full_search_every: int = 10
    nominal_distance_m: float = 0.6  # first guess (and the guess without depth) for registration

    def __post_init__(self) -> None:
        if self.margin < 1.0:
            raise ValueError(f"AlignConfig.margin: expected ≥ 1, got {self.margin}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"AlignConfig.smoothing: expected a value in [0, 1), got {self.smoothing}")
        if self.detect_width < 64 or not self.min_face_px >= _RELIABLE_PX:
            raise ValueError(f"AlignConfig.detect_width/min_face_px: expected ≥ 64 px and ≥ {_RELIABLE_PX} px, got "
                             f"{self.detect_width}, {self.min_face_px}")
        if self.track_face_px < 24 or self.full_search_every < 1:
            raise ValueError(f"AlignConfig.track_face_px/full_search_every: expected ≥ 24 px and ≥ 1 frame, got "
                             f"{self.track_face_px}, {self.full_search_every}")
        if self.max_faces is not None and self.max_faces < 1:
            raise ValueError(f"AlignConfig.max_faces: expected None or ≥ 1, got {self.max_faces}")
        if not self.nominal_distance_m > 0:
            raise ValueError(f"AlignConfig.nominal_distance_m: expected > 0 metres, got {self.nominal_distance_m}")


@dataclass
class AlignResult:
    """Either crops (status "ok") or a reason.

    Attributes:
        status: one of ALIGN_STATUSES.
        reason: what was found where, or why nothing could be cropped.
        crops: the face crops when status is "ok".
        num_faces: faces seen in the frame (while tracking: the count of the last full-frame search
            or more when the tracking window itself holds more).
    """

    status: str
    reason: str
    crops: Optional[FaceCrops] = None
    num_faces: int = 0


def choose_face(faces: Sequence[Union[Detection, Box]], width: int, height: int) -> Union[Detection, Box]:
    """The largest face, ties broken towards the image centre (Detections or plain boxes)."""
    def key(face: Union[Detection, Box]) -> Tuple[float, float]:
        box = face.box if isinstance(face, Detection) else face
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return ((box[2] - box[0]) * (box[3] - box[1]), -((cx - width / 2) ** 2 + (cy - height / 2) ** 2))

    return max(faces, key=key)


def crop_square(image: np.ndarray, box: Box, interpolation: int, angle_deg: float = 0.0) -> np.ndarray:
    """Cut the square ``box`` out of ``image``, zero outside the image, resized to CROP_SIZE².

    A non-zero ``angle_deg`` rotates the content counter-clockwise about the box centre first
    (levels eyes tilted clockwise by that angle); that path samples with warpAffine, which has no
    area filter, so INTER_AREA becomes bilinear there.
    """
    if angle_deg:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        matrix = cv2.getRotationMatrix2D((cx, cy), angle_deg, CROP_SIZE / max(box[2] - box[0], 1e-6))
        matrix[:, 2] += (CROP_SIZE / 2 - cx, CROP_SIZE / 2 - cy)
        flags = cv2.INTER_LINEAR if interpolation == cv2.INTER_AREA else interpolation
        return cv2.warpAffine(image, matrix, (CROP_SIZE, CROP_SIZE), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=0)
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    side = max(1, int(round(box[2] - box[0])))
    out = np.zeros((side, side) + image.shape[2:], image.dtype)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(image.shape[1], x0 + side), min(image.shape[0], y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return cv2.resize(out, (CROP_SIZE, CROP_SIZE), interpolation=interpolation)


def face_distance_m(depth_region: np.ndarray, depth_scale_m: float) -> Optional[float]:
    """Median depth in metres of the valid (non-zero) pixels of a face region, None when there are none."""
    valid = depth_region[depth_region > 0]
    return float(np.median(valid)) * depth_scale_m if valid.size else None


def _shrink(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` scaled by ``scale`` < 1, never below one pixel a side (a 1×8000 strip stays 1 high)."""
    size = (max(1, int(round(image.shape[1] * scale))), max(1, int(round(image.shape[0] * scale))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _ir_to_uint8(ir: np.ndarray) -> np.ndarray:
    # Detection only needs contrast, not the model's encoding: percentiles of every 4th pixel suffice.
    low, high = np.percentile(ir[::4, ::4], (1.0, 99.0))
    return cv2.convertScaleAbs(ir, alpha=255.0 / max(high - low, 1.0), beta=-low * 255.0 / max(high - low, 1.0))


class FaceAligner:
    """Turn a FrameSet into FaceCrops, or into the reason it cannot.

    Keeps per-stream state (the tracked, smoothed face): use one aligner per stream and call
    ``reset()`` when a stream starts. ``align`` trusts the FrameSet contract (a FrameSet validates
    when built; call ``frameset.validate()`` after changing its fields, as ``Detector.check`` does).

    Args:
        config: geometry, tracking and quality thresholds.
        detector: a face detector (``HaarFaceDetector``, ``YuNetFaceDetector`` or any callable
            image → Detections or (x0, y0, x1, y1) boxes); default Haar.

    Example:
        >>> result = FaceAligner().align(frameset)  # doctest: +SKIP
        >>> result.status, result.reason, result.crops.quality.passed
    """

    def __init__(self, config: AlignConfig = AlignConfig(), detector: Optional[FaceDetector] = None) -> None:
        self.config = config
        self.detector = detector if detector is not None else HaarFaceDetector()
        self.reset()

    def reset(self) -> None:
        """Forget the tracked and smoothed face (call when a new stream starts)."""
        self._previous: Optional[Tuple[Box, float]] = None
        self._previous_source = ""
        self._frames_since_full = 0
        self._last_count = 0

    def align(self, frameset: FrameSet) -> AlignResult:
        """Find the face and crop it in every modality; never raises on bad input."""
        if not isinstance(frameset, FrameSet):
            return AlignResult("error", f"invalid frameset: expected a FrameSet, got {type(frameset).__name__}")
        if frameset.rgb is None and frameset.ir is None:
            return AlignResult("no_face", "no RGB or IR image to find a face in")
        image, source = self._detection_image(frameset)
        try:
            faces, num_faces = self._find_faces(image, source)
        except ValueError as exc:
            self.reset()
            return AlignResult("error", str(exc))
        if not faces:
            self.reset()
            return AlignResult("no_face", f"no face found in {source}")
        face = choose_face(faces, image.shape[1], image.shape[0])
        box, angle = self._smooth(face.box, _eye_angle(face), source)
        try:
            rgb_box, depth_box = self._register(frameset, box, source)
        except ValueError as exc:
            return AlignResult("error", str(exc), num_faces=num_faces)
        return self._crop(frameset, box, rgb_box, depth_box, angle, source, num_faces)

    def _detection_image(self, frameset: FrameSet) -> Tuple[np.ndarray, str]:
        wants_color = getattr(self.detector, "wants_color", False)
        if frameset.rgb is not None:
            grey = cv2.cvtColor(frameset.rgb, cv2.COLOR_RGB2GRAY)
            if frameset.ir is None or grey[::4, ::4].mean() >= self.config.dark_rgb_level:
                return (frameset.rgb if wants_color else grey), "RGB"
        ir = frameset.ir
        return (ir if ir.dtype == np.uint8 else _ir_to_uint8(ir)), "IR"

    def _find_faces(self, image: np.ndarray, source: str) -> Tuple[List[Detection], int]:
        cfg = self.config
        tracking = cfg.track and self._previous is not None and source == self._previous_source
        if tracking and self._frames_since_full < cfg.full_search_every:
            faces = self._search_near(image, self._previous[0])
            if faces:
                self._frames_since_full += 1
                return faces, max(len(faces), self._last_count)
        coarse = min(1.0, cfg.detect_width / image.shape[1])
        faces = self._search_scaled(image, coarse, None)
        fine = min(1.0, _RELIABLE_PX / cfg.min_face_px)
        if not faces and fine > coarse:
            # The coarse pass may miss faces under _RELIABLE_PX / coarse px; look for those only.
            largest = int(np.ceil(1.1 * _RELIABLE_PX * fine / coarse))
            # The pyramid still starts at the 24 px window: a face just above _RELIABLE_PX needs the levels
            # below it to gather its neighbours.
            faces = self._search_scaled(image, fine, (24, largest))
        self._frames_since_full, self._last_count = 0, len(faces)
        return faces, len(faces)

    def _search_scaled(self, image: np.ndarray, scale: float, size_range: Optional[Tuple[int, int]]) -> List[Detection]:
        small = _shrink(image, scale) if scale < 1 else image
        if size_range is not None and getattr(self.detector, "takes_size_range", False):
            found = self.detector(small, size_range=size_range)
        else:
            found = self.detector(small)
        return [d.scaled(1.0 / scale) for d in to_detections(found)]

    def _search_near(self, image: np.ndarray, box: Box) -> List[Detection]:
        side = max(box[2] - box[0], box[3] - box[1])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0, y0 = max(0, int(cx - side)), max(0, int(cy - side))
        x1, y1 = min(image.shape[1], int(cx + side)), min(image.shape[0], int(cy + side))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return []
        scale = min(1.0, self.config.track_face_px / side)
        window = image[y0:y1, x0:x1]
        if scale < 1:
            window = _shrink(window, scale)
        if getattr(self.detector, "takes_size_range", False):
            # The face changes size by far less than ×1.4 between frames; a jump beyond is a new search.
            expected = side * scale
            found = self.detector(window, size_range=(int(expected / 1.4), int(np.ceil(expected * 1.4))))
        else:
            found = self.detector(window)
        return [d.scaled(1.0 / scale, (x0, y0)) for d in to_detections(found)]

    def _smooth(self, box: Box, angle: float, source: str) -> Tuple[Box, float]:
        weight = self.config.smoothing
        previous = self._previous if source == self._previous_source else None
        if weight > 0 and previous is not None and box_iou(box, previous[0]) >= self.config.reset_iou:
            box = tuple(weight * p + (1 - weight) * b for p, b in zip(previous[0], box))
            angle = weight * previous[1] + (1 - weight) * angle
        self._previous, self._previous_source = (box, angle), source
        return box, angle

    def _register(self, frameset: FrameSet, box: Box, source: str) -> Tuple[Box, Box]:
        """The face box in colour pixels and in depth/IR pixels."""
        unaligned = (not frameset.color_aligned_to_depth and frameset.rgb is not None
                     and (frameset.depth is not None or frameset.ir is not None))
        if not unaligned:
            return box, box
        if frameset.depth is None and frameset.depth_to_color is None:
            # RGB + IR without depth or calibration (e.g. image-folder pairs): taken as registered.
            return box, box
        if source == "IR":
            distance = self._face_distance(frameset, box) or self.config.nominal_distance_m
            return map_box_to_color(box, distance, frameset), box
        # Two passes: the nominal distance lands the box on the face (parallax error ≈ baseline·fx·|1/d - 1/d0|,
        # ~15 px at 5 cm, 385 px focal length, 0.6 m guess for a face at 1 m), whose median depth then places it.
        depth_box = map_box_to_depth(box, self.config.nominal_distance_m, frameset)
        for _ in range(2):
            distance = self._face_distance(frameset, depth_box)
            if distance is None:
                break
            depth_box = map_box_to_depth(box, distance, frameset)
        return box, depth_box

    @staticmethod
    def _face_distance(frameset: FrameSet, depth_box: Box) -> Optional[float]:
        if frameset.depth is None:
            return None
        return face_distance_m(region(frameset.depth, inner_box(depth_box)), frameset.depth_scale_m)

    def _crop(self, frameset: FrameSet, face: Box, rgb_box: Box, depth_box: Box, angle: float, source: str,
              num_faces: int) -> AlignResult:
        cfg = self.config
        inner = inner_box(depth_box)
        rgb = crop_square(frameset.rgb, square_box(rgb_box, cfg.margin), cv2.INTER_AREA, angle) \
            if frameset.rgb is not None else None
        if rgb is not None and not self._shows_a_face(rgb):
            if source == "RGB":  # found in colour, yet its face region is dark or flat (a backlit face)
                return AlignResult("unreliable", "the colour face is too dark or without contrast (backlit?)",
                                   num_faces=num_faces)
            rgb = None  # a black or blank colour face carries nothing for the model: absent, not black
        depth_square = square_box(depth_box, cfg.margin)
        depth = depth_region = ir = ir_region = None
        distance = coverage = None
        if frameset.depth is not None:
            depth_region = region(frameset.depth, inner)
            coverage = float((depth_region > 0).mean()) if depth_region.size else 0.0
            distance = face_distance_m(depth_region, frameset.depth_scale_m)
            if distance is not None:  # no depth on the face: nothing to centre its encoding on
                depth = crop_square(frameset.depth, depth_square, cv2.INTER_NEAREST, angle)  # no blending across holes
        if frameset.ir is not None:
            ir = crop_square(frameset.ir, depth_square, cv2.INTER_AREA, angle)
            ir_region = region(frameset.ir, inner)
        if rgb is None and depth is None and ir is None:
            return AlignResult("unreliable", "no usable modality on the face", num_faces=num_faces)
        blur = _blur(rgb if source == "RGB" else ir)
        size = max(face[2] - face[0], face[3] - face[1])
        failures = self._failures(size, distance, blur, coverage, num_faces)
        quality = FaceQuality(size, distance, blur, coverage, not failures, tuple(failures))
        crops = FaceCrops(rgb, depth, ir, rgb_box, depth_box, quality, frameset.depth_scale_m, depth_region,
                          ir_region, num_faces)
        return AlignResult("ok", f"face found in {source}", crops, num_faces)

    def _shows_a_face(self, rgb_crop: np.ndarray) -> bool:
        """Whether the colour crop's face is lit and has any contrast at all."""
        margin = self.config.margin
        lo, hi = int(CROP_SIZE * (0.5 - 0.35 / margin)), int(np.ceil(CROP_SIZE * (0.5 + 0.35 / margin)))
        face = cv2.cvtColor(rgb_crop[lo:hi, lo:hi], cv2.COLOR_RGB2GRAY)
        return face.mean() >= self.config.dark_rgb_level and face.std() >= self.config.min_rgb_contrast

    def _failures(self, size: float, distance: Optional[float], blur: float, coverage: Optional[float],
                  num_faces: int) -> List[str]:
        cfg = self.config
        failures = []
        if size < cfg.min_face_px:
            failures.append(f"face {size:.0f} px < {cfg.min_face_px:.0f} px")
        if distance is not None and distance > cfg.max_distance_m:
            failures.append(f"face at {distance:.2f} m > {cfg.max_distance_m} m")
        if blur < cfg.min_blur:
            failures.append(f"blur {blur:.1f} < {cfg.min_blur}")
        if coverage is not None and coverage < cfg.min_depth_coverage:
            failures.append(f"depth covers {coverage:.0%} of the face's centre < {cfg.min_depth_coverage:.0%}")
        if cfg.max_faces is not None and num_faces > cfg.max_faces:
            failures.append(f"{num_faces} faces in view > {cfg.max_faces}")
        return failures


def _blur(crop: np.ndarray) -> float:
    """Sharpness: variance of the Laplacian of the crop, contrast-stretched to 0..255 first (a raw
    16-bit or dim IR crop would otherwise read as blurred)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    grey = cv2.normalize(grey, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _eye_angle(face: Detection) -> float:
    """Degrees the eye line is tilted clockwise in the image (0 without landmarks)."""
    if face.landmarks is None:
        return 0.0
    (rx, ry), (lx, ly) = face.landmarks[0], face.landmarks[1]
    return math.degrees(math.atan2(ly - ry, lx - rx))
