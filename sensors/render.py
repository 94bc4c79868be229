"""Pixel work of the synthetic camera: the base face texture, cached banks, geometry and scene layers.

Everything here is whole-array numpy/cv2 on the region a layer covers; nothing loops over pixels.
Random fields come from banks generated once per image size (fixed seeds) and are cut at offsets
drawn from the caller's generator: a cut costs a copy where drawing 300k normals costs milliseconds.
What stands in front of the camera (subjects, papers, screens, masks) is ``cast``'s: the painters
take it as arguments, and ``cast`` builds its subjects' faces on ``FaceTexture``. Sheets (prints and
screens) are painted by ``sheet``; a turned head's geometry is ``head_pose``'s.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..assets import SYNTHETIC_FACE, bundled
from ..errors import SourceError
from . import head_pose, wear

if TYPE_CHECKING:  # cast builds on FaceTexture: importing it here at run time would be a cycle
    from .cast import MaskMaterial, Subject

Box = Tuple[float, float, float, float]
Roi = Tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), inside the image
Colour = Tuple[float, float, float]

# The texture is a square around the detected face, this many face widths on a side: the
# forehead, hair and chin all fit, as a portrait photo or a print of one would show them.
TEXTURE_FACE_WIDTHS = 1.7
_MAX_TEXTURE_FACE_PX = 160  # larger faces are scaled down once: the renderer never needs more
_BANK_SEED = 20240605
_LUMA = np.float32([0.299, 0.587, 0.114])
BASE_NECK_WIDTH = 0.56  # neck width / face width of the original synthetic person
DEFAULT_FACE_SHAPE = (162, 162, 3)  # assets/astronaut_face.png: 1.7 face widths of the 95 px face
DEFAULT_FACE_BOX: Box = (33.0, 34.0, 128.0, 129.0)
# How far the projector's 850 nm light spreads inside a surface before it leaves it (σ, mm): skin
# scatters it a few millimetres, which blurs the projector's dots; hard surfaces hardly at all.
SKIN_SCATTER_MM = 2.5
HARD_SCATTER_MM = 0.3  # plaster, paper, plastic: the dots stay sharp
CLOTH_SCATTER_MM = 0.8
EYE_ROW = -0.12  # the eyes' height from the face box's centre, box heights (glints, eye holes, glasses)
# The base photo's nose root (between the eyes) and tip, box heights from the face box's centre: the head
# relief's nose rises from the one to the other, as the painted nose does (face_warp.FEATURES).
NOSE_ROOT_ROW, NOSE_TIP_ROW = -0.145, 0.17
_GLASSES_OUT = 0.22  # a pair of glasses' rims centre this far either side, face widths × eye spacing
_DOT_PX = 0.6  # σ of one projector dot as the IR imager resolves it (optics and pixel), pixels
_DOT_SPACING_PX = 5.0  # the dots' mean spacing at 640×480
_DOT_LEVELS_PX = (0.0, 1.0, 2.0, 4.0)  # scatter blurs the dot bank is made at; between them, blended


@dataclass(frozen=True)
class FaceTexture:
    """A face photo ready to render: RGB and luminance planes and where the face is in them.

    Attributes:
        planes: H×W×4 float32 (R, G, B in 0..255, luminance in 0..1), read-only. The luminance
            plane also serves as the face's near-infrared reflectance.
        face_box: (x0, y0, x1, y1) of the face in texture pixels, as a frontal face detector boxes it.
        skin: mean RGB of the face centre (neck colour).
    """

    planes: np.ndarray
    face_box: Box
    skin: Tuple[float, float, float]


@functools.lru_cache(maxsize=1)
def _face_cascade() -> "cv2.CascadeClassifier":
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise SourceError("OpenCV's haarcascade_frontalface_default.xml could not be loaded: reinstall opencv")
    return cascade


def _skin_colour(planes: np.ndarray, box: Box) -> Tuple[float, float, float]:
    cx, cy = int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)
    r = max(1, int((box[2] - box[0]) / 8))
    return tuple(float(v) for v in planes[cy - r:cy + r, cx - r:cx + r, :3].reshape(-1, 3).mean(axis=0))


def create_face_texture(image: np.ndarray) -> FaceTexture:
    """Find the face in an RGB photo and cut the texture square around it.

    Args:
        image: H×W×3 uint8 RGB photo with one frontal face (the largest one is used).

    Returns:
        The texture; its face box is the Haar detector's box, so ground-truth boxes of rendered
        frames are what a face detector reports on them.

    Raises:
        TypeError: ``image`` is not a uint8 array.
        ValueError: wrong shape, too small, or no frontal face found.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = getattr(image, "dtype", type(image).__name__)
        raise TypeError(f"face_image: expected a uint8 numpy array, got {got}")
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 48:
        raise ValueError(f"face_image: expected an H×W×3 RGB image of at least 48×48 pixels, got {image.shape}")
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    boxes = _face_cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(32, 32))
    if len(boxes) == 0:
        raise ValueError("face_image: no frontal face found in it; pass a photo with one clear frontal face")
    x, y, w, h = (float(v) for v in max(boxes, key=lambda b: b[2] * b[3]))
    side = int(round(TEXTURE_FACE_WIDTHS * w))
    x0, y0 = int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2))
    pad = max(0, -x0, -y0, x0 + side - image.shape[1], y0 + side - image.shape[0])
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101) if pad else image
    square = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
    return _texture_from_square(square, (x - x0, y - y0, x + w - x0, y + h - y0))


def _texture_from_square(square: np.ndarray, box: Box) -> FaceTexture:
    """The texture of a uint8 RGB square cut around a face whose box (square pixels) is ``box``."""
    scale = min(1.0, _MAX_TEXTURE_FACE_PX / (box[2] - box[0]))
    crop = square.astype(np.float32)
    if scale < 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    lum = crop @ _LUMA / 255.0
    planes = np.ascontiguousarray(np.dstack([crop, lum]), dtype=np.float32)
    planes.setflags(write=False)
    box = (box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale)
    return FaceTexture(planes, box, _skin_colour(planes, box))


@functools.lru_cache(maxsize=1)
def load_default_texture() -> FaceTexture:
    """The face of the astronaut photo (Eileen Collins, NASA, public domain), shipped in the package, cached.

    ``assets/astronaut_face.png`` is the texture square ``create_face_texture`` cuts from
    scikit-image's ``astronaut()``; ``DEFAULT_FACE_BOX`` is where OpenCV's frontal Haar cascade boxes the
    face on the whole photo. Shipping the square (not asking for scikit-image) lets every install,
    a kiosk's included, run the synthetic camera.

    Raises:
        SourceError: the shipped image is missing or not the expected square.
    """
    path = bundled(SYNTHETIC_FACE, "reinstall mmdg-edge (the synthetic camera's face texture ships with it)")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.shape != DEFAULT_FACE_SHAPE:
        got = "an unreadable file" if image is None else f"an image of shape {image.shape}"
        raise SourceError(f"{path}: expected a {DEFAULT_FACE_SHAPE} RGB PNG (the synthetic camera's face), got {got}; "
                          "reinstall mmdg-edge")
    return _texture_from_square(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), DEFAULT_FACE_BOX)


@functools.lru_cache(maxsize=4)
def noise_bank(height: int, width: int) -> np.ndarray:
    """Standard-normal float32 field of 2H×2W; cut H×W windows of it at random offsets."""
    bank = np.random.default_rng(_BANK_SEED).standard_normal((2 * height, 2 * width), dtype=np.float32)
    bank.setflags(write=False)
    return bank


@functools.lru_cache(maxsize=4)
def wall_bank(height: int, width: int) -> np.ndarray:
    """Plaster-like float32 reflectance field around 1.0 (blotches, smaller marks, grain), 2H×2W."""
    rng = np.random.default_rng(_BANK_SEED + 1)
    size = (2 * width, 2 * height)
    field = np.ones((2 * height, 2 * width), np.float32)
    for cell, amplitude in ((48, 0.045), (12, 0.03), (3, 0.015)):
        coarse = rng.standard_normal((2 * height // cell + 2, 2 * width // cell + 2), dtype=np.float32)
        field += amplitude * cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC)
    field.setflags(write=False)
    return field


@functools.lru_cache(maxsize=2)
def dot_bank(height: int, width: int) -> np.ndarray:
    """The projector's pseudo-random dot pattern, 2H×2W, at each blur of ``_DOT_LEVELS_PX`` (levels × 2H × 2W).

    Every level has mean 1 (the projector's light spread out), so a blur lowers the dots' contrast
    and not the surface's brightness.
    """
    rng = np.random.default_rng(_BANK_SEED + 3)
    size = (2 * height, 2 * width)
    count = int(size[0] * size[1] / _DOT_SPACING_PX ** 2)
    impulses = np.zeros(size, np.float32)
    np.add.at(impulses, (rng.integers(0, size[0], count), rng.integers(0, size[1], count)), 1.0)
    levels = []
    for extra in _DOT_LEVELS_PX:
        sigma = float(np.hypot(_DOT_PX, extra))
        level = cv2.GaussianBlur(impulses, (0, 0), sigma)
        levels.append(level / level.mean())
    bank = np.stack(levels)
    bank.setflags(write=False)
    return bank


def project_dots(ir: np.ndarray, scatter_mm: np.ndarray, depth_m: np.ndarray, fx: float, contrast: float,
                 rng: np.random.Generator) -> np.ndarray:
    """``ir`` lit by the projector's dots (a ``contrast`` share of its light), blurred per pixel by the
    surface's scatter (``scatter_mm`` at ``depth_m``: σ px = scatter × fx / depth)."""
    h, w = ir.shape
    bank = dot_bank(h, w)
    y, x = int(rng.integers(0, bank.shape[1] - h + 1)), int(rng.integers(0, bank.shape[2] - w + 1))
    sigma = scatter_mm * np.float32(fx * 1e-3) / np.maximum(depth_m, np.float32(0.1))
    dots = np.zeros_like(ir)
    levels = np.float32(_DOT_LEVELS_PX)
    for k, level in enumerate(levels):  # piecewise-linear weights of each blur level at each pixel's σ
        below = levels[k - 1] if k else None
        above = levels[k + 1] if k + 1 < len(levels) else None
        weight = np.ones_like(ir)
        if below is not None:
            weight = np.minimum(weight, (sigma - below) / (level - below))
        if above is not None:
            weight = np.minimum(weight, (above - sigma) / (above - level))
        np.clip(weight, 0.0, 1.0, out=weight)
        dots += weight * bank[k, y:y + h, x:x + w]
    return ir * ((1.0 - contrast) + np.float32(contrast) * dots)


def cut(bank: np.ndarray, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An H×W window of a bank at an offset drawn from ``rng`` (a view: do not write to it)."""
    y, x = int(rng.integers(0, bank.shape[0] - height + 1)), int(rng.integers(0, bank.shape[1] - width + 1))
    return bank[y:y + height, x:x + width]


def clip_roi(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Optional[Roi]:
    """Integer pixel rectangle covering (x0, y0)-(x1, y1) inside the image, or None when outside."""
    roi = (max(0, int(np.floor(x0))), max(0, int(np.floor(y0))), min(width, int(np.ceil(x1))),
           min(height, int(np.ceil(y1))))
    return roi if roi[2] > roi[0] and roi[3] > roi[1] else None


def grid(roi: Roi) -> Tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a ROI as a 1×W row and an H×1 column (broadcast, not meshed)."""
    x = np.arange(roi[0], roi[2], dtype=np.float32)[None, :]
    y = np.arange(roi[1], roi[3], dtype=np.float32)[:, None]
    return x, y


def warp_texture(texture: FaceTexture, scale: float, origin: Tuple[float, float], roi: Roi) -> np.ndarray:
    """The texture scaled by ``scale`` with its top-left at ``origin`` (image px), cut to ``roi``."""
    affine = np.float32([[scale, 0, origin[0] - roi[0]], [0, scale, origin[1] - roi[1]]])
    return cv2.warpAffine(texture.planes, affine, (roi[2] - roi[0], roi[3] - roi[1]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def gaussian(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    """exp(-½((x-cx)²/sx² + (y-cy)²/sy²)) on broadcast coordinates."""
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def head_relief_m(x: np.ndarray, y: np.ndarray, box: Box, subject: Subject) -> Tuple[np.ndarray, np.ndarray]:
    """Depth behind the face plane (metres) of ``subject``'s head whose face box is ``box``, and its mask.

    An ellipsoid (sides ``head_depth_m`` back, steep at the ears as a skull is) with a nose
    ``nose_m`` out of the face plane at its tip (~1 cm more before the cheeks) and shallow eye sockets.
    The head's centre sits above the box centre: the box runs brow to chin. The nose follows the
    texture's: it rises from its root (a third of its height there) to the painted tip and falls
    within a centimetre below it to the lip; ``nose_width`` widens it, ``nose_length`` moves the tip
    away from the root (tests/sensors/test_synthetic_faces.py).
    """
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    r2 = ((x - cx) / (0.6 * bw)) ** 2 + ((y - (cy - 0.12 * bh)) / (0.67 * bh)) ** 2
    inside = r2 < 1.0
    relief = subject.head_depth_m * (1.0 - np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)))
    length = (NOSE_TIP_ROW - NOSE_ROOT_ROW) * subject.nose_length * bh
    tip_y = cy + NOSE_ROOT_ROW * bh + length
    # Half-Gaussians: 0.65 of the length above the tip (the root stands at exp(-0.5/0.65²) ≈ 0.31 of the
    # tip), 0.045 box heights below it (the columella down to the lip).
    spread_y = np.where(y < tip_y, 0.65 * length, 0.045 * bh)
    relief -= subject.nose_m * np.exp(-0.5 * (((x - cx) / (0.07 * subject.nose_width * bw)) ** 2
                                              + ((y - tip_y) / spread_y) ** 2))
    for side in (-0.2, 0.2):
        relief += 0.01 * gaussian(x, y, cx + side * subject.eye_spacing * bw, cy + EYE_ROW * bh, 0.07 * bw, 0.05 * bh)
    return relief, inside


def eye_glints(x: np.ndarray, y: np.ndarray, box: Box, eye_spacing: float = 1.0) -> np.ndarray:
    """Corneal reflections of the camera's IR projector: two small bright spots, 0..1."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    sigma = max(0.8, 0.02 * bw)
    return sum(gaussian(x, y, cx + side * eye_spacing * bw, cy + EYE_ROW * bh, sigma, sigma) for side in (-0.21, 0.21))


def glasses_centres(box: Box, eye_spacing: float = 1.0) -> np.ndarray:
    """Where a pair of glasses' rims centre on a face ``box`` (2×2 pixels, the image's left first)."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2 + EYE_ROW * bh
    return np.float64([[cx - _GLASSES_OUT * eye_spacing * bw, cy], [cx + _GLASSES_OUT * eye_spacing * bw, cy]])


def face_points(box: Box, subject: Subject) -> np.ndarray:
    """Where the renderer puts a face's landmarks when it faces the camera, 3×2 image pixels: the eyes
    (the glints' centres; the image's left one first) and the nose tip (the nearest point of
    ``subject``'s head relief: the nose's tip, a little above it where the skull's curve lifts it)."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rows = cy + np.linspace(-0.05, 0.4, 901) * bh
    relief, _ = head_relief_m(np.full_like(rows, cx), rows, box, subject)
    eye_x = 0.21 * subject.eye_spacing * bw
    return np.float64([[cx - eye_x, cy + EYE_ROW * bh], [cx + eye_x, cy + EYE_ROW * bh], [cx, rows[np.argmin(relief)]]])


def torso_mask(x: np.ndarray, y: np.ndarray, box: Box, neck_width: float = BASE_NECK_WIDTH) -> Tuple[np.ndarray, np.ndarray]:
    """(neck, shoulders) masks under a face box: a neck column (``neck_width`` face widths) widening into shoulders."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx = (box[0] + box[2]) / 2
    below = y - (box[3] + 0.25 * bh)
    half_width = 0.45 * bw + 0.9 * bw * np.clip(below / (0.35 * bh), 0.0, 1.0)
    shoulders = (below >= 0) & (np.abs(x - cx) < half_width)
    neck = (y >= box[3] - 0.15 * bh) & (below < 0) & (np.abs(x - cx) < neck_width / 2 * bw)
    return neck, shoulders


def halftone(x: np.ndarray, y: np.ndarray, period: float = 4.0) -> np.ndarray:
    """A printer's 45° dot screen, 0..1 (1 = ink dot centre)."""
    k = np.float32(np.pi / period)
    return 0.5 + 0.5 * np.cos(k * (x + y)) * np.cos(k * (x - y))


def moire(x: np.ndarray, y: np.ndarray, phase: float, frequency: Tuple[float, float] = (0.097, 0.031)) -> np.ndarray:
    """Beating of the screen's pixel grid with the camera's: slanted bands ~10 px apart, -1..1."""
    return np.cos(np.float32(2 * np.pi) * (frequency[0] * x + frequency[1] * y) + np.float32(phase))


def stereo_shadow(foreground: np.ndarray, width_px: int) -> np.ndarray:
    """Pixels up to ``width_px`` left of a foreground object: seen by one imager only, so no depth."""
    shadow = np.zeros_like(foreground)
    if width_px > 0:
        shadow[:, :-width_px] = foreground[:, width_px:]
        for step in (width_px // 2, width_px // 4):
            if step > 0:
                shadow[:, :-step] |= foreground[:, step:]
    return shadow & ~foreground


class Canvas:
    """The images of one frame as float32 planes (R, G, B, depth in metres, IR); layers paint into them.

    Colour is kept as three separate planes: per-channel arithmetic on an interleaved H×W×3 array
    broadcasts badly in numpy and would cost more than the rest of the frame.

    Args:
        rgb: three H×W float32 planes holding the background.
        depth_m, ir: H×W float32 background.
        light: RGB gains of the room light (applied to reflective surfaces, not to screens).
        ir_gain: IR gain at the face's distance.
        texture: the face photo.
        box: the face box in the image; the texture is scaled and placed to match it.
        distance: the face's distance in metres.
        camera: (fx, ppx, ppy) of the pinhole camera, which the IR illuminator sits beside.
        scatter_mm: H×W float32, how far the projector's light spreads in each pixel's surface
            (``project_dots`` blurs the dots by it).
    """

    def __init__(self, rgb: List[np.ndarray], depth_m: np.ndarray, ir: np.ndarray, light: Tuple[float, float, float],
                 ir_gain: float, texture: FaceTexture, box: Box, distance: float,
                 camera: Tuple[float, float, float], scatter_mm: np.ndarray) -> None:
        self.rgb, self.depth_m, self.ir, self.light, self.ir_gain = rgb, depth_m, ir, light, ir_gain
        self.scatter_mm = scatter_mm
        self.texture, self.box, self.distance, self.camera = texture, box, distance, camera
        fb = texture.face_box
        self.scale = (box[2] - box[0]) / (fb[2] - fb[0])
        self.face_width = box[2] - box[0]
        self.centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        tex_h, tex_w = texture.planes.shape[:2]
        self.origin = (self.centre[0] - self.scale * (fb[0] + fb[2]) / 2,
                       self.centre[1] - self.scale * (fb[1] + fb[3]) / 2)
        self.extent = (self.origin[0], self.origin[1], self.origin[0] + self.scale * tex_w,
                       self.origin[1] + self.scale * tex_h)

    def roi(self, x0: float, y0: float, x1: float, y1: float) -> Optional[Roi]:
        """``clip_roi`` for this canvas's size."""
        return clip_roi(x0, y0, x1, y1, self.depth_m.shape[1], self.depth_m.shape[0])

    def texture_planes(self, roi: Roi) -> List[np.ndarray]:
        """The face photo placed on the face box, cut to ``roi``: R, G, B, luminance planes."""
        return cv2.split(warp_texture(self.texture, self.scale, self.origin, roi))

    def illumination(self, x: np.ndarray, y: np.ndarray, slope_x: Any, slope_y: Any) -> Tuple[np.ndarray, np.ndarray]:
        """How the camera's own IR illuminator lights a surface with slopes dz/dX, dz/dY (metres per metre).

        The projector sits 2-5 cm beside the lens, less than a tenth of the face's distance, so it
        lights along the viewing ray. Returns the cosine between the surface normal and the ray back
        to the camera (Lambertian shading), and the squared angle (rad²) by which the surface misses
        mirroring the illuminator into the lens (0 where a glossy surface shows the illuminator).
        """
        fx, ppx, ppy = self.camera
        ray_x, ray_y = (x - ppx) / fx, (y - ppy) / fx
        cosine = (1.0 - slope_x * ray_x - slope_y * ray_y) / np.sqrt(
            (1.0 + slope_x * slope_x + slope_y * slope_y) * (1.0 + ray_x * ray_x + ray_y * ray_y))
        miss_x, miss_y = ray_x + slope_x, ray_y + slope_y
        return np.clip(cosine, 0.0, 1.0), miss_x * miss_x + miss_y * miss_y

    def paint(self, roi: Roi, mask: np.ndarray, rgb: Sequence[Any], depth_m: Any, ir: Any,
              scatter_mm: Any = HARD_SCATTER_MM) -> None:
        """Overwrite the planes inside ``roi`` where ``mask`` holds (values: ROI-shaped or broadcastable)."""
        ys, xs = slice(roi[1], roi[3]), slice(roi[0], roi[2])
        for target, value in zip((*self.rgb, self.depth_m, self.ir, self.scatter_mm), (*rgb, depth_m, ir, scatter_mm)):
            view = target[ys, xs]
            np.copyto(view, np.broadcast_to(np.asarray(value, np.float32), view.shape), where=mask)


def paint_torso(canvas: Canvas, behind_m: float, clothing: Tuple[float, float, float],
                neck_width: float = BASE_NECK_WIDTH) -> None:
    """Neck and shoulders below the face, ``behind_m`` behind it (the person, or the attacker)."""
    b, bw = canvas.box, canvas.face_width
    roi = canvas.roi(b[0] - 1.2 * bw, b[3] - 0.2 * bw, b[2] + 1.2 * bw, canvas.depth_m.shape[0])
    if roi is None:
        return
    x, y = grid(roi)
    neck, shoulders = torso_mask(x, y, b, neck_width)
    depth = canvas.distance + behind_m + 0.04 * ((x - canvas.centre[0]) / (1.35 * bw)) ** 2
    skin = [0.9 * s * g for s, g in zip(canvas.texture.skin, canvas.light)]
    cloth = [c * g for c, g in zip(clothing, canvas.light)]
    canvas.paint(roi, shoulders, cloth, depth, 70.0 * canvas.ir_gain, CLOTH_SCATTER_MM)
    canvas.paint(roi, neck, skin, depth, 110.0 * canvas.ir_gain, SKIN_SCATTER_MM)


def _mask_ir(canvas: Canvas, x: np.ndarray, y: np.ndarray, relief: np.ndarray, material: MaskMaterial) -> Any:
    """A mask's IR: flat, or shaded and glossy under the illuminator along the head relief's normals."""
    level = material.ir_level * canvas.ir_gain
    if material.shading == 0.0 and material.gloss_ir == 0.0:
        return level
    per_px = canvas.camera[0] / canvas.distance  # pixels per metre across the face
    slope_y, slope_x = np.gradient(relief)
    cosine, miss = canvas.illumination(x, y, slope_x * per_px, slope_y * per_px)
    falloff = (canvas.distance / (canvas.distance + relief)) ** 2  # inverse square: the nose is nearer
    ir = level * ((1.0 - material.shading) + material.shading * cosine * falloff)
    if material.gloss_ir > 0.0:
        ir = ir + material.gloss_ir * canvas.ir_gain * np.exp(-miss / (2.0 * material.gloss_spread ** 2))
    return ir


def _head_axis(canvas: Canvas, subject: Subject) -> Tuple[float, float, float]:
    """The head's centre (image x, y and depth behind the face plane, pixels): what a turn pivots on."""
    per_m = canvas.camera[0] / canvas.distance  # pixels per metre at the head
    return (canvas.centre[0], canvas.centre[1] - 0.12 * (canvas.box[3] - canvas.box[1]), subject.head_depth_m * per_m)


def head_landmarks(canvas: Canvas, subject: Subject, yaw_deg: float = 0.0, pitch_deg: float = 0.0) -> np.ndarray:
    """``face_points`` of the head ``paint_head`` paints, turned as it turns them (3×2 image pixels)."""
    points = face_points(canvas.box, subject)
    if not (yaw_deg or pitch_deg):
        return points
    relief, _ = head_relief_m(points[:, 0], points[:, 1], canvas.box, subject)
    surface = np.column_stack([points, relief * canvas.camera[0] / canvas.distance])
    return head_pose.turn_points(surface, _head_axis(canvas, subject), yaw_deg, pitch_deg)[:, :2]


def _head_surface(canvas: Canvas, x: np.ndarray, y: np.ndarray, relief: np.ndarray, layers: Sequence[np.ndarray],
                  live: bool, subject: Subject, material: MaskMaterial) -> Tuple[List[Any], Any, Any, Any]:
    """RGB, depth, IR and scatter of a head whose surface lies ``relief`` behind the face plane, from its ``layers``.

    Live layers: R, G, B, luminance, glints and, for a subject with glasses, their frames (which stand
    before the face in hard plastic); skin reflects the projector's NIR, most where it faces the
    camera, and corneas mirror it. Mask layers: R, G, B (the photo smoothed), the sheen, the
    seam (0..1, dark where the mask's edge is), and what is worn over it (``wear.wear_layers``).
    """
    if live:
        r, g, b, lum, glints, *frame = layers
        facing = 0.75 + 0.25 * np.sqrt(np.clip(1.0 - relief / subject.head_depth_m, 0.0, 1.0))
        ir = (90.0 + 90.0 * lum) * facing * canvas.ir_gain + 120.0 * glints
        rgb = [plane * gain for plane, gain in zip((r, g, b), canvas.light)]
        if not frame:
            return rgb, canvas.distance + relief, ir, SKIN_SCATTER_MM
        rim = np.asarray(frame[0]) > 0.5  # the glasses painted on the photo, standing before the face
        return (rgb, canvas.distance + relief - wear.GLASSES_STANDOFF_M * rim, ir,
                np.where(rim, HARD_SCATTER_MM, SKIN_SCATTER_MM))
    r, g, b, sheen, seam, *worn = layers
    shade = 1.0 - 0.5 * material.edge * seam
    rgb = [((material.albedo * tint) * plane + sheen) * gain * shade
           for plane, tint, gain in zip((r, g, b), material.tint, canvas.light)]
    ir = _mask_ir(canvas, x, y, relief, material) * (1.0 - 0.3 * material.edge * seam)
    if not (material.glasses or material.wig):
        return rgb, canvas.distance + relief, ir, material.subsurface_mm
    rgb, depth_m, ir = wear.dress(canvas, rgb, canvas.distance + relief, ir, worn, material)
    frame, _, wig, _ = (np.asarray(layer) for layer in worn)
    scatter = np.where(frame > 0.5, HARD_SCATTER_MM, np.where(wig > 0.5, CLOTH_SCATTER_MM, material.subsurface_mm))
    return rgb, depth_m, ir, scatter


def mask_region(x: np.ndarray, y: np.ndarray, box: Box, material: MaskMaterial, eye_spacing: float = 1.0) -> np.ndarray:
    """Where a mask of ``material`` covers the head (bool): all of it, the face, its upper half or a band
    over the eyes (``material.coverage``), less the eye holes (real eyes show through them)."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    u, v = (x - (box[0] + box[2]) / 2) / bw, (y - (box[1] + box[3]) / 2) / bh
    face = (u / 0.47) ** 2 + ((v - 0.05) / 0.6) ** 2 < 1.0
    region = {"head": np.ones(np.broadcast(u, v).shape, bool), "face": face, "upper": face & (v < 0.2),
              "eyes": face & (v > -0.32) & (v < 0.02)}[material.coverage]
    if material.eye_holes:
        for side in (-0.21, 0.21):
            region = region & (((u - side * eye_spacing) / 0.08) ** 2 + ((v - EYE_ROW) * bh / bw / 0.045) ** 2 >= 1.0)
    return region


def _mask_layers(canvas: Canvas, roi: Roi, x: np.ndarray, y: np.ndarray, material: MaskMaterial,
                 region: np.ndarray, glasses: np.ndarray) -> List[Any]:
    """One moulded or woven material: the photo smoothed and lifted, a sheen on the nose, a seam at its
    edge; then the glasses and wig worn over it."""
    bw = canvas.face_width
    placed = warp_texture(canvas.texture, canvas.scale, canvas.origin, roi)
    r, g, b, _ = cv2.split(cv2.GaussianBlur(placed, (0, 0), max(0.5, material.blur * bw)))
    if material.weave > 0.0:  # a woven cloth: threads about 1 mm apart
        period = max(2.0, 1e-3 * canvas.camera[0] / canvas.distance)
        threads = 1.0 + material.weave * np.cos(np.float32(2 * np.pi / period) * x) * np.cos(
            np.float32(2 * np.pi / period) * y)
        r, g, b = (plane * threads for plane in (r, g, b))
    sheen = material.lift + material.sheen * gaussian(x, y, canvas.centre[0], canvas.centre[1], 0.06 * bw, 0.12 * bw)
    seam: Any = 0.0
    if material.edge > 0.0 and material.coverage != "head":
        inner = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, int(0.01 * bw)))
        seam = (region & ~inner.astype(bool)).astype(np.float32)
    return [r, g, b, sheen, seam, *wear.wear_layers(canvas, roi, x, y, material, glasses)]


def _paint_surface(canvas: Canvas, roi: Roi, x: np.ndarray, y: np.ndarray, relief: np.ndarray, where: np.ndarray,
                   layers: List[Any], live: bool, subject: Subject, material: MaskMaterial, yaw_deg: float,
                   pitch_deg: float, worn: bool = False) -> None:
    """Paint a head surface facing the camera where ``where`` holds, then the same turned by yaw/pitch.

    The head itself is painted facing first (the rim a turned face leaves shows it); a ``worn``
    surface (a mask over the head) is painted turned only.
    """
    if not (yaw_deg or pitch_deg) or not worn:
        canvas.paint(roi, where, *_head_surface(canvas, x, y, relief, layers, live, subject, material))
    if yaw_deg or pitch_deg:
        per_m = canvas.camera[0] / canvas.distance  # pixels per metre at the head
        centre_x, centre_y, centre_z = _head_axis(canvas, subject)
        axis = (centre_x - roi[0], centre_y - roi[1], centre_z)
        map_x, map_y, turned, covered = head_pose.turn_height_field(relief * per_m, where, axis, yaw_deg, pitch_deg)
        size = (roi[2] - roi[0], roi[3] - roi[1])
        layers = [cv2.remap(np.broadcast_to(np.asarray(layer, np.float32), size[::-1]), map_x, map_y,
                            cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for layer in layers]
        turned_m = np.where(covered, turned / per_m, relief)  # the skull beyond: smooth slopes for the IR shading
        canvas.paint(roi, covered, *_head_surface(canvas, x, y, turned_m, layers, live, subject, material))


def paint_head(canvas: Canvas, live: bool, subject: Subject, material: MaskMaterial, yaw_deg: float = 0.0,
               pitch_deg: float = 0.0) -> None:
    """The face photo on a head relief: skin IR when ``live``, a mask's ``material`` otherwise.

    ``subject`` shapes the head: its depth, nose and eye spacing. A turned head (``yaw_deg``,
    ``pitch_deg``: ``head_pose.turn_height_field``) is painted over the head facing the camera: a
    head's outline hardly changes as it turns (a sphere's not at all), its depth there is the
    skull's, and the rim the turned face leaves shows the side of the head. A mask that covers less
    than the head (``material.coverage``) or has eye holes is worn: the wearer's live head first,
    then the mask ``material.thickness_m`` before it where it covers.
    """
    roi = canvas.roi(*canvas.extent)
    if roi is None:
        return
    x, y = grid(roi)
    relief, inside = head_relief_m(x, y, canvas.box, subject)
    worn = not live and (material.coverage != "head" or material.eye_holes)
    if live or worn:
        skin = [*canvas.texture_planes(roi), eye_glints(x, y, canvas.box, subject.eye_spacing)]
        if live and subject.glasses:
            skin.append(wear.glasses_planes(roi, canvas.box, glasses_centres(canvas.box, subject.eye_spacing))[0])
        _paint_surface(canvas, roi, x, y, relief, inside, skin, True, subject, material, yaw_deg, pitch_deg)
    if live:
        return
    region = mask_region(x, y, canvas.box, material, subject.eye_spacing) & inside
    layers = _mask_layers(canvas, roi, x, y, material, region, glasses_centres(canvas.box, subject.eye_spacing))
    if material.glasses or material.wig:  # worn beyond a face mask: the rims round its eye holes, the hair
        region = region | (wear.covering(layers[-4:]) & inside)
    _paint_surface(canvas, roi, x, y, relief - (material.thickness_m if worn else 0.0), region, layers, False,
                   subject, material, yaw_deg, pitch_deg, worn=worn)
