"""FaceAligner: find the face, place its landmarks, and cut the same face out of RGB, depth and IR.

A learned detector (MediaPipe BlazeFace by default, OpenCV's Haar cascade as an option) finds the
faces; the landmark model (MediaPipe Face Mesh, 468 points in 3-D) places the chosen face's points.
Everything after is drawn by the landmarks, never by a box fraction:
- the crops are levelled on the eye line and scaled by the eyes' 3-D distance (which a turned head
  does not shorten), centred between the eyes and the mouth, in every modality;
- the face region the physical checks measure is the polygon of the face's own points (cheeks, nose,
  the forehead below the hairline, the chin): a hand beside the face, the hair, the sheet's edge or
  the wall behind the silhouette is not in it;
- depth is sampled at named landmarks for the face-shape check (``mmdg_edge.physics``);
- head pose (yaw, pitch, roll) and the eyes' distance go into the quality record.

Stateless: ``align`` depends only on its frameset and on the ``TrackPrior`` a stream session may
pass in (the last landmarks, so a tracked face needs no full search; ``mmdg_edge.tracking``). Never raises on bad input: every
failure is an AlignResult with a status and a reason.

Registration (colour not aligned to depth): the face box is moved between the colour and the
depth/IR pixel grids through the frameset's calibration (``mmdg_edge.geometry``), and the
landmarks with it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .face_detectors import BlazeFaceDetector, Detection, HaarFaceDetector, YuNetFaceDetector, to_detections
from .face_mesh import (
    FACE_OVAL, LEFT_EYE_OUTER, MATERIAL_POINTS, MOUTH_LEFT, MOUTH_RIGHT, NOSE_TIP, RIGHT_EYE_OUTER, ROI_SCALE,
    SHAPE_POINTS, FaceLandmarks, FaceMesh, MeshRoi, head_pose, roi_from_detection, roi_from_landmarks,
)
from .frames import CROP_SIZE, FaceCrops, FaceQuality, FrameSet
from .geometry import Box, box_iou, map_box_to_color, map_box_to_depth

__all__ = [
    "ALIGN_STATUSES", "AlignConfig", "AlignResult", "BlazeFaceDetector", "Detection", "FaceAligner",
    "TrackPrior", "HaarFaceDetector", "YuNetFaceDetector", "choose_face", "crop_rotated", "face_distance_m",
]

ALIGN_STATUSES = ("ok", "no_face", "unreliable", "error")
_TILE = 0.6  # the second search pass's tiles: this share of the frame's width and height, overlapping
_RESETTLE = 0.05  # a tracked face whose landmarks moved more than this share of the region is placed again
FaceDetector = Callable[[np.ndarray], Any]

# The face region for IR and depth coverage: the silhouette pulled this far towards the nose.
_REGION_SHRINK = 0.85


@dataclass(frozen=True)
class AlignConfig:
    """Crop geometry, detection, tracking and quality thresholds.

    ``crop_eye_widths``: the crop's side in 3-D eye-corner distances. At 2.6 it frames the face as
    the benchmark datasets' loose crops do (forehead, chin and a little background; METHOD.md §5).
    """

    crop_eye_widths: float = 2.6
    detect_width: int = 320  # the full-frame search runs on a copy this wide (detectors resize anyway)
    min_face_px: float = 60.0  # face width (the landmarks' silhouette) below this: too small to judge
    max_distance_m: float = 1.5
    min_blur: float = 15.0
    min_depth_coverage: float = 0.5
    max_faces: Optional[int] = 1  # a second face in view makes the frameset unreliable (None: any number)
    dark_rgb_level: float = 25.0  # the colour frame's mean grey below this: detect on IR
    # The colour face's mean grey below this shows nothing (a covered lens, a face in the dark). Far
    # below dark_rgb_level: dark skin in a dim room measures about 20 on the synthetic camera and
    # was refused at 25 (tests/test_align.py).
    min_face_level: float = 10.0
    min_rgb_contrast: float = 3.0  # grey standard deviation on the face below this: the colour crop shows nothing
    min_presence: float = 0.9  # the landmark model's face presence below this: no face there (a false face on
    # clothing is then neither cropped nor counted: tests/test_align.py)
    nominal_distance_m: float = 0.6  # first guess (and the guess without depth) for registration

    def __post_init__(self) -> None:
        if not self.crop_eye_widths > 1.0:
            raise ValueError(f"AlignConfig.crop_eye_widths: expected > 1, got {self.crop_eye_widths}")
        if self.detect_width < 64 or not self.min_face_px > 0:
            raise ValueError(f"AlignConfig.detect_width/min_face_px: expected ≥ 64 px and > 0, got "
                             f"{self.detect_width}, {self.min_face_px}")
        if self.max_faces is not None and self.max_faces < 1:
            raise ValueError(f"AlignConfig.max_faces: expected None or ≥ 1, got {self.max_faces}")
        if not 0.0 < self.min_presence < 1.0:
            raise ValueError(f"AlignConfig.min_presence: expected a value in (0, 1), got {self.min_presence}")
        if not self.nominal_distance_m > 0:
            raise ValueError(f"AlignConfig.nominal_distance_m: expected > 0 metres, got {self.nominal_distance_m}")


@dataclass(frozen=True)
class TrackPrior:
    """Where a stream's face was last frameset (from ``mmdg_edge.tracking.FaceTrack``): its landmarks in
    the pixels of the image they were found in ("RGB" or "IR"), and the faces the last full search counted."""

    landmarks: np.ndarray
    source: str
    num_faces: int


@dataclass
class AlignResult:
    """Either crops (status "ok") or a reason.

    Attributes:
        status: one of ALIGN_STATUSES.
        reason: what was found where, or why nothing could be cropped.
        crops: the face crops when status is "ok".
        num_faces: faces seen in the frame (while tracking: the last full search's count).
        landmarks: the face's landmarks in the pixels of the image they were found in, or None.
        source: that image: "RGB" or "IR" ("" when no image was searched).
        searched: whether the whole frame was searched (else the prior's region only).
    """

    status: str
    reason: str
    crops: Optional[FaceCrops] = None
    num_faces: int = 0
    landmarks: Optional[np.ndarray] = None
    source: str = ""
    searched: bool = True


def choose_face(faces: Sequence[Union[Detection, Box]], width: int, height: int) -> Union[Detection, Box]:
    """The largest face, ties broken towards the image centre (Detections or plain boxes)."""
    def key(face: Union[Detection, Box]) -> Tuple[float, float]:
        box = face.box if isinstance(face, Detection) else face
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return ((box[2] - box[0]) * (box[3] - box[1]), -((cx - width / 2) ** 2 + (cy - height / 2) ** 2))

    return max(faces, key=key)


def crop_rotated(image: np.ndarray, centre: Tuple[float, float], side: float, angle_deg: float,
                 interpolation: int) -> np.ndarray:
    """The square of ``side`` px about ``centre``, rotated by ``angle_deg`` (counter-clockwise: levels an
    eye line tilted clockwise by that angle), zero outside the image, resampled to CROP_SIZE².

    ``INTER_AREA`` has no meaning for a warp: it samples bilinearly there, with a blur first when
    the crop shrinks the face by more than two (so a far-away crop does not alias).
    """
    scale = CROP_SIZE / max(side, 1e-6)
    if interpolation == cv2.INTER_AREA:
        if scale < 0.5:
            image = cv2.GaussianBlur(image, (0, 0), 0.5 / scale)
        interpolation = cv2.INTER_LINEAR
    matrix = cv2.getRotationMatrix2D(centre, angle_deg, scale)
    matrix[:, 2] += (CROP_SIZE / 2 - centre[0], CROP_SIZE / 2 - centre[1])
    return cv2.warpAffine(image, matrix, (CROP_SIZE, CROP_SIZE), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def face_distance_m(depth_values: np.ndarray, depth_scale_m: float) -> Optional[float]:
    """Median depth in metres of the valid (non-zero) values of a face region, None when there are none.

    uint16 depth is counted, not sorted: the two middle values are found in the cumulative histogram
    (np.median's answer exactly, tests/test_align.py)."""
    if depth_values.dtype != np.uint16:
        valid = depth_values[depth_values > 0]
        return float(np.median(valid)) * depth_scale_m if valid.size else None
    counts = np.bincount(depth_values.ravel())
    counts[:1] = 0
    cumulative = np.cumsum(counts)
    count = int(cumulative[-1]) if cumulative.size else 0
    if count == 0:
        return None
    lower, upper = np.searchsorted(cumulative, [(count - 1) // 2, count // 2], side="right")
    return 0.5 * float(lower + upper) * depth_scale_m


def _ir_to_uint8(ir: np.ndarray) -> np.ndarray:
    # Detection only needs contrast, not the model's encoding: percentiles of every 4th pixel suffice.
    low, high = np.percentile(ir[::4, ::4], (1.0, 99.0))
    return cv2.convertScaleAbs(ir, alpha=255.0 / max(high - low, 1.0), beta=-low * 255.0 / max(high - low, 1.0))


def _box_of(points: np.ndarray) -> Box:
    return (float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()),
            float(points[:, 1].max()))


class FaceAligner:
    """Turn a FrameSet into FaceCrops, or into the reason it cannot.

    ``align`` trusts the FrameSet contract (a FrameSet validates when built; call
    ``frameset.validate()`` after changing its fields, as ``Detector.check`` does). The models it
    runs (onnxruntime sessions, an OpenCV cascade) are created once; share an aligner between
    threads only behind a lock, as ``Detector`` does.

    Args:
        config: geometry, tracking and quality thresholds.
        detector: a face detector (``BlazeFaceDetector`` by default, ``HaarFaceDetector``,
            ``YuNetFaceDetector`` or any callable image → Detections or (x0, y0, x1, y1) boxes).
        mesh: the landmark model (default: the bundled Face Mesh).

    Example:
        >>> result = FaceAligner().align(frameset)  # doctest: +SKIP
        >>> result.status, result.reason, result.crops.quality.yaw_deg
    """

    def __init__(self, config: AlignConfig = AlignConfig(), detector: Optional[FaceDetector] = None,
                 mesh: Optional[FaceMesh] = None) -> None:
        self.config = config
        self.detector = detector if detector is not None else BlazeFaceDetector()
        self.mesh = mesh if mesh is not None else FaceMesh()

    def align(self, frameset: FrameSet, prior: Optional[TrackPrior] = None) -> AlignResult:
        """Find the face, place its landmarks and crop it in every modality; never raises on bad input.

        Args:
            frameset: a validated FrameSet.
            prior: where the stream's face was (``FaceTrack.prior()``): its landmarks' region is
                searched instead of the whole frame. None: a full search.
        """
        if not isinstance(frameset, FrameSet):
            return AlignResult("error", f"invalid frameset: expected a FrameSet, got {type(frameset).__name__}")
        if frameset.rgb is None and frameset.ir is None:
            return AlignResult("no_face", "no RGB or IR image to find a face in")
        image, source = self._detection_image(frameset)
        try:
            found = self._landmarks(image, source, prior)
        except ValueError as exc:
            return AlignResult("error", str(exc), source=source)
        if isinstance(found, str):
            return AlignResult("no_face", found, source=source)
        landmarks, num_faces, searched = found
        result = self._crop(frameset, landmarks, source, num_faces)
        result.landmarks, result.source, result.searched = landmarks.points, source, searched
        return result

    def _detection_image(self, frameset: FrameSet) -> Tuple[np.ndarray, str]:
        if frameset.rgb is not None:
            if frameset.ir is None:
                return frameset.rgb, "RGB"
            grey = cv2.cvtColor(np.ascontiguousarray(frameset.rgb[::8, ::8]), cv2.COLOR_RGB2GRAY)  # every 64th pixel
            if grey.mean() >= self.config.dark_rgb_level:
                return frameset.rgb, "RGB"
        ir = frameset.ir
        return (ir if ir.dtype == np.uint8 else _ir_to_uint8(ir)), "IR"

    def _landmarks(self, image: np.ndarray, source: str,
                   prior: Optional[TrackPrior]) -> Union[str, Tuple[FaceLandmarks, int, bool]]:
        """The face's landmarks, the face count and whether the whole frame was searched; or why there is no face."""
        cfg = self.config
        if prior is not None and prior.source == source:
            landmarks = self._settled(image, roi_from_landmarks(prior.landmarks))
            if landmarks.score >= cfg.min_presence:
                return landmarks, prior.num_faces, False
        detections = self._search(image)
        if not detections:
            return f"no face found in {source}"
        # The landmark model confirms each detection: a detector's false face (a pattern on clothing)
        # is neither cropped nor counted as a second face.
        faces = [(face, self._settled(image, _roi(face))) for face in detections]
        faces = [(face, landmarks) for face, landmarks in faces if landmarks.score >= cfg.min_presence]
        # Two detections of one face (a tile cut it) lead the landmark model to the same face: count it once.
        faces = _distinct(faces, lambda found: _box_of(found[1].points[list(FACE_OVAL), :2]))
        if not faces:
            return (f"the landmark model sees no face where the detector found {len(detections)} in {source} "
                    f"(presence below {cfg.min_presence})")
        chosen = choose_face([face for face, _ in faces], image.shape[1], image.shape[0])
        return next(landmarks for face, landmarks in faces if face is chosen), len(faces), True

    def _settled(self, image: np.ndarray, roi: MeshRoi) -> FaceLandmarks:
        """The landmarks in ``roi``, placed once more in the region they give when the face sat off its
        centre (a region that holds part of a face skews the points towards its edge)."""
        landmarks = self.mesh(image, roi)
        if landmarks.score < self.config.min_presence:
            return landmarks
        settled = roi_from_landmarks(landmarks.points)
        if math.hypot(settled.cx - roi.cx, settled.cy - roi.cy) > _RESETTLE * roi.size \
                or abs(settled.size / roi.size - 1.0) > 2 * _RESETTLE:
            landmarks = self.mesh(image, settled)
        return landmarks

    def _search(self, image: np.ndarray) -> List[Detection]:
        """Every face in the frame: the whole frame, and four overlapping tiles of 60 % of each side
        where a face appears 1.7 times larger to the detector (a learned detector's input is small: at
        640×480 BlazeFace misses faces under ~70 px, and a small face beside a large one is a face too)."""
        if image.ndim == 3 and not getattr(self.detector, "wants_color", False):
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        found = self._detect(image, (0, 0))
        height, width = image.shape[:2]
        tile_w, tile_h = int(np.ceil(_TILE * width)), int(np.ceil(_TILE * height))
        for y in (0, height - tile_h):
            for x in (0, width - tile_w):
                found.extend(self._detect(image[y:y + tile_h, x:x + tile_w], (x, y)))
        return _distinct(found, lambda face: face.box)

    def _detect(self, image: np.ndarray, offset: Tuple[int, int]) -> List[Detection]:
        scale = min(1.0, self.config.detect_width / image.shape[1])
        small = image
        if scale < 1.0:
            size = (max(1, int(round(image.shape[1] * scale))), max(1, int(round(image.shape[0] * scale))))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return [d.scaled(1.0 / scale, offset) for d in to_detections(self.detector(small))]

    def _register(self, frameset: FrameSet, box: Box, source: str) -> Tuple[Box, Box]:
        """The face box in colour pixels and in depth/IR pixels."""
        unaligned = (not frameset.color_aligned_to_depth and frameset.rgb is not None
                     and (frameset.depth is not None or frameset.ir is not None))
        if not unaligned or (frameset.depth is None and frameset.depth_to_color is None):
            # Aligned, one grid only, or RGB + IR without depth or calibration (image-folder pairs): registered.
            return box, box
        if source == "IR":
            distance = self._box_distance(frameset, box) or self.config.nominal_distance_m
            return map_box_to_color(box, distance, frameset), box
        # Two passes: the nominal distance lands the box on the face (parallax error ≈ baseline·fx·|1/d - 1/d0|,
        # ~15 px at 5 cm, 385 px focal length, 0.6 m guess for a face at 1 m), whose median depth then places it.
        depth_box = map_box_to_depth(box, self.config.nominal_distance_m, frameset)
        for _ in range(2):
            distance = self._box_distance(frameset, depth_box)
            if distance is None:
                break
            depth_box = map_box_to_depth(box, distance, frameset)
        return box, depth_box

    @staticmethod
    def _box_distance(frameset: FrameSet, box: Box) -> Optional[float]:
        if frameset.depth is None:
            return None
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        half = (box[2] - box[0]) / 4
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        window = frameset.depth[y0:max(y0, int(cy + half)), x0:max(x0, int(cx + half))]
        return face_distance_m(window, frameset.depth_scale_m)

    def _crop(self, frameset: FrameSet, landmarks: FaceLandmarks, source: str, num_faces: int) -> AlignResult:
        cfg = self.config
        points = landmarks.points
        box = _box_of(points[list(FACE_OVAL), :2])
        try:
            rgb_box, depth_box = self._register(frameset, box, source)
        except ValueError as exc:
            return AlignResult("error", str(exc), num_faces=num_faces)
        if source == "IR":  # found on the depth/IR grid: move the points to colour for the colour crop
            depth_points, rgb_points = points, _moved(points, depth_box, rgb_box)
        else:
            rgb_points, depth_points = points, _moved(points, rgb_box, depth_box)
        centre_rgb, side_rgb, angle = _crop_frame(rgb_points, cfg.crop_eye_widths)
        centre_depth, side_depth, _ = _crop_frame(depth_points, cfg.crop_eye_widths)
        grid = next(image for image in (frameset.depth, frameset.ir, frameset.rgb) if image is not None)
        mask, origin = _region_mask(depth_points, grid.shape[:2])
        rgb = crop_rotated(frameset.rgb, centre_rgb, side_rgb, angle, cv2.INTER_AREA) \
            if frameset.rgb is not None else None
        if rgb is not None:
            # One grid (colour aligned to depth, or colour alone): the colour face is the same polygon.
            same = rgb_points is depth_points and frameset.rgb.shape[:2] == grid.shape[:2]
            rgb_mask, rgb_origin = (mask, origin) if same else _region_mask(rgb_points, frameset.rgb.shape[:2])
            if not self._shows_a_face(frameset.rgb, rgb_mask, rgb_origin):
                if source == "RGB":  # found in colour, yet its face region is dark or flat (a backlit face)
                    return AlignResult("unreliable", "the colour face is too dark or without contrast (backlit?)",
                                       num_faces=num_faces)
                rgb = None  # a black or blank colour face carries nothing for the model: absent, not black
        depth = depth_region = ir = ir_region = shape_depth = None
        distance = coverage = None
        if frameset.depth is not None:
            depth_region = _masked(frameset.depth, mask, origin)
            coverage = float((depth_region > 0).mean()) if depth_region.size else 0.0
            distance = face_distance_m(depth_region, frameset.depth_scale_m)
            if distance is not None:  # no depth on the face: nothing to centre its encoding on
                depth = crop_rotated(frameset.depth, centre_depth, side_depth, angle, cv2.INTER_NEAREST)
                shape_depth = _sample_depth(frameset.depth, depth_points[list(SHAPE_POINTS), :2],
                                            frameset.depth_scale_m)
        ir_patches = None
        if frameset.ir is not None:
            ir = crop_rotated(frameset.ir, centre_depth, side_depth, angle, cv2.INTER_AREA)
            ir_region = _masked(frameset.ir, mask, origin)
            if frameset.metadata.get("emitter") not in ("off", "interleaved"):  # the IR shows the projector's dots
                ir_patches = _patches(frameset.ir, depth_points)
        if rgb is None and depth is None and ir is None:
            return AlignResult("unreliable", "no usable modality on the face", num_faces=num_faces)
        crop_for_blur = rgb if source == "RGB" else ir
        blur = _blur(crop_for_blur) if crop_for_blur is not None else 0.0
        yaw, pitch, roll = head_pose(points)
        eye_px = float(np.linalg.norm(points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER]))
        size = box[2] - box[0]
        failures = self._failures(size, distance, blur, coverage, num_faces)
        quality = FaceQuality(size, distance, blur, coverage, not failures, tuple(failures), yaw_deg=yaw,
                              pitch_deg=pitch, roll_deg=roll, eye_distance_px=eye_px)
        crops = FaceCrops(rgb, depth, ir, rgb_box, depth_box, quality, frameset.depth_scale_m, depth_region,
                          ir_region, num_faces, landmarks=depth_points, shape_depth_m=shape_depth,
                          metres_per_px=_metres_per_px(frameset, distance), ir_patches=ir_patches)
        return AlignResult("ok", f"face found in {source}", crops, num_faces)

    def _shows_a_face(self, rgb: np.ndarray, mask: np.ndarray, origin: Tuple[int, int]) -> bool:
        """Whether the colour face (``mask`` from ``_region_mask``: inside its landmarks' silhouette) is lit
        and has any contrast at all."""
        x0, y0 = origin
        if not mask.any():
            return False
        around = np.ascontiguousarray(rgb[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]])
        mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(cv2.cvtColor(around, cv2.COLOR_RGB2GRAY),
                                                            mask=mask.view(np.uint8)))
        return mean >= self.config.min_face_level and std >= self.config.min_rgb_contrast

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
            failures.append(f"depth covers {coverage:.0%} of the face < {cfg.min_depth_coverage:.0%}")
        if cfg.max_faces is not None and num_faces > cfg.max_faces:
            failures.append(f"{num_faces} faces in view > {cfg.max_faces}")
        return failures


def _distinct(faces: List[Any], box_of: Callable[[Any], Box]) -> List[Any]:
    """One entry per face where two overlap (IoU ≥ 0.3; the first one stays)."""
    kept: List[Any] = []
    for face in faces:
        if all(box_iou(box_of(face), box_of(other)) < 0.3 for other in kept):
            kept.append(face)
    return kept


def _roi(face: Detection) -> MeshRoi:
    """The landmark model's region for a detection: levelled by its eye keypoints, or upright from a
    detector that gives none (Haar: the model copes with the tilt a kiosk sees)."""
    if face.landmarks is not None:
        return roi_from_detection(face)
    x0, y0, x1, y1 = face.box
    return MeshRoi((x0 + x1) / 2, (y0 + y1) / 2, ROI_SCALE * max(x1 - x0, y1 - y0), 0.0)


def _crop_frame(points: np.ndarray, eye_widths: float) -> Tuple[Tuple[float, float], float, float]:
    """(centre, side, angle in degrees) of the face crop: levelled on the eye line, centred between the
    eyes and the mouth, ``eye_widths`` 3-D eye-corner distances a side."""
    right, left = points[RIGHT_EYE_OUTER], points[LEFT_EYE_OUTER]
    eyes, mouth = (right[:2] + left[:2]) / 2, (points[MOUTH_RIGHT, :2] + points[MOUTH_LEFT, :2]) / 2
    centre = (eyes + mouth) / 2
    angle = math.degrees(math.atan2(left[1] - right[1], left[0] - right[0]))
    side = eye_widths * float(np.linalg.norm(left - right))
    return (float(centre[0]), float(centre[1])), side, angle


def _moved(points: np.ndarray, source: Box, target: Box) -> np.ndarray:
    """Landmarks carried from one pixel grid to the other with the face box (shift and scale); the
    points themselves where both boxes are one (a registered frameset)."""
    if source == target:
        return points
    scale = (target[2] - target[0]) / max(source[2] - source[0], 1e-6)
    moved = points.copy()
    moved[:, 0] = target[0] + (points[:, 0] - source[0]) * scale
    moved[:, 1] = target[1] + (points[:, 1] - source[1]) * scale
    moved[:, 2] = points[:, 2] * scale
    return moved


def _region_mask(points: np.ndarray, shape: Tuple[int, ...]) -> Tuple[np.ndarray, Tuple[int, int]]:
    """The face polygon (silhouette pulled towards the nose) as a mask over its bounding rectangle, and
    that rectangle's top-left corner; both clipped to the image."""
    nose = points[NOSE_TIP, :2]
    polygon = nose + _REGION_SHRINK * (points[list(FACE_OVAL), :2] - nose)
    x0, y0 = max(0, int(np.floor(polygon[:, 0].min()))), max(0, int(np.floor(polygon[:, 1].min())))
    x1, y1 = min(shape[1], int(np.ceil(polygon[:, 0].max())) + 1), min(shape[0], int(np.ceil(polygon[:, 1].max())) + 1)
    mask = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.uint8)
    if mask.size:
        cv2.fillPoly(mask, [np.round(polygon - (x0, y0)).astype(np.int32)], 1)
    return mask.astype(bool), (x0, y0)


def _masked(image: np.ndarray, mask: np.ndarray, origin: Tuple[int, int]) -> np.ndarray:
    x0, y0 = origin
    return image[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]][mask]


def _patches(image: np.ndarray, points: np.ndarray) -> Tuple[np.ndarray, ...]:
    """Squares of ``image`` around ``MATERIAL_POINTS`` (each about a fifth of the eye-corner distance, at
    least 9 px), those wholly inside the image."""
    eye_px = float(np.linalg.norm(points[LEFT_EYE_OUTER, :2] - points[RIGHT_EYE_OUTER, :2]))
    half = max(4, int(round(0.11 * eye_px)))
    h, w = image.shape[:2]
    out = []
    for x, y in np.round(points[list(MATERIAL_POINTS), :2]).astype(int):
        if half <= x < w - half and half <= y < h - half:
            out.append(np.ascontiguousarray(image[y - half:y + half + 1, x - half:x + half + 1]))
    return tuple(out)


def _sample_depth(depth: np.ndarray, points: np.ndarray, depth_scale_m: float, half: int = 2) -> np.ndarray:
    """Depth in metres at each point: the median of the valid pixels of a (2·half+1)² window, NaN with
    fewer than a third of them valid or outside the image."""
    h, w = depth.shape
    centres = np.round(points).astype(int)
    offsets = np.arange(-half, half + 1)
    ys = centres[:, 1, None, None] + offsets[None, :, None]
    xs = centres[:, 0, None, None] + offsets[None, None, :]
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    windows = depth[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)].reshape(len(points), -1).astype(np.float64)
    windows[~inside.reshape(len(points), -1) | (windows == 0)] = np.nan
    valid = np.sum(np.isfinite(windows), axis=1)
    enough = valid * 3 >= windows.shape[1]
    out = np.full(len(points), np.nan)
    if enough.any():  # nanmedian by sorting (NaN sorts last): the middle of each row's valid values
        ordered, count = np.sort(windows[enough], axis=1), valid[enough]
        rows = np.arange(len(count))
        out[enough] = 0.5 * (ordered[rows, (count - 1) // 2] + ordered[rows, count // 2]) * depth_scale_m
    on_image = (centres[:, 0] >= 0) & (centres[:, 0] < w) & (centres[:, 1] >= 0) & (centres[:, 1] < h)
    out[~on_image] = np.nan
    return out


def _metres_per_px(frameset: FrameSet, distance: Optional[float]) -> Optional[float]:
    """Metres a depth-grid pixel spans at the face (needs the depth or IR intrinsics and the distance)."""
    intr = frameset.intrinsics.get("depth") or frameset.intrinsics.get("ir")
    if intr is None or distance is None:
        return None
    return distance / intr.fx


def _blur(crop: np.ndarray) -> float:
    """Sharpness: variance of the Laplacian of the crop, contrast-stretched to 0..255 first (a raw
    16-bit or dim IR crop would otherwise read as blurred)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    grey = cv2.normalize(grey, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
    # The Laplacian of 8-bit pixels is an integer within ±1020: 16 bits hold it exactly.
    _, std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_16S))
    return float(std[0, 0]) ** 2

