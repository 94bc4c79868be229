"""Pixel work of the synthetic camera: face textures, subjects, materials, cached banks, scene layers.

Everything here is whole-array numpy/cv2 on the region a layer covers; nothing loops over pixels.
Random fields come from banks generated once per image size (fixed seeds) and are cut at offsets
drawn from the caller's generator: a cut costs a copy where drawing 300k normals costs milliseconds.
A subject's face is derived from the base photo once and cached, so subjects cost nothing per frame.
"""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import SourceError, require

Box = Tuple[float, float, float, float]
Roi = Tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), inside the image
Colour = Tuple[float, float, float]

# The texture is a square around the detected face, this many face widths on a side: the
# forehead, hair and chin all fit, as a portrait photo or a print of one would show them.
TEXTURE_FACE_WIDTHS = 1.7
HAIR_STYLES = ("photo", "long", "receding", "buzz", "bald")
_MAX_TEXTURE_FACE_PX = 160  # larger faces are scaled down once: the renderer never needs more
_BANK_SEED = 20240605
_LUMA = np.float32([0.299, 0.587, 0.114])
# The head ellipse of head_relief_m in face-box units (centre height, half width, half height):
# what a live or mask render shows of a texture.
_HEAD = (-0.12, 0.6, 0.67)
_EYE_ROW = -0.12  # the eyes' height in face-box units (the corneal glints sit there)
BASE_NECK_WIDTH = 0.56  # neck width / face width of the original synthetic person


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


def _check_fields(owner: Any, limits: dict) -> None:
    """ValueError naming ``owner``'s field when a number (or each number of a tuple) is out of its range."""
    for name, (low, high) in limits.items():
        value = getattr(owner, name)
        values = value if isinstance(value, tuple) else (value,)
        if not values or not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                                 and low <= v <= high for v in values):
            raise ValueError(f"{type(owner).__name__}.{name}: expected numbers in {low}..{high}, got {value!r}")


@dataclass(frozen=True)
class Subject:
    """A synthetic person: their face (derived from the base photo) and the shape of their head.

    The defaults are the base photo's own face on the original head. ``create_subject`` in
    ``synthetic`` draws distinct ones; any field may also be set by hand. Hair much lighter than the
    skin (blond on dark skin) defeats OpenCV's Haar face detector: ``create_subject`` avoids it.
    """

    id: str
    skin_tone: Colour = (208.0, 173.0, 146.0)  # cheek RGB under white light; the base photo's by default
    hair_colour: Colour = (125.0, 98.0, 62.0)  # mean RGB of the hair
    hair_style: str = "photo"  # one of HAIR_STYLES; "photo" keeps the base photo's cut
    glasses: bool = False
    glasses_colour: Colour = (28.0, 26.0, 30.0)
    width_scale: float = 1.0  # face width relative to the 15 cm adult default
    height_scale: float = 1.0  # face height (brow to chin) relative to the base photo's
    eye_spacing: float = 1.0  # distance between the eyes relative to the base photo's
    head_depth_m: float = 0.09  # how far the sides of the head lie behind the face plane
    nose_m: float = 0.03  # nose tip out of the face plane (2-4 cm on adults)
    neck_width: float = BASE_NECK_WIDTH  # relative to the face width; adults' run ~0.7-0.85

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"Subject.id: expected a non-empty string, got {self.id!r}")
        if self.hair_style not in HAIR_STYLES:
            raise ValueError(f"Subject.hair_style: expected one of {HAIR_STYLES}, got {self.hair_style!r}")
        if not isinstance(self.glasses, bool):
            raise ValueError(f"Subject.glasses: expected a bool, got {self.glasses!r}")
        for name in ("skin_tone", "hair_colour", "glasses_colour"):
            if not isinstance(getattr(self, name), tuple) or len(getattr(self, name)) != 3:
                raise ValueError(f"Subject.{name}: expected an (R, G, B) tuple, got {getattr(self, name)!r}")
        _check_fields(self, {"skin_tone": (1.0, 255.0), "hair_colour": (0.0, 255.0), "glasses_colour": (0.0, 255.0),
                             "width_scale": (0.8, 1.2), "height_scale": (0.8, 1.2), "eye_spacing": (0.9, 1.1),
                             "head_depth_m": (0.05, 0.14), "nose_m": (0.01, 0.05), "neck_width": (0.4, 1.0)})


@dataclass(frozen=True)
class PaperMaterial:
    """A printed photo. The defaults are the plain office print the camera shows without an instrument."""

    name: str = "office paper"
    contrast: float = 0.75  # gain on the photo: inks never reach the original's black
    paper_white: float = 40.0  # RGB the paper adds where ink is thin
    halftone_depth: float = 0.12
    halftone_period_px: float = 4.0
    grain: float = 5.0  # σ of the paper's fibre texture, RGB units
    ir_paper: float = 170.0  # IR of the sheet ...
    ir_contrast: float = 40.0  # ... plus this × the photo's luminance (dark inks absorb near-infrared)
    gloss_ir: float = 0.0  # peak IR where the sheet mirrors the camera's illuminator (glossy coating)
    gloss_spread: float = 0.05  # angular width of that highlight, radians (rougher coating: wider)
    bend_m: Tuple[float, float] = (0.0, 0.02)  # range of the sag one face width from the sheet's centre
    tilt_m: Tuple[float, float] = (-0.02, 0.02)  # range of the depth change per face width, left to right
    pitch_m: Tuple[float, float] = (0.0, 0.0)  # range of the same, top to bottom

    def __post_init__(self) -> None:
        _check_fields(self, {"contrast": (0.05, 1.5), "paper_white": (0.0, 120.0), "halftone_depth": (0.0, 0.5),
                             "halftone_period_px": (2.0, 16.0), "grain": (0.0, 30.0), "ir_paper": (0.0, 255.0),
                             "ir_contrast": (0.0, 120.0), "gloss_ir": (0.0, 255.0), "gloss_spread": (0.005, 0.5),
                             "bend_m": (-0.05, 0.05), "tilt_m": (-0.08, 0.08), "pitch_m": (-0.08, 0.08)})


@dataclass(frozen=True)
class ScreenMaterial:
    """A display replaying the face. The defaults are the screen the camera shows without an instrument."""

    name: str = "screen"
    brightness: float = 0.9  # gain on the photo; screens emit their own light, untouched by the room's
    glow: Colour = (0.0, 10.0, 35.0)  # backlight showing through (RGB added)
    scanline: float = 0.72  # gain of every third row (the pixel grid's gaps)
    moire: float = 0.08  # amplitude of the beat between the screen's pixel grid and the camera's
    moire_frequency: Tuple[float, float] = (0.097, 0.031)  # cycles per pixel along x and y
    screen_ir: float = 6.0  # screens emit no near-infrared: only stray light
    bezel_ir: float = 12.0
    bezel_rgb: Colour = (16.0, 16.0, 18.0)
    bezel_width: float = 0.08  # face widths
    glare_ir: float = 0.0  # peak IR where the glass mirrors the camera's illuminator
    glare_spread: float = 0.04  # angular width of that glare, radians (anti-glare coating: wider, weaker)
    tilt_m: Tuple[float, float] = (-0.02, 0.02)
    pitch_m: Tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        _check_fields(self, {"brightness": (0.05, 2.0), "glow": (0.0, 120.0), "scanline": (0.3, 1.0),
                             "moire": (0.0, 0.5), "moire_frequency": (0.0, 0.5), "screen_ir": (0.0, 255.0),
                             "bezel_ir": (0.0, 255.0), "bezel_rgb": (0.0, 255.0), "bezel_width": (0.0, 0.5),
                             "glare_ir": (0.0, 255.0), "glare_spread": (0.005, 0.5), "tilt_m": (-0.08, 0.08),
                             "pitch_m": (-0.08, 0.08)})


@dataclass(frozen=True)
class MaskMaterial:
    """A rigid mask on the head. The defaults are the idealised resin mask the camera shows without an
    instrument: flat IR everywhere (``shading`` 0); real materials are shaded by the camera's illuminator."""

    name: str = "resin"
    albedo: float = 0.9  # gain on the (smoothed) photo printed or painted on the mask
    tint: Colour = (1.0, 1.0, 1.0)  # RGB gains of the material's own colour
    lift: float = 20.0  # RGB the material adds everywhere
    sheen: float = 25.0  # RGB added on the nose by the room light's reflection
    blur: float = 0.012  # σ of the smoothing of the photo, face widths
    ir_level: float = 185.0  # IR of a surface facing the camera at the face's distance
    shading: float = 0.0  # 0: flat IR; 1: Lambertian under the illuminator, falling off with distance
    gloss_ir: float = 0.0  # peak IR where the surface mirrors the illuminator
    gloss_spread: float = 0.1  # radians

    def __post_init__(self) -> None:
        _check_fields(self, {"albedo": (0.05, 1.5), "tint": (0.2, 1.5), "lift": (0.0, 120.0), "sheen": (0.0, 120.0),
                             "blur": (0.0, 0.05), "ir_level": (0.0, 255.0), "shading": (0.0, 1.0),
                             "gloss_ir": (0.0, 255.0), "gloss_spread": (0.005, 0.5)})


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
    scale = min(1.0, _MAX_TEXTURE_FACE_PX / w)
    side = int(round(TEXTURE_FACE_WIDTHS * w))
    x0, y0 = int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2))
    pad = max(0, -x0, -y0, x0 + side - image.shape[1], y0 + side - image.shape[0])
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101) if pad else image
    crop = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side].astype(np.float32)
    if scale < 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    lum = crop @ _LUMA / 255.0
    planes = np.ascontiguousarray(np.dstack([crop, lum]), dtype=np.float32)
    planes.setflags(write=False)
    box = ((x - x0) * scale, (y - y0) * scale, (x + w - x0) * scale, (y + h - y0) * scale)
    return FaceTexture(planes, box, _skin_colour(planes, box))


@functools.lru_cache(maxsize=1)
def load_default_texture() -> FaceTexture:
    """The face of scikit-image's astronaut photo (Eileen Collins, public domain), cached."""
    data = require("skimage.data", "dev")
    return create_face_texture(data.astronaut())


def _face_units(texture: FaceTexture) -> Tuple[np.ndarray, np.ndarray]:
    """Texture pixel centres in face-box units: (x - centre) / width as a row, (y - centre) / height as a column."""
    fb, (h, w) = texture.face_box, texture.planes.shape[:2]
    u = (np.arange(w, dtype=np.float32)[None, :] - (fb[0] + fb[2]) / 2) / (fb[2] - fb[0])
    v = (np.arange(h, dtype=np.float32)[:, None] - (fb[1] + fb[3]) / 2) / (fb[3] - fb[1])
    return u, v


def _soft(mask: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)


def _space_eyes(rgb: np.ndarray, u: np.ndarray, v: np.ndarray, texture: FaceTexture, spacing: float) -> np.ndarray:
    """Move the eyes apart (spacing > 1) or together: a horizontal warp confined to the eye band."""
    if spacing == 1.0:
        return rgb
    fb = texture.face_box
    weight = np.exp(-0.5 * ((v - _EYE_ROW) / 0.12) ** 2) * np.clip(1.0 - np.abs(u) / 0.5, 0.0, 1.0)
    map_x = np.arange(rgb.shape[1], dtype=np.float32)[None, :] - (spacing - 1.0) * u * (fb[2] - fb[0]) * weight
    map_y = np.broadcast_to(np.arange(rgb.shape[0], dtype=np.float32)[:, None], map_x.shape)
    return cv2.remap(rgb, map_x, np.ascontiguousarray(map_y), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _restyle_hair(rgb: np.ndarray, u: np.ndarray, v: np.ndarray, subject: Subject, base_skin: Sequence[float]
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """The photo with its hair cut to ``subject.hair_style`` and dyed, and how much of each pixel is hair."""
    hsv = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
    hue, sat, val = (hsv[..., i].astype(np.float32) for i in range(3))
    r2 = (u / _HEAD[1]) ** 2 + ((v - _HEAD[0]) / _HEAD[2]) ** 2
    skull = r2 < 1.0
    around = ((u / 0.85) ** 2 + ((v - _HEAD[0]) / 0.85) ** 2 < 1.0) & (v < 0.35)  # a hairdo reaches past the skull
    face = (u / 0.46) ** 2 + ((v - 0.08) / 0.52) ** 2 < 1.0  # cheeks, eyes, brows, mouth; a fringe above
    background = (sat < 45) & ~face
    # Hair is yellower (hue) and darker than skin, or dark and saturated where it is in shadow.
    colour = ((hue >= 16.5) & (hue <= 40) & (sat >= 70) & (val < 190)) | ((val < 120) & (sat > 120) & (hue <= 40))
    hair = colour & around & (~face | (v < -0.28))
    hair = cv2.morphologyEx(hair.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    hair = cv2.morphologyEx(hair, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)).astype(bool)
    lum = rgb @ _LUMA
    hair_lum = max(20.0, float(np.median(lum[hair]))) if hair.any() else 90.0
    rng = np.random.default_rng(_BANK_SEED + 2)
    h, w = lum.shape
    strands = cv2.resize(rng.standard_normal((max(2, h // 10), max(2, w // 2)), dtype=np.float32), (w, h),
                         interpolation=cv2.INTER_CUBIC)  # stretched vertically: strands, not blotches
    mottle = cv2.resize(rng.standard_normal((max(2, h // 8), max(2, w // 8)), dtype=np.float32), (w, h),
                        interpolation=cv2.INTER_CUBIC)
    # Skin where hair was: the room light falls off towards the skull's outline, as on a bald head.
    new_skin = np.float32(base_skin) * (0.72 + 0.28 * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)) + 0.02 * mottle)[..., None]
    shade = lum / hair_lum  # each hair pixel's brightness relative to the hair's
    style, amount = subject.hair_style, 1.0
    if style == "long":
        beside = skull & ~face & (np.abs(u) > 0.4) & (v > -0.3) & ~hair
        shade = np.where(beside, 0.85 + 0.3 * strands, shade)
        hair |= beside
    elif style == "receding":
        bare = ((u / 0.42) ** 2 + ((v + 0.3) / 0.4) ** 2 < 1.0) & (v < -0.25)
        soft = _soft(bare, 2.0)[..., None]
        rgb = rgb * (1.0 - soft) + new_skin * soft
        hair &= ~bare
    elif style in ("buzz", "bald"):
        scalp = skull & (~face | (v < -0.27)) & (v < 0.35)
        rgb = np.where((around & ~skull & ~background)[..., None], np.float32(
            np.median(rgb[background], axis=0) if background.any() else (200.0, 195.0, 190.0)), rgb)
        soft = _soft(scalp, 1.5)[..., None]
        rgb = rgb * (1.0 - soft) + new_skin * soft
        hair = scalp if style == "buzz" else np.zeros_like(hair)
        shade = 0.9 + 0.15 * mottle
        amount = 0.45  # stubble: the scalp shows through
    mask = _soft(hair)[..., None] * amount
    dyed = np.float32(subject.hair_colour) * shade[..., None]
    return rgb * (1.0 - mask) + dyed * mask, mask[..., 0]


def _draw_glasses(planes: List[np.ndarray], texture: FaceTexture, subject: Subject) -> None:
    """Frames around both eyes (lenses slightly dark), drawn into every plane; frame colour per plane.

    Seen from the front the temples run backwards, foreshortened to nothing: only rims and bridge show.
    """
    fb = texture.face_box
    bw, bh = fb[2] - fb[0], fb[3] - fb[1]
    cx, cy = (fb[0] + fb[2]) / 2, (fb[1] + fb[3]) / 2 + _EYE_ROW * bh
    s = 4.0  # cv2 draws with 2 fractional bits: sub-pixel frames at texture scale
    frame = np.zeros(planes[0].shape, np.uint8)
    lens = np.zeros_like(frame)
    thickness = max(1, int(round(0.014 * bw)))  # cv2's shift scales coordinates, not thickness
    axes = (int(0.15 * bw * s), int(0.1 * bh * s))
    for side in (-1, 1):
        centre = (int((cx + side * 0.22 * subject.eye_spacing * bw) * s), int(cy * s))
        cv2.ellipse(lens, centre, axes, 0, 0, 360, 255, -1, cv2.LINE_AA, 2)
        cv2.ellipse(frame, centre, axes, 0, 0, 360, 255, thickness, cv2.LINE_AA, 2)
    bridge = [(int((cx + side * (0.22 * subject.eye_spacing - 0.15) * bw) * s), int((cy - 0.02 * bh) * s))
              for side in (-1, 1)]
    cv2.line(frame, bridge[0], bridge[1], 255, thickness, cv2.LINE_AA, 2)
    frame_w, lens_w = frame.astype(np.float32) / 255.0, lens.astype(np.float32) / 255.0
    colours = list(subject.glasses_colour) + [float(np.float32(subject.glasses_colour) @ _LUMA) / 255.0]
    for plane, colour in zip(planes, colours):
        plane *= 1.0 - 0.08 * lens_w
        plane += frame_w * (colour - plane)


def create_subject_texture(texture: FaceTexture, subject: Subject) -> FaceTexture:
    """The base photo turned into ``subject``'s face: hair, skin tone, glasses, proportions.

    Works in the base texture's face-box units, so any photo with a frontal face can be the base.
    The luminance plane keeps the base skin's values: skin reflects near-infrared almost regardless
    of melanin, so a darker subject is darker in colour but not in IR.

    Args:
        texture: the base face (``load_default_texture()`` or ``create_face_texture(photo)``).
        subject: who to make of it.

    Returns:
        A new texture; its face box is the base box stretched by the subject's proportions.
    """
    u, v = _face_units(texture)
    rgb = _space_eyes(np.array(texture.planes[..., :3]), u, v, texture, subject.eye_spacing)
    rgb, hair = _restyle_hair(rgb, u, v, subject, texture.skin)
    lum = (rgb @ _LUMA) / np.float32(255.0)
    skull = (u / _HEAD[1]) ** 2 + ((v - _HEAD[0]) / _HEAD[2]) ** 2 < 1.0
    hsv = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
    below = (np.abs(u) < 0.5) & (v > 0.3) & (hsv[..., 1] > 30) & (hsv[..., 2] > 60)  # neck, not the clothes
    skin = _soft((skull | below) & (hsv[..., 1] > 20), 2.0) * (1.0 - hair)
    gain = np.float32(subject.skin_tone) / np.float32(texture.skin)
    rgb = rgb * (1.0 + skin[..., None] * (gain - 1.0))
    planes = [np.ascontiguousarray(rgb[..., i], dtype=np.float32) for i in range(3)] + [lum.astype(np.float32)]
    if subject.glasses:
        _draw_glasses(planes, texture, subject)
    stacked = np.clip(np.dstack(planes), 0.0, None)
    h, w = stacked.shape[:2]
    size = (max(8, int(round(w * subject.width_scale))), max(8, int(round(h * subject.height_scale))))
    if size != (w, h):
        stacked = cv2.resize(stacked, size, interpolation=cv2.INTER_LINEAR)
    sx, sy = size[0] / w, size[1] / h
    fb = texture.face_box
    box = (fb[0] * sx, fb[1] * sy, fb[2] * sx, fb[3] * sy)
    stacked = np.ascontiguousarray(stacked, dtype=np.float32)
    stacked.setflags(write=False)
    return FaceTexture(stacked, box, _skin_colour(stacked, box))


_SUBJECT_TEXTURES: "OrderedDict[Tuple[int, Subject], Tuple[FaceTexture, FaceTexture]]" = OrderedDict()
_SUBJECT_LOCK = threading.Lock()
_SUBJECT_CACHE_SIZE = 256


def cached_subject_texture(texture: FaceTexture, subject: Optional[Subject]) -> FaceTexture:
    """``create_subject_texture`` made once per (base texture, subject); ``texture`` itself for None."""
    if subject is None:
        return texture
    key = (id(texture), subject)
    with _SUBJECT_LOCK:
        hit = _SUBJECT_TEXTURES.get(key)
        if hit is not None and hit[0] is texture:  # the id of a dead texture may be reused
            _SUBJECT_TEXTURES.move_to_end(key)
            return hit[1]
    made = create_subject_texture(texture, subject)
    with _SUBJECT_LOCK:
        _SUBJECT_TEXTURES[key] = (texture, made)
        while len(_SUBJECT_TEXTURES) > _SUBJECT_CACHE_SIZE:
            _SUBJECT_TEXTURES.popitem(last=False)
    return made


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


def head_relief_m(x: np.ndarray, y: np.ndarray, box: Box, head_depth_m: float = 0.09, nose_m: float = 0.03,
                  eye_spacing: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Depth behind the face plane (metres) of a head whose face box is ``box``, and its mask.

    An ellipsoid (sides ``head_depth_m`` back, steep at the ears as a skull is) with a nose
    ``nose_m`` out of the face plane (~1 cm more before the cheeks) and shallow eye sockets. The
    head's centre sits above the box centre: the box runs brow to chin.
    """
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    r2 = ((x - cx) / (0.6 * bw)) ** 2 + ((y - (cy - 0.12 * bh)) / (0.67 * bh)) ** 2
    inside = r2 < 1.0
    relief = head_depth_m * (1.0 - np.sqrt(np.clip(1.0 - r2, 0.0, 1.0)))
    relief -= nose_m * gaussian(x, y, cx, cy + 0.05 * bh, 0.07 * bw, 0.13 * bh)
    for side in (-0.2, 0.2):
        relief += 0.01 * gaussian(x, y, cx + side * eye_spacing * bw, cy - 0.12 * bh, 0.07 * bw, 0.05 * bh)
    return relief, inside


def eye_glints(x: np.ndarray, y: np.ndarray, box: Box, eye_spacing: float = 1.0) -> np.ndarray:
    """Corneal reflections of the camera's IR projector: two small bright spots, 0..1."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    sigma = max(0.8, 0.02 * bw)
    return sum(gaussian(x, y, cx + side * eye_spacing * bw, cy - 0.12 * bh, sigma, sigma) for side in (-0.21, 0.21))


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
    """

    def __init__(self, rgb: List[np.ndarray], depth_m: np.ndarray, ir: np.ndarray, light: Tuple[float, float, float],
                 ir_gain: float, texture: FaceTexture, box: Box, distance: float,
                 camera: Tuple[float, float, float]) -> None:
        self.rgb, self.depth_m, self.ir, self.light, self.ir_gain = rgb, depth_m, ir, light, ir_gain
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

    def paint(self, roi: Roi, mask: np.ndarray, rgb: Sequence[Any], depth_m: Any, ir: Any) -> None:
        """Overwrite the planes inside ``roi`` where ``mask`` holds (values: ROI-shaped or broadcastable)."""
        ys, xs = slice(roi[1], roi[3]), slice(roi[0], roi[2])
        for target, value in zip((*self.rgb, self.depth_m, self.ir), (*rgb, depth_m, ir)):
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
    canvas.paint(roi, shoulders, cloth, depth, 70.0 * canvas.ir_gain)
    canvas.paint(roi, neck, skin, depth, 110.0 * canvas.ir_gain)


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


_BASE_SHAPE = Subject("base")


def paint_head(canvas: Canvas, live: bool, subject: Optional[Subject] = None,
               material: MaskMaterial = MaskMaterial()) -> None:
    """The face photo on a head relief: skin IR when ``live``, a rigid mask's ``material`` otherwise.

    ``subject`` shapes the head (default: the base photo's proportions, a 3 cm nose).
    """
    roi = canvas.roi(*canvas.extent)
    if roi is None:
        return
    x, y = grid(roi)
    shape = subject or _BASE_SHAPE
    relief, inside = head_relief_m(x, y, canvas.box, shape.head_depth_m, shape.nose_m, shape.eye_spacing)
    bw = canvas.face_width
    if live:
        r, g, b, lum = canvas.texture_planes(roi)
        # Skin reflects the projector's NIR, most where it faces the camera; corneas mirror it.
        facing = 0.75 + 0.25 * np.sqrt(np.clip(1.0 - relief / shape.head_depth_m, 0.0, 1.0))
        ir = (90.0 + 90.0 * lum) * facing * canvas.ir_gain + 120.0 * eye_glints(x, y, canvas.box, shape.eye_spacing)
        rgb = [plane * gain for plane, gain in zip((r, g, b), canvas.light)]
    else:
        # One moulded material: the photo smoothed and lifted, a sheen on the nose.
        placed = warp_texture(canvas.texture, canvas.scale, canvas.origin, roi)
        r, g, b, _ = cv2.split(cv2.GaussianBlur(placed, (0, 0), max(0.5, material.blur * bw)))
        sheen = material.lift + material.sheen * gaussian(x, y, canvas.centre[0], canvas.centre[1], 0.06 * bw,
                                                          0.12 * bw)
        rgb = [((material.albedo * tint) * plane + sheen) * gain
               for plane, tint, gain in zip((r, g, b), material.tint, canvas.light)]
        ir = _mask_ir(canvas, x, y, relief, material)
    canvas.paint(roi, inside, rgb, canvas.distance + relief, ir)


def _sheet_depth(canvas: Canvas, x: np.ndarray, y: np.ndarray, bend_m: float, tilt_m: float,
                 pitch_m: float) -> Tuple[np.ndarray, Any, Any]:
    """Depth of a sheet (sagging by ``bend_m``, tilted by ``tilt_m``/``pitch_m`` per face width) and its slopes."""
    bw = canvas.face_width
    u = (x - canvas.centre[0]) / bw
    depth = canvas.distance + bend_m * u * u + tilt_m * u
    v = (y - canvas.centre[1]) / bw
    if pitch_m:
        depth = depth + pitch_m * v
    per_face = canvas.camera[0] / (bw * canvas.distance)  # face widths per metre
    return depth, (2.0 * bend_m * u + tilt_m) * per_face, pitch_m * per_face


def paint_print(canvas: Canvas, paper: PaperMaterial, bend_m: float, tilt_m: float, pitch_m: float = 0.0) -> None:
    """The photo printed on ``paper``: one sheet, bent by ``bend_m`` and tilted; gloss mirrors the illuminator."""
    roi = canvas.roi(*canvas.extent)
    if roi is None:
        return
    x, y = grid(roi)
    depth, slope_x, slope_y = _sheet_depth(canvas, x, y, bend_m, tilt_m, pitch_m)
    r, g, b, lum = canvas.texture_planes(roi)
    ink = 1.0 - paper.halftone_depth * halftone(x, y, paper.halftone_period_px)
    grain = paper.grain * noise_bank(*canvas.depth_m.shape)[roi[1]:roi[3], roi[0]:roi[2]]
    rgb = [((paper.contrast * plane + paper.paper_white) * ink + grain) * gain
           for plane, gain in zip((r, g, b), canvas.light)]
    ir = (paper.ir_paper + paper.ir_contrast * lum) * canvas.ir_gain
    if paper.gloss_ir > 0.0:
        _, miss = canvas.illumination(x, y, slope_x, slope_y)
        ir = ir + paper.gloss_ir * canvas.ir_gain * np.exp(-miss / (2.0 * paper.gloss_spread ** 2))
    canvas.paint(roi, np.ones(lum.shape, bool), rgb, depth, ir)


def paint_screen(canvas: Canvas, screen: ScreenMaterial, bend_m: float, tilt_m: float, pitch_m: float,
                 phase: float) -> None:
    """The photo on a ``screen`` in a dark bezel; its glass mirrors the illuminator where it faces the camera."""
    bezel, e = screen.bezel_width * canvas.face_width, canvas.extent
    roi = canvas.roi(e[0] - bezel, e[1] - bezel, e[2] + bezel, e[3] + bezel)
    if roi is None:
        return
    x, y = grid(roi)
    depth, slope_x, slope_y = _sheet_depth(canvas, x, y, bend_m, tilt_m, pitch_m)
    r, g, b, _ = canvas.texture_planes(roi)
    # A screen emits its own light (no room tint) and no NIR; its pixel grid gives scanlines and moiré.
    picture = (x >= e[0]) & (x < e[2]) & (y >= e[1]) & (y < e[3])
    rows = np.where(np.arange(roi[1], roi[3])[:, None] % 3 == 0, screen.scanline, 1.0).astype(np.float32)
    pattern = rows * (1.0 + screen.moire * moire(x, y, phase, screen.moire_frequency))
    glare: Any = 0.0
    if screen.glare_ir > 0.0:
        _, miss = canvas.illumination(x, y, slope_x, slope_y)
        glare = screen.glare_ir * canvas.ir_gain * np.exp(-miss / (2.0 * screen.glare_spread ** 2))
    canvas.paint(roi, np.ones(picture.shape, bool), screen.bezel_rgb, depth, screen.bezel_ir + glare)
    rgb = [(screen.brightness * plane + glow) * pattern for plane, glow in zip((r, g, b), screen.glow)]
    canvas.paint(roi, picture, rgb, depth, screen.screen_ir + glare)
