"""Who and what stands in front of the synthetic camera: subjects, attack instruments, their faces.

``Subject`` (drawn by ``create_subject``) is a person: skin tone, hair, glasses, proportions, head shape,
the face's geometry (``face_warp``) and what grows and shows on it (``face_paint``).
``Instrument`` (drawn by ``create_instrument``) is one print, screen or mask with its ``PaperMaterial``,
``ScreenMaterial`` or ``MaskMaterial``. ``create_subject_texture`` turns the base face photo into a
subject's face; ``cached_subject_texture`` makes each once, so subjects cost nothing per frame.
``render`` paints them; ``synthetic`` composes scenes of them and re-exports these names.
"""
from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .face_paint import (
    bare_skin, beard_hairs, draw_glasses, grow_hair, lip_mask, paint_skin_marks, paint_wrinkles, prepare_brows,
    recolour_lips, restyle_hair, soft,
)
from .face_warp import HEAD, face_units, features, warp_face
from .render import BASE_NECK_WIDTH, HARD_SCATTER_MM, Colour, FaceTexture, _LUMA, _skin_colour
from .sheet import SHEET_FOLDS

HAIR_STYLES = ("photo", "long", "receding", "buzz", "bald")
MASK_COVERAGES = ("head", "face", "upper", "eyes")  # what a mask covers: render.mask_region
HANDS = ("none", "left", "right")  # which side of the image a hand holds a print from
# Allowed ranges of the geometry fields (face_warp.GEOMETRY_FIELDS): the warp never folds within them.
_GEOMETRY_LIMITS = {"eye_size": (0.85, 1.2), "nose_width": (0.75, 1.3), "nose_length": (0.85, 1.15),
                    "mouth_width": (0.8, 1.25), "jaw_width": (0.8, 1.2), "cheek_fullness": (0.85, 1.15),
                    "forehead_height": (0.8, 1.25)}


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

    The defaults are the base photo's own face on the original head: each field at its default
    leaves the photo as it is. ``create_subject`` draws distinct ones; any field may also be set by
    hand. Hair much lighter than the skin (blond on dark skin) defeats OpenCV's Haar face detector:
    ``create_subject`` avoids it. Geometry fields (``face_warp.GEOMETRY_FIELDS``) are ratios to the
    photo's own feature (1.0: as photographed) and reshape it by a smooth warp; marks (beard,
    freckles, moles, mottle, wrinkles) are amounts (0: none) painted at random places that
    ``marks_seed`` fixes.
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
    mirror: bool = False  # the photo flipped left to right: the other parting, the other asymmetries
    eye_size: float = 1.0  # the eyes scaled about their centres
    nose_width: float = 1.0  # nose wings' distance from the midline (the head relief's nose follows)
    nose_length: float = 1.0  # root to tip (the head relief's nose follows)
    mouth_width: float = 1.0  # corner to corner
    jaw_width: float = 1.0  # the lower face's width, about the midline
    cheek_fullness: float = 1.0  # the cheeks' outline's distance from the midline
    forehead_height: float = 1.0  # brows to hairline
    brow_thickness: float = 1.0  # relative to the base photo's brows
    brow_darkness: float = 0.0  # 0: brows of the hair's colour (when repainted); 1: half as bright
    lip_colour: Optional[Colour] = None  # mean RGB of the lips; None: the photo's, tinted like the skin
    beard: float = 0.0  # 0: none; below ~0.4 stubble; up to 1, a full beard
    freckles: float = 0.0  # 1: 220 over nose and cheeks
    moles: int = 0
    mottle: float = 0.0  # blotchy redness and paleness
    wrinkles: float = 0.0  # forehead lines, crow's feet, folds beside the nose and mouth
    marks_seed: int = 0  # fixes where the marks fall (and the hairs of brows and beard)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"Subject.id: expected a non-empty string, got {self.id!r}")
        if self.hair_style not in HAIR_STYLES:
            raise ValueError(f"Subject.hair_style: expected one of {HAIR_STYLES}, got {self.hair_style!r}")
        for name in ("glasses", "mirror"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"Subject.{name}: expected a bool, got {getattr(self, name)!r}")
        for name in ("skin_tone", "hair_colour", "glasses_colour", "lip_colour"):
            value = getattr(self, name)
            if not (isinstance(value, tuple) and len(value) == 3) and not (name == "lip_colour" and value is None):
                raise ValueError(f"Subject.{name}: expected an (R, G, B) tuple{' or None' * (name == 'lip_colour')}, "
                                 f"got {value!r}")
        for name in ("moles", "marks_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"Subject.{name}: expected an int >= 0, got {value!r}")
        _check_fields(self, {"skin_tone": (1.0, 255.0), "hair_colour": (0.0, 255.0), "glasses_colour": (0.0, 255.0),
                             "width_scale": (0.8, 1.2), "height_scale": (0.8, 1.2), "eye_spacing": (0.9, 1.1),
                             "head_depth_m": (0.05, 0.14), "nose_m": (0.01, 0.05), "neck_width": (0.4, 1.0),
                             **_GEOMETRY_LIMITS, "brow_thickness": (0.5, 2.0), "brow_darkness": (0.0, 1.0),
                             "beard": (0.0, 1.0), "freckles": (0.0, 1.0), "moles": (0, 8), "mottle": (0.0, 1.0),
                             "wrinkles": (0.0, 1.0),
                             **({} if self.lip_colour is None else {"lip_colour": (1.0, 255.0)})})


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
    fold: str = "none"  # one of SHEET_FOLDS: "v" and "w" folds, "roll" (render._fold_profile)
    fold_m: Tuple[float, float] = (0.0, 0.0)  # range of how much farther the face's edges lie than the crease
    hand: str = "none"  # one of HANDS: a hand holds the sheet at that side, fingers over the face
    eye_holes: bool = False  # the printed eyes are cut out (worn over a live face)

    def __post_init__(self) -> None:
        _check_fields(self, {"contrast": (0.05, 1.5), "paper_white": (0.0, 120.0), "halftone_depth": (0.0, 0.5),
                             "halftone_period_px": (2.0, 16.0), "grain": (0.0, 30.0), "ir_paper": (0.0, 255.0),
                             "ir_contrast": (0.0, 120.0), "gloss_ir": (0.0, 255.0), "gloss_spread": (0.005, 0.5),
                             "bend_m": (-0.05, 0.05), "tilt_m": (-0.08, 0.08), "pitch_m": (-0.08, 0.08),
                             "fold_m": (0.0, 0.08)})
        if self.fold not in SHEET_FOLDS:
            raise ValueError(f"PaperMaterial.fold: expected one of {SHEET_FOLDS}, got {self.fold!r}")
        if (self.fold == "none") != (self.fold_m == (0.0, 0.0)) or (self.fold != "none" and self.fold_m[0] < 0.01):
            raise ValueError(f"PaperMaterial.fold_m: expected (0.0, 0.0) without a fold and a range within "
                             f"0.01..0.08 m with one (fold {self.fold!r}), got {self.fold_m!r}")
        if self.hand not in HANDS:
            raise ValueError(f"PaperMaterial.hand: expected one of {HANDS}, got {self.hand!r}")
        if not isinstance(self.eye_holes, bool):
            raise ValueError(f"PaperMaterial.eye_holes: expected a bool, got {self.eye_holes!r}")


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
    """A mask on the head. The defaults are the idealised resin mask the camera shows without an
    instrument: the whole head, flat IR everywhere (``shading`` 0); real materials are shaded by the
    camera's illuminator. A mask covering less than the head (``coverage`` "face", "upper" or "eyes")
    or with ``eye_holes`` is worn: the wearer's skin and eyes show around and through it."""

    name: str = "resin"
    albedo: float = 0.9  # gain on the (smoothed) photo printed or painted on the mask
    tint: Colour = (1.0, 1.0, 1.0)  # RGB gains of the material's own colour
    lift: float = 20.0  # RGB the material adds everywhere
    sheen: float = 25.0  # RGB added on the nose by the room light's reflection
    blur: float = 0.012  # σ of the smoothing of the photo (paint quality), face widths
    ir_level: float = 185.0  # IR of a surface facing the camera at the face's distance (850 nm albedo)
    shading: float = 0.0  # 0: flat IR; 1: Lambertian under the illuminator, falling off with distance
    gloss_ir: float = 0.0  # peak IR where the surface mirrors the illuminator
    gloss_spread: float = 0.1  # radians
    subsurface_mm: float = HARD_SCATTER_MM  # how far 850 nm light spreads inside the material (skin: ~2.5)
    coverage: str = "head"  # one of MASK_COVERAGES
    eye_holes: bool = False  # the wearer's eyes show through
    edge: float = 0.0  # how dark the mask's edge shows at forehead, jaw and chin (0: not at all, 1: a dark seam)
    weave: float = 0.0  # a woven cloth's thread pattern, amplitude
    thickness_m: float = 0.004  # how far a worn mask stands before the wearer's face
    glasses: bool = False  # real glasses worn over the mask (wear: frames stand before it)
    wig: bool = False  # real hair over the mask's top and sides
    wig_colour: Colour = (60.0, 42.0, 30.0)  # mean RGB of the wig's hair

    def __post_init__(self) -> None:
        _check_fields(self, {"albedo": (0.05, 1.5), "tint": (0.2, 1.5), "lift": (0.0, 120.0), "sheen": (0.0, 120.0),
                             "blur": (0.0, 0.05), "ir_level": (0.0, 255.0), "shading": (0.0, 1.0),
                             "gloss_ir": (0.0, 255.0), "gloss_spread": (0.005, 0.5), "subsurface_mm": (0.0, 5.0),
                             "edge": (0.0, 1.0), "weave": (0.0, 0.5), "thickness_m": (0.0, 0.02),
                             "wig_colour": (0.0, 255.0)})
        if self.coverage not in MASK_COVERAGES:
            raise ValueError(f"MaskMaterial.coverage: expected one of {MASK_COVERAGES}, got {self.coverage!r}")
        for name in ("eye_holes", "glasses", "wig"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"MaskMaterial.{name}: expected a bool, got {getattr(self, name)!r}")


Material = Union[PaperMaterial, ScreenMaterial, MaskMaterial]
_MATERIAL_TYPES = {"print": PaperMaterial, "replay": ScreenMaterial, "mask": MaskMaterial}
ATTACK_KINDS = tuple(_MATERIAL_TYPES)  # how an instrument renders: ("print", "replay", "mask")


@dataclass(frozen=True)
class Instrument:
    """One physical attack instrument (a particular print, screen or mask) and its material.

    Attributes:
        id: unique name, e.g. "print-02"; training splits keep each id on one side.
        species: the attack type a deployer records: a built-in kind or any name ("cutout", "tablet").
        kind: how it renders: "print", "replay" or "mask".
        material: PaperMaterial, ScreenMaterial or MaskMaterial, matching ``kind``.
    """

    id: str
    species: str
    kind: str
    material: Material

    @property
    def family(self) -> str:
        """The material family (``material.name``): what a benchmark holds out, e.g. "silicone"."""
        return self.material.name

    def __post_init__(self) -> None:
        for name in ("id", "species"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"Instrument.{name}: expected a non-empty string, got {getattr(self, name)!r}")
        if self.kind not in ATTACK_KINDS:
            raise ValueError(f"Instrument.kind: expected one of {ATTACK_KINDS}, got {self.kind!r}")
        expected = _MATERIAL_TYPES[self.kind]
        if not isinstance(self.material, expected):
            raise ValueError(f"Instrument.material: a {self.kind!r} instrument needs a {expected.__name__}, got "
                             f"{type(self.material).__name__}")


# Anchors of the skin-tone scale (cheek RGB under white light), light to dark; subjects fall between.
_SKIN_TONES = np.float64([(238, 204, 180), (222, 182, 152), (204, 160, 126), (180, 132, 98), (150, 104, 74),
                          (118, 82, 58), (96, 66, 48)])
_HAIR_COLOURS = np.float64([(26, 22, 20), (60, 42, 30), (104, 74, 48), (128, 64, 36), (196, 164, 108),
                            (158, 154, 150), (82, 58, 40)])
# Ranges create_subject draws the geometry fields from: within _GEOMETRY_LIMITS, most faces' span.
_GEOMETRY_DRAWS = {"eye_size": (0.9, 1.12), "nose_width": (0.85, 1.2), "nose_length": (0.9, 1.1),
                   "mouth_width": (0.88, 1.15), "jaw_width": (0.9, 1.12), "cheek_fullness": (0.93, 1.08),
                   "forehead_height": (0.88, 1.15)}
_LUMA64 = np.float64([0.299, 0.587, 0.114])  # render's _LUMA in float64: drawn subjects stay bit for bit
_GOLDEN = 0.6180339887498949  # index × golden ratio (mod 1) spreads consecutive subjects over the skin scale


def _rng_for(name: str, index: int) -> np.random.Generator:
    """A generator fixed by (name, index): the same everywhere (crc32, unlike hash(), is not salted per process)."""
    return np.random.default_rng([zlib.crc32(name.encode("utf-8")), index])


def _check_index(index: Any) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index: expected an int >= 0, got {index!r}")
    return int(index)


def create_subject(index: int) -> Subject:
    """A synthetic person, the same for the same index and visibly different from its neighbours.

    Skin tones walk the scale by the golden ratio, hair colours and styles cycle with coprime
    periods, a third wear glasses, every other one is the photo mirrored; proportions, head depth
    and nose (2-4 cm) are drawn per index, and so are the face's geometry (eyes, nose, mouth, jaw,
    cheeks, forehead), brows and lips, and its marks: stubble or a beard on two in five, freckles
    on three in ten, up to three moles, mottle and wrinkles on all to varying degrees.

    Args:
        index: 0, 1, 2, ... (any int >= 0; it is also the seed).

    Returns:
        A Subject with id "S{index:03d}".

    Raises:
        ValueError: a negative or non-int index.

    Example:
        >>> [create_subject(i).id for i in range(3)]
        ['S000', 'S001', 'S002']
    """
    index = _check_index(index)
    rng = _rng_for("subject", index)
    position = ((0.5 + index * _GOLDEN) % 1.0) * (len(_SKIN_TONES) - 1)
    low = int(position)
    high = min(low + 1, len(_SKIN_TONES) - 1)
    skin = _SKIN_TONES[low] + (position - low) * (_SKIN_TONES[high] - _SKIN_TONES[low]) + rng.uniform(-6, 6, 3)
    hair = _HAIR_COLOURS[(3 * index + 1) % len(_HAIR_COLOURS)] * rng.uniform(0.9, 1.1)
    # Hair lighter than the skin turns the face's light-dark pattern around for a Haar cascade
    # (found on well under half of the frames): such hair is darkened to stay below the skin.
    hair *= min(1.0, 0.65 * float(skin @ _LUMA64) / max(1.0, float(hair @ _LUMA64)))
    frames = np.float64(rng.choice([(28.0, 26.0, 30.0), (90.0, 60.0, 35.0), (150.0, 150.0, 155.0)]))
    frames *= min(1.0, 0.6 * float(skin @ _LUMA64) / float(frames @ _LUMA64))  # light frames: the same, around the eyes
    return Subject(
        id=f"S{index:03d}",
        skin_tone=tuple(float(v) for v in np.clip(skin, 1.0, 255.0)),
        hair_colour=tuple(float(v) for v in np.clip(hair, 0.0, 255.0)),
        hair_style=HAIR_STYLES[(2 * index) % len(HAIR_STYLES)],
        glasses=index % 3 == 2,
        glasses_colour=tuple(float(v) for v in frames),
        width_scale=float(rng.uniform(0.92, 1.08)), height_scale=float(rng.uniform(0.93, 1.07)),
        eye_spacing=float(rng.uniform(0.95, 1.05)), head_depth_m=float(rng.uniform(0.08, 0.10)),
        nose_m=float(rng.uniform(0.02, 0.04)), neck_width=float(rng.uniform(0.7, 0.85)),
        mirror=index % 2 == 1, **_draw_looks(index, skin),
    )


def _draw_looks(index: int, skin: np.ndarray) -> Dict[str, Any]:
    """Subject fields beyond the original ones, from a generator of their own (the original draws stay put)."""
    rng = _rng_for("subject looks", index)
    looks: Dict[str, Any] = {name: float(rng.uniform(*limits)) for name, limits in _GEOMETRY_DRAWS.items()}
    beard = rng.random()
    looks["beard"] = float(rng.uniform(0.15, 0.35) if beard < 0.2 else rng.uniform(0.55, 1.0) if beard < 0.4 else 0.0)
    looks["freckles"] = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.3 else 0.0
    looks.update(moles=int(rng.integers(0, 4)), mottle=float(rng.uniform(0.0, 0.8)),
                 wrinkles=float(rng.uniform(0.0, 1.0)), brow_thickness=float(rng.uniform(0.8, 1.8)),
                 brow_darkness=float(rng.uniform(0.0, 0.8)), marks_seed=index)
    # Lips: the skin's colour, darker and redder (less green and blue), by a drawn amount.
    lips = skin * np.float64([rng.uniform(0.8, 0.95), rng.uniform(0.52, 0.66), rng.uniform(0.56, 0.72)])
    looks["lip_colour"] = tuple(float(c) for c in np.clip(lips, 1.0, 255.0))
    return looks


_POSE_RANGES = ("bend_m", "tilt_m", "pitch_m", "fold_m")  # material fields that are ranges: each scene draws from them


def _draw(rng: np.random.Generator, ranges: Dict[str, Any]) -> Dict[str, Any]:
    """Material field values: (low, high) draws a float, a tuple of pairs a tuple; pose ranges pass as they are."""
    out = {}
    for name, spec in ranges.items():
        if name in _POSE_RANGES:
            out[name] = spec
        elif isinstance(spec[0], tuple):
            out[name] = tuple(float(rng.uniform(*pair)) for pair in spec)
        else:
            out[name] = float(rng.uniform(*spec))
    return out


# Material families per kind, cycled by index; each field a (low, high) range drawn per instrument.
_PAPERS = (
    ("matte office paper", dict(contrast=(0.7, 0.8), paper_white=(35, 50), halftone_depth=(0.1, 0.16),
                                halftone_period_px=(3.5, 5.0), grain=(4, 7), ir_paper=(160, 185),
                                ir_contrast=(35, 55))),
    ("glossy photo paper", dict(contrast=(0.9, 1.0), paper_white=(10, 25), halftone_depth=(0.02, 0.05),
                                halftone_period_px=(3.0, 4.0), grain=(1.0, 2.5), ir_paper=(140, 170),
                                ir_contrast=(15, 30), gloss_ir=(80, 160), gloss_spread=(0.03, 0.06),
                                bend_m=(0.0, 0.012))),
    ("laser print", dict(contrast=(0.8, 0.9), paper_white=(25, 40), halftone_depth=(0.15, 0.25),
                         halftone_period_px=(4.5, 6.0), grain=(3, 5), ir_paper=(170, 195), ir_contrast=(60, 90),
                         gloss_ir=(10, 30), gloss_spread=(0.1, 0.15))),
    ("thin newsprint", dict(contrast=(0.55, 0.7), paper_white=(45, 60), halftone_depth=(0.18, 0.3),
                            halftone_period_px=(5.0, 7.0), grain=(7, 10), ir_paper=(150, 175), ir_contrast=(40, 60),
                            bend_m=(0.01, 0.04))),
)
_SCREENS = (
    ("glossy phone", dict(brightness=(0.85, 1.05), glow=((0, 2), (8, 14), (25, 40)), scanline=(0.7, 0.8),
                          moire=(0.06, 0.12), moire_frequency=((0.09, 0.12), (0.02, 0.04)), screen_ir=(3, 8),
                          glare_ir=(120, 220), glare_spread=(0.02, 0.04))),
    ("tablet", dict(brightness=(0.8, 0.95), glow=((0, 4), (6, 12), (20, 35)), scanline=(0.72, 0.85),
                    moire=(0.05, 0.1), moire_frequency=((0.07, 0.1), (0.03, 0.05)), screen_ir=(4, 10),
                    glare_ir=(90, 160), glare_spread=(0.03, 0.05))),
    ("matte laptop", dict(brightness=(0.7, 0.85), glow=((2, 6), (8, 14), (18, 30)), scanline=(0.8, 0.9),
                          moire=(0.03, 0.06), moire_frequency=((0.05, 0.08), (0.01, 0.03)), screen_ir=(5, 12),
                          glare_ir=(25, 50), glare_spread=(0.08, 0.14))),
    ("oled phone", dict(brightness=(0.9, 1.1), glow=((0, 1), (0, 3), (2, 8)), scanline=(0.88, 0.95),
                        moire=(0.08, 0.12), moire_frequency=((0.1, 0.14), (0.03, 0.06)), screen_ir=(2, 5),
                        glare_ir=(140, 220), glare_spread=(0.02, 0.035))),
)
# Mask families: visible look (albedo, tint, paint quality), 850 nm albedo and how far light spreads
# in the material (skin: render.SKIN_SCATTER_MM), gloss, how much of the face they cover and their edges.
_MASKS = (
    ("resin", dict(albedo=(0.85, 0.95), lift=(15, 25), sheen=(20, 30), blur=(0.01, 0.015), ir_level=(170, 200),
                   gloss_ir=(20, 50), gloss_spread=(0.12, 0.2), subsurface_mm=(0.1, 0.3))),
    ("latex", dict(albedo=(0.8, 0.9), tint=((1.02, 1.08), (0.93, 0.97), (0.86, 0.92)), lift=(10, 20),
                   sheen=(30, 45), blur=(0.008, 0.012), ir_level=(150, 180), gloss_ir=(60, 100),
                   gloss_spread=(0.05, 0.08), subsurface_mm=(0.8, 1.3), edge=(0.4, 0.8))),
    ("silicone", dict(albedo=(0.95, 1.05), tint=((0.98, 1.02), (0.93, 0.97), (0.9, 0.94)), lift=(5, 12),
                      sheen=(25, 40), blur=(0.004, 0.008), ir_level=(120, 150), gloss_ir=(40, 80),
                      gloss_spread=(0.06, 0.1), subsurface_mm=(1.4, 2.2), edge=(0.1, 0.3))),
    ("paper", dict(albedo=(0.7, 0.8), lift=(30, 45), sheen=(5, 10), blur=(0.015, 0.025), ir_level=(190, 225),
                   subsurface_mm=(0.3, 0.6), edge=(0.6, 1.0))),
    ("fabric", dict(albedo=(0.6, 0.75), lift=(20, 35), sheen=(0, 5), blur=(0.02, 0.035), ir_level=(140, 175),
                    subsurface_mm=(0.6, 1.0), weave=(0.06, 0.14))),
)
MASK_FAMILIES = tuple(name for name, _ in _MASKS)
# How each family is worn, by turns with the index: rigid shells cover the head or the face, soft
# masks the face with the eyes cut out (the wearer's eyes show), cloth is pulled over the head.
_MASK_FORMS = {
    "resin": (dict(coverage="head"), dict(coverage="face", eye_holes=True)),
    "latex": (dict(coverage="face", eye_holes=True), dict(coverage="head", eye_holes=True)),
    "silicone": (dict(coverage="face", eye_holes=True), dict(coverage="face")),
    "paper": (dict(coverage="face", eye_holes=True), dict(coverage="face")),
    "fabric": (dict(coverage="head"), dict(coverage="head", eye_holes=True)),
}
_FAMILIES = {"print": _PAPERS, "replay": _SCREENS, "mask": _MASKS}
# Built-in species beyond the kinds: the print's sheet folded, rolled, held by a hand or with its eyes
# cut out, and partial masks. Indices alternate the forms listed and, every len(forms) indices, walk
# the kind's material families.
_SPECIES_FORMS: Dict[str, Tuple[Dict[str, Any], ...]] = {
    "folded_print": (dict(fold="v", fold_m=(0.01, 0.08)), dict(fold="w", fold_m=(0.01, 0.08))),
    "rolled_print": (dict(fold="roll", fold_m=(0.02, 0.08)),),
    "handheld_print": (dict(hand="right"), dict(hand="left")),
    "eyes_cut_print": (dict(eye_holes=True),),
    # Partial masks: the upper face (forehead to upper lip) or a band over the eyes, the eyes cut out;
    # the wearer's own mouth and chin show below. Indices alternate them and walk the mask families.
    "partial_mask": (dict(coverage="upper", eye_holes=True), dict(coverage="eyes", eye_holes=True)),
}
SPECIES = {**{kind: kind for kind in ATTACK_KINDS}, "folded_print": "print", "rolled_print": "print",
           "handheld_print": "print", "eyes_cut_print": "print", "partial_mask": "mask"}  # built-in → kind
# Hand-held pose ranges per kind: prints sag and tilt; screens are held tilted back (top farther).
_HELD = {"print": dict(tilt_m=(-0.02, 0.02), pitch_m=(-0.02, 0.02)),
         "replay": dict(tilt_m=(-0.03, 0.03), pitch_m=(-0.04, 0.01)), "mask": {}}


def create_instrument(species: str, index: int, kind: Optional[str] = None) -> Instrument:
    """An attack instrument of ``species``: the same for the same (species, index), materials varied.

    Prints cycle matte office paper, glossy photo paper (an IR highlight where the sheet mirrors the
    illuminator), laser prints and thin newsprint (bent more); the print species "folded_print"
    (V and W folds by turns, 1-8 cm), "rolled_print", "handheld_print" (a hand's fingers over the
    face, right and left by turns) and "eyes_cut_print" (worn over a live face) are those papers
    shaped, held or cut so; screens cycle glossy phones, tablets,
    matte laptops and OLED phones, each with its own glare; masks cycle the ``MASK_FAMILIES`` (resin,
    latex, silicone, paper, fabric: each its own 850 nm albedo, subsurface scatter, gloss and edges),
    worn whole or with the eyes cut out by turns, all shaded by the camera's illuminator;
    "partial_mask" covers the upper face or a band over the eyes. Every third mask (index 2, 5, ...)
    is worn with real glasses, every fourth (3, 7, ...) with a wig.

    Args:
        species: one of ``SPECIES`` ("print", "replay", "mask", "folded_print", ...), or a name of your
            own with ``kind`` saying how it renders.
        index: 0, 1, 2, ... within the species.
        kind: "print", "replay" or "mask"; defaults to the built-in species' own (``SPECIES``).

    Returns:
        An Instrument with id "{species}-{index:02d}".

    Raises:
        ValueError: a species of your own without ``kind``, a kind that does not match a built-in
            species, or a negative index.

    Example:
        >>> create_instrument("print", 1).material.name
        'glossy photo paper'
        >>> create_instrument("cutout", 0, kind="print").id
        'cutout-00'
    """
    if not isinstance(species, str) or not species:
        raise ValueError(f"species: expected a non-empty string, got {species!r}")
    if kind is None:
        if species not in SPECIES:
            raise ValueError(f"kind: {species!r} is not one of the built-in species {tuple(SPECIES)}; say how it "
                             f"renders, e.g. create_instrument({species!r}, {index!r}, kind='print')")
        kind = SPECIES[species]
    if kind not in ATTACK_KINDS or (species in SPECIES and kind != SPECIES[species]):
        raise ValueError(f"kind: expected one of {ATTACK_KINDS} (the species' own for built-in ones: {SPECIES}), "
                         f"got {kind!r}")
    index = _check_index(index)
    rng = _rng_for(species, index)
    forms = _SPECIES_FORMS.get(species, ({},))
    families = _FAMILIES[kind]
    name, ranges = families[(index // len(forms)) % len(families)]
    values = _draw(rng, {**_HELD[kind], **ranges})
    form = forms[index % len(forms)]
    extra = {}
    if kind == "mask":
        extra["shading"] = float(rng.uniform(0.9, 1.0))
        # worn over it, by periods coprime with the families': glasses on every third, a wig on every fourth
        extra.update(glasses=index % 3 == 2, wig=index % 4 == 3,
                     wig_colour=tuple(float(c) for c in _HAIR_COLOURS[index % len(_HAIR_COLOURS)]))
        if species not in _SPECIES_FORMS:  # a whole mask: worn as its family's forms say, by turns
            worn = _MASK_FORMS.get(name, ({},))
            form = worn[(index // len(families)) % len(worn)]
    material = _MATERIAL_TYPES[kind](name=name, **{**values, **form}, **extra)
    return Instrument(id=f"{species}-{index:02d}", species=species, kind=kind, material=material)


def create_subject_texture(texture: FaceTexture, subject: Subject) -> FaceTexture:
    """The base photo turned into ``subject``'s face: geometry, hair, brows, beard, skin tone and
    marks, lips, glasses, proportions.

    Works in the base texture's face-box units, so any photo with a frontal face can be the base.
    The luminance plane keeps the base skin's values: skin reflects near-infrared almost regardless
    of melanin, so a darker subject is darker in colour but not in IR; freckles, moles, blotches and
    lips barely show there, brows and beards (hair) do.

    Args:
        texture: the base face (``load_default_texture()`` or ``create_face_texture(photo)``).
        subject: who to make of it.

    Returns:
        A new texture; its face box is the base box stretched by the subject's proportions.
    """
    if subject.mirror:
        fb, width = texture.face_box, texture.planes.shape[1]
        texture = FaceTexture(texture.planes[:, ::-1], (width - 1 - fb[2], fb[1], width - 1 - fb[0], fb[3]),
                              texture.skin)
    u, v = face_units(texture)
    fb = texture.face_box
    places = features(subject)
    rgb = warp_face(np.array(texture.planes[..., :3]), u, v, fb, subject)
    rgb, hair = restyle_hair(rgb, u, v, subject, texture.skin)
    lips = None if subject.lip_colour is None else lip_mask(rgb, u, v, places)  # found before the skin's tint
    rgb, brows = prepare_brows(rgb, u, v, fb, subject, hair, _rng_for("marks brows", subject.marks_seed))
    beard = beard_hairs(rgb, u, v, fb, subject, places, _rng_for("marks beard", subject.marks_seed))
    lum = (rgb @ _LUMA) / np.float32(255.0)
    skull = (u / HEAD[1]) ** 2 + ((v - HEAD[0]) / HEAD[2]) ** 2 < 1.0
    hsv = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
    below = (np.abs(u) < 0.5) & (v > 0.3) & (hsv[..., 1] > 30) & (hsv[..., 2] > 60)  # neck, not the clothes
    skin = soft((skull | below) & (hsv[..., 1] > 20), 2.0) * (1.0 - hair)
    gain = np.float32(subject.skin_tone) / np.float32(texture.skin)
    rgb = rgb * (1.0 + skin[..., None] * (gain - 1.0))
    planes = [np.ascontiguousarray(rgb[..., i], dtype=np.float32) for i in range(3)] + [lum.astype(np.float32)]
    if lips is not None:
        recolour_lips(planes, lips, subject.lip_colour)
    for hairs in (brows, beard):  # over the tinted skin, which then shows beneath them
        if hairs is not None:
            grow_hair(planes, hairs)
            skin = skin * (1.0 - hairs[0])
    if subject.mottle or subject.freckles or subject.moles or subject.wrinkles:
        bare = bare_skin(skin, u, v, subject, places)
        paint_skin_marks(planes, bare, fb, subject, {name: _rng_for(f"marks {name}", subject.marks_seed)
                                                     for name in ("mottle", "freckles", "moles")})
        paint_wrinkles(planes, bare, fb, subject, places, _rng_for("marks wrinkles", subject.marks_seed))
    if subject.glasses:
        draw_glasses(planes, texture, subject)
    stacked = np.clip(np.dstack(planes), 0.0, None)
    h, w = stacked.shape[:2]
    size = (max(8, int(round(w * subject.width_scale))), max(8, int(round(h * subject.height_scale))))
    if size != (w, h):
        stacked = cv2.resize(stacked, size, interpolation=cv2.INTER_LINEAR)
    sx, sy = size[0] / w, size[1] / h
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
