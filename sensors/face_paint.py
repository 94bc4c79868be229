"""What the synthetic camera paints on a face photo: hair styles, glasses, brows, beards, skin marks, lips.

Painters work in the texture's face-box units (``face_warp``) after the warp, at the warped features
(``face_warp.features``, passed in as ``places``). Random fields come from the generator the caller
passes (``cast`` seeds one per painter by the subject's ``marks_seed``), so a subject's marks are the
same on every run. The texture's luminance plane is its near-infrared reflectance: hair (brows,
beards) is dark there as in colour (``grow_hair``); melanin and
blood (freckles, moles, blotches, lips) absorb visible light far more than near-infrared
(``_PIGMENT_NIR``), and the camera's illuminator, beside the lens, lights into the creases that
room light leaves shaded (``_CREASE_NIR``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .face_warp import FEATURES, HEAD
from .render import _BANK_SEED, _LUMA, Box, FaceTexture, glasses_centres
from .wear import glasses_planes

if TYPE_CHECKING:  # cast's Subject is painted by this module
    from .cast import Subject

__all__ = ["soft", "restyle_hair", "draw_glasses", "prepare_brows", "beard_hairs", "grow_hair", "lip_mask",
           "recolour_lips", "bare_skin", "paint_skin_marks", "paint_wrinkles"]

Places = Dict[str, Tuple[float, float]]  # face_warp.features: the warped features, face-box units
Hairs = Tuple[np.ndarray, np.ndarray]  # how much of each pixel is hair (H×W) and its colour (H×W×3)
_PIGMENT_NIR = 0.15  # share of a pigment's visible darkening that near-infrared sees
_CREASE_NIR = 0.3  # share of a crease's shading under room light left under the camera's illuminator
_SIDES = (-1.0, 1.0)
_SUPERSAMPLE = 4.0  # cv2 draws with 2 fractional bits: sub-pixel lines at texture scale
_BROW_THICKNESS = 0.028  # the base photo's brows, box heights (2-3 texture pixels)


def soft(mask: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """``mask`` as float32 with edges blurred by ``sigma`` pixels."""
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)


def _smooth_noise(rng: np.random.Generator, shape: Tuple[int, int], cells: Tuple[int, int]) -> np.ndarray:
    """A standard-normal field of ``shape`` varying over about ``cells`` (rows, columns) pixels, std 1."""
    h, w = shape
    coarse = rng.standard_normal((max(2, h // cells[0]), max(2, w // cells[1])), dtype=np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return (field - field.mean()) / max(float(field.std()), 1e-6)


def _darken(planes: List[np.ndarray], amount: np.ndarray, weights: Sequence[float], nir_share: float) -> None:
    """Darken R, G, B by ``amount`` × ``weights`` and the luminance (near-infrared) by ``nir_share`` of that."""
    for plane, weight in zip(planes[:3], weights):
        plane *= 1.0 - amount * np.float32(weight)
    planes[3] *= 1.0 - amount * np.float32(nir_share * float(np.float32(weights) @ _LUMA))


def restyle_hair(rgb: np.ndarray, u: np.ndarray, v: np.ndarray, subject: Subject, base_skin: Sequence[float]
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """The photo with its hair cut to ``subject.hair_style`` and dyed, and how much of each pixel is hair."""
    hsv = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
    hue, sat, val = (hsv[..., i].astype(np.float32) for i in range(3))
    r2 = (u / HEAD[1]) ** 2 + ((v - HEAD[0]) / HEAD[2]) ** 2
    skull = r2 < 1.0
    around = ((u / 0.85) ** 2 + ((v - HEAD[0]) / 0.85) ** 2 < 1.0) & (v < 0.35)  # a hairdo reaches past the skull
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
        blend = soft(bare, 2.0)[..., None]
        rgb = rgb * (1.0 - blend) + new_skin * blend
        hair &= ~bare
    elif style in ("buzz", "bald"):
        scalp = skull & (~face | (v < -0.27)) & (v < 0.35)
        rgb = np.where((around & ~skull & ~background)[..., None], np.float32(
            np.median(rgb[background], axis=0) if background.any() else (200.0, 195.0, 190.0)), rgb)
        blend = soft(scalp, 1.5)[..., None]
        rgb = rgb * (1.0 - blend) + new_skin * blend
        hair = scalp if style == "buzz" else np.zeros_like(hair)
        shade = 0.9 + 0.15 * mottle
        amount = 0.45  # stubble: the scalp shows through
    mask = soft(hair)[..., None] * amount
    dyed = np.float32(subject.hair_colour) * shade[..., None]
    return rgb * (1.0 - mask) + dyed * mask, mask[..., 0]


def draw_glasses(planes: List[np.ndarray], texture: FaceTexture, subject: Subject) -> None:
    """Frames around both eyes (lenses slightly dark), drawn into every plane; frame colour per plane.
    (``render`` stands the same frames before the face: ``wear.glasses_planes``.)"""
    height, width = planes[0].shape
    frame_w, lens_w = glasses_planes((0, 0, width, height), texture.face_box,
                                     glasses_centres(texture.face_box, subject.eye_spacing))
    colours = list(subject.glasses_colour) + [float(np.float32(subject.glasses_colour) @ _LUMA) / 255.0]
    for plane, colour in zip(planes, colours):
        plane *= 1.0 - 0.08 * lens_w
        plane += frame_w * (colour - plane)


def _brow_rows(lum: np.ndarray, u: np.ndarray, v: np.ndarray, hair: np.ndarray) -> Tuple[float, float]:
    """The photo's brow height (face-box units) left and right: per column of the brow's middle, the
    darkest row of the band between eye and forehead that is not hair; their median.

    Measured, not assumed: the base photo's head is rolled (its left brow sits 0.03 box heights higher).
    """
    band = ((v > -0.31) & (v < -0.19))[:, 0]
    rows = np.where(hair[band] > 0.5, np.inf, cv2.GaussianBlur(lum, (0, 0), 0.7)[band])
    heights = []
    for side in _SIDES:
        columns = ((side * u > 0.14) & (side * u < 0.32))[0] & np.isfinite(rows).any(axis=0)
        darkest = v[band, 0][np.argmin(rows[:, columns], axis=0)]
        heights.append(float(np.median(darkest)) if darkest.size else FEATURES["brow"][1])
    return heights[0], heights[1]


def prepare_brows(rgb: np.ndarray, u: np.ndarray, v: np.ndarray, box: Box, subject: Subject, hair: np.ndarray,
                  rng: np.random.Generator) -> Tuple[np.ndarray, Optional[Hairs]]:
    """The photo with its brows covered by the skin around them, and ``subject``'s brows to grow there
    (``brow_thickness``, ``brow_darkness``, hair colour): an arch at the same height, thickest at the
    inner end, tapering to the tail. The photo untouched and None for the photo's own brows.
    """
    if subject.brow_thickness == 1.0 and subject.brow_darkness == 0.0:
        return rgb, None
    bw, bh = box[2] - box[0], box[3] - box[1]
    lum = rgb @ _LUMA
    old = np.zeros(lum.shape, np.float32)
    new = np.zeros_like(old)
    edge = 1.0 / bh  # a pixel, box heights
    for side, row in zip(_SIDES, _brow_rows(lum, u, v, hair)):
        along = (side * u - 0.10) / 0.32  # 0 at the brow's head, 1 at its tail
        length = np.clip(along / 0.08, 0.0, 1.0) * np.clip((1.0 - along) / 0.15, 0.0, 1.0)
        centre = row + 0.012 * ((side * u - FEATURES["brow"][0]) / 0.1) ** 2  # an arch peaking two thirds out
        offset = np.abs(v - centre)
        cover = np.clip(along / 0.05 + 0.3, 0.0, 1.0) * np.clip((1.0 - along) / 0.1 + 0.3, 0.0, 1.0)
        old = np.maximum(old, cover * np.clip((_BROW_THICKNESS - offset) / edge + 0.5, 0.0, 1.0))  # twice as thick
        half = 0.5 * _BROW_THICKNESS * subject.brow_thickness * (1.2 - 0.6 * np.clip(along, 0.0, 1.0))
        # Densest along the middle (a pixel wide at least: the thinnest brows stay), thinning to the edges.
        profile = np.clip(1.4 * (1.0 - ((np.maximum(offset - edge / 2, 0.0)) / half) ** 2), 0.0, 1.0)
        new = np.maximum(new, length * profile)
    # The skin around the old brows, each pixel's neighbourhood weighted by how much skin it holds.
    around = (1.0 - old) * (1.0 - hair)
    sigma = 0.03 * bw
    fill = cv2.GaussianBlur(rgb * around[..., None], (0, 0), sigma) / np.maximum(
        cv2.GaussianBlur(around, (0, 0), sigma), 1e-3)[..., None]
    rgb = rgb * (1.0 - old[..., None]) + fill * old[..., None]
    strands = _smooth_noise(rng, lum.shape, (1, 5))  # hairs run along the brow
    amount = new * np.clip(0.45 + 0.35 * subject.brow_darkness + 0.2 * strands, 0.0, 1.0)
    colour = np.float32(subject.hair_colour) * np.float32(1.0 - 0.5 * subject.brow_darkness)
    return rgb, (amount, np.broadcast_to(colour, rgb.shape))


def _mouth(u: np.ndarray, v: np.ndarray, places: Places) -> np.ndarray:
    """The lips and what lies between them: between the upper lip's top and the lower lip's bottom,
    both curving to the mouth corners (bool)."""
    corner_u, corner_v = places["mouth_corner"]
    top, bottom = places["upper_lip"][1] - 0.015, places["lower_lip"][1] + 0.015
    across = (np.abs(u) / corner_u) ** 2
    return (across < 1.15) & (v > top + (corner_v - top) * across) & (v < bottom + (corner_v - bottom) * across)


def beard_hairs(rgb: np.ndarray, u: np.ndarray, v: np.ndarray, box: Box, subject: Subject, places: Places,
                rng: np.random.Generator) -> Optional[Hairs]:
    """Stubble (``beard`` below ~0.4: a grainy shadow, the skin showing through) or a beard (dense,
    in strands) in ``subject``'s hair colour, on the skin of the chin, jaw, lower cheeks and upper
    lip of the photo ``rgb``; None without one.
    """
    if subject.beard == 0.0:
        return None
    jaw, chin, wing = places["jaw"], places["chin"], places["nose_wing"]
    half_width, top = jaw[0] + 0.06, 0.1
    outline = (u / half_width) ** 2 + ((v - top) / (chin[1] + 0.03 - top)) ** 2 < 1.0  # the face's lower outline
    # Above the lip the beard starts below the nose; out on the cheeks it rises towards the sideburns.
    upper = wing[1] + 0.07 - 0.6 * np.clip(np.abs(u) - 0.22, 0.0, None)
    hsv = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
    skin = ((hsv[..., 1] > 35) & (hsv[..., 2] > 50)).astype(np.uint8)  # not the pale background beside the jaw ...
    skin = cv2.morphologyEx(skin, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)).astype(bool)  # ... but its highlights
    bw = box[2] - box[0]
    region = soft(outline & (v > upper) & ~_mouth(u, v, places) & skin, 0.02 * bw)
    ragged = _smooth_noise(rng, region.shape, (max(2, int(0.04 * bw)),) * 2)  # an uneven edge, a full middle
    region = np.clip((region - 0.5 + 0.15 * np.clip(ragged, -1.5, 1.5)) / 0.5 + 0.5, 0.0, 1.0)
    region *= np.sqrt(np.clip((v - upper) / 0.08, 0.0, 1.0))  # sparser towards the cheekbones
    # Hairs a pixel or two across: a fine grain; a full beard's run down in strands.
    grain = cv2.GaussianBlur(rng.standard_normal(region.shape, dtype=np.float32), (0, 0), 0.7)
    grain /= max(float(grain.std()), 1e-6)
    strands = _smooth_noise(rng, region.shape, (4, 1))
    texture = 1.0 + 0.12 * grain + 0.15 * subject.beard * strands
    amount = np.clip(region * texture * np.float32(0.15 + 0.75 * subject.beard), 0.0, 1.0)
    return amount, np.float32(subject.hair_colour) * (0.9 + 0.1 * np.clip(strands, -1.5, 1.5))[..., None]


def grow_hair(planes: List[np.ndarray], hairs: Hairs) -> None:
    """Paint ``hairs`` over the tinted skin; their near-infrared is their colour's luminance, as the scalp's."""
    amount, colour = hairs
    for i, plane in enumerate(planes[:3]):
        plane += amount * (colour[..., i] - plane)
    planes[3] += amount * ((colour @ _LUMA) / np.float32(255.0) - planes[3])


def lip_mask(rgb: np.ndarray, u: np.ndarray, v: np.ndarray, places: Places) -> np.ndarray:
    """How much of each pixel is lip: the mouth's pixels redder than skin (teeth and the skin around are not)."""
    redness = (rgb[..., 0] - rgb[..., 1]) / np.maximum(rgb[..., 0], 1.0)
    return soft(_mouth(u, v, places)) * np.clip((redness - 0.2) / 0.1, 0.0, 1.0)


def recolour_lips(planes: List[np.ndarray], lips: np.ndarray, colour: Sequence[float]) -> None:
    """Give the lips (``lip_mask``) the mean RGB ``colour``, keeping their shading; near-infrared unchanged."""
    total = float(lips.sum())
    if total < 1.0:
        return
    for plane, target in zip(planes[:3], colour):
        mean = max(1.0, float((plane * lips).sum()) / total)
        plane *= 1.0 + lips * np.float32(target / mean - 1.0)


def bare_skin(skin: np.ndarray, u: np.ndarray, v: np.ndarray, subject: Subject, places: Places) -> np.ndarray:
    """``skin`` (how much of each pixel is skin) without the eyes and the mouth: where marks may go."""
    eye_u, eye_v = places["eye"]
    eyes = ((np.abs(u) - eye_u) / (0.12 * subject.eye_size)) ** 2 + ((v - eye_v) / (0.06 * subject.eye_size)) ** 2 < 1.0
    return skin * (1.0 - soft(eyes | _mouth(u, v, places)))


def _spots(shape: Tuple[int, int], points: np.ndarray, strengths: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian spots of ``sigma`` pixels at pixel ``points`` (N×2, x and y), each peaking near its strength."""
    field = np.zeros(shape, np.float32)
    x = np.clip(np.round(points[:, 0]).astype(int), 0, shape[1] - 1)
    y = np.clip(np.round(points[:, 1]).astype(int), 0, shape[0] - 1)
    np.add.at(field, (y, x), strengths.astype(np.float32))
    return cv2.GaussianBlur(field, (0, 0), sigma) * np.float32(2.0 * np.pi * sigma * sigma)


def paint_skin_marks(planes: List[np.ndarray], bare: np.ndarray, box: Box, subject: Subject,
                     rngs: Dict[str, np.random.Generator]) -> None:
    """Blotches (``mottle``), freckles over nose and cheeks and ``moles`` anywhere on ``bare`` skin.

    Pigment: the colour darkens towards brown (blue most), near-infrared by ``_PIGMENT_NIR`` of that.
    ``rngs`` holds a generator per mark ("mottle", "freckles", "moles"), so one mark's amount leaves
    the others where they were.
    """
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    if subject.mottle > 0.0:  # redder, darker patches a tenth of a face wide, paler ones between
        field = _smooth_noise(rngs["mottle"], bare.shape, (max(2, int(0.1 * bh)), max(2, int(0.1 * bw))))
        _darken(planes, subject.mottle * bare * field, (0.015, 0.05, 0.05), _PIGMENT_NIR)
    if subject.freckles > 0.0:
        rng = rngs["freckles"]
        count = int(round(220 * subject.freckles))
        # Two thirds on the cheeks (either side), a third on the nose.
        centres = np.float64([(-0.24, 0.05), (0.24, 0.05), (0.0, 0.04)])[rng.choice(3, count, p=[1 / 3] * 3)]
        spread = np.where(centres[:, :1] == 0.0, (0.06, 0.06), (0.09, 0.07))
        uv = centres + spread * rng.standard_normal((count, 2))
        points = np.column_stack([cx + uv[:, 0] * bw, cy + uv[:, 1] * bh])
        spots = _spots(bare.shape, points, rng.uniform(0.2, 0.6, count), 0.006 * bw)
        _darken(planes, np.minimum(spots, 1.0) * bare, (0.15, 0.25, 0.35), _PIGMENT_NIR)
    if subject.moles > 0:
        rng = rngs["moles"]
        uv = np.column_stack([rng.uniform(-0.42, 0.42, 64), rng.uniform(-0.3, 0.62, 64)])
        points = np.column_stack([cx + uv[:, 0] * bw, cy + uv[:, 1] * bh])
        inside = (points >= 0).all(axis=1) & (points[:, 0] < bare.shape[1] - 1) & (points[:, 1] < bare.shape[0] - 1)
        on_skin = np.zeros(len(points), bool)
        on_skin[inside] = bare[points[inside, 1].astype(int), points[inside, 0].astype(int)] > 0.9
        chosen = points[on_skin][:subject.moles]
        spots = _spots(bare.shape, chosen, np.ones(len(chosen)), 0.012 * bw)
        _darken(planes, np.minimum(spots, 1.0) * bare, (0.55, 0.62, 0.62), _PIGMENT_NIR)


def _polyline(canvas: np.ndarray, points: np.ndarray, strength: float) -> None:
    """Draw an anti-aliased 1-pixel line of ``strength`` (0..1) through ``points`` (N×2 pixels) into ``canvas``."""
    fixed = np.round(points * _SUPERSAMPLE).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [fixed], False, int(round(255 * strength)), 1, cv2.LINE_AA, 2)


def paint_wrinkles(planes: List[np.ndarray], bare: np.ndarray, box: Box, subject: Subject, places: Places,
                   rng: np.random.Generator) -> None:
    """Age lines (``wrinkles``): forehead lines, crow's feet, folds from the nose wings past the mouth,
    lines under the eyes; shading in colour, ``_CREASE_NIR`` of it in near-infrared."""
    if subject.wrinkles == 0.0:
        return
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    eye_u, eye_v = places["eye"]
    wing_u, wing_v = places["nose_wing"]
    corner_u, corner_v = places["mouth_corner"]
    brow_v = places["brow"][1]
    half_eye = 0.1 * subject.eye_size
    lines = np.zeros(bare.shape, np.uint8)
    t = np.linspace(0.0, 1.0, 12)[:, None]

    def draw(uv: np.ndarray, strength: float = 1.0) -> None:
        jitter = 0.006 * rng.standard_normal(2)
        _polyline(lines, np.column_stack([cx + (uv[:, 0] + jitter[0]) * bw, cy + (uv[:, 1] + jitter[1]) * bh]),
                  strength)

    for k in range(3):  # across the forehead: wavy, of uneven length, fainter upwards
        start, width = rng.uniform(-0.3, -0.12), rng.uniform(0.25, 0.45)
        across = np.linspace(start, start + width, 12)
        wave = 0.006 * np.sin(across / 0.07 + rng.uniform(0.0, 2.0 * np.pi))
        draw(np.column_stack([across, brow_v - 0.09 - 0.045 * k + 0.02 * (across / 0.26) ** 2 + wave]), 1.0 - 0.25 * k)
    for side in _SIDES:
        outer = side * (eye_u + half_eye + 0.02)
        for slope in (-0.5, 0.0, 0.5):  # crow's feet fanning out from the eye's outer corner
            draw(np.column_stack([outer + side * 0.07 * t[:, 0], eye_v + slope * 0.07 * t[:, 0]]))
        # From beside the nose wing, bowing out, to past the mouth corner.
        start = np.float64([side * (wing_u + 0.03), wing_v])
        end = np.float64([side * (corner_u + 0.05), corner_v + 0.1])
        bow = np.float64([side * 0.04, 0.0]) * np.sin(np.pi * t)
        draw(start + (end - start) * t + bow)
        under = side * eye_u + half_eye * np.linspace(-0.8, 0.8, 12)  # under the eye, rising at the ends
        draw(np.column_stack([under, eye_v + 0.06 - 0.02 * ((under - side * eye_u) / half_eye) ** 2]))
    crease = cv2.GaussianBlur(lines.astype(np.float32) / 255.0, (0, 0), 0.5) * bare
    _darken(planes, np.float32(0.3 * subject.wrinkles) * crease, (1.0, 1.0, 1.0), _CREASE_NIR)
