"""A synthetic RGB-D-IR camera: a face in front of a wall, live or presented as an attack.

Seeded and deterministic. The physics the real sensors see is what separates the classes:
- live: the photo texture-mapped on a head relief (nose ~4 cm before the cheeks, sides ~9 cm
  back), skin IR with the face's structure and bright corneal glints, a little head sway;
- print: the photo on a flat or slightly bent, tilted sheet: planar depth, bright flat paper IR,
  lower contrast, halftone dots and paper grain in RGB;
- replay: the photo on a screen in a dark bezel: planar depth, almost no IR (screens emit no
  near-infrared), scanlines, moiré and a blue glow in RGB, unaffected by the room light;
- mask: head-shaped depth, but material IR (no skin variation, no glints: one value on the default
  mask, shaded by the camera's illuminator on an instrument's) and a smoothed RGB with a sheen.
Subjects (``create_subject``) give the face distinct identities: skin tone, hair, glasses and
proportions drawn on the base photo, and the head's depth and nose on the relief. Instruments
(``create_instrument``) give attacks their materials: paper types, bends and gloss; screens with
the illuminator's glare on the glass; masks shaded by the camera's own illuminator. Without them
the camera renders what it always has, bit for bit.
Domains (0-3) change sensor noise, depth holes, IR gain, light colour and distance, so training can
hold one domain out. All streams are rendered from one viewpoint with one pinhole camera (colour
aligned to depth). Depth noise grows with z², and the D4xx stereo shadow (no depth just left of
near objects, and along the image's left edge) is there as on the real sensor.
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..frames import Extrinsics, FrameSet, Intrinsics
from . import render
from .render import (
    HAIR_STYLES, FaceTexture, MaskMaterial, PaperMaterial, ScreenMaterial, Subject, create_face_texture,
    create_subject_texture, load_default_texture,
)

__all__ = [
    "CLASSES", "SCENE_KINDS", "ATTACK_KINDS", "DOMAINS", "HAIR_STYLES", "DomainStyle", "SyntheticConfig", "SceneSpec",
    "Segment", "FaceTexture", "Subject", "Instrument", "PaperMaterial", "ScreenMaterial", "MaskMaterial",
    "SyntheticCamera", "create_face_texture", "create_subject_texture", "load_default_texture", "create_subject",
    "create_instrument", "draw_scene", "render_scene", "render_frameset", "render_sequence",
]

CLASSES = ("live", "print", "replay", "mask")
SCENE_KINDS = CLASSES + ("empty",)  # "empty": nobody in front of the camera (scripted sequences)
ATTACK_KINDS = CLASSES[1:]
Material = Union[PaperMaterial, ScreenMaterial, MaskMaterial]
_MATERIAL_TYPES = {"print": PaperMaterial, "replay": ScreenMaterial, "mask": MaskMaterial}
FACE_WIDTH_M = 0.15  # face-detector box width (ear to ear) of an adult face
_BASELINE_M = 0.05  # D435 stereo baseline: sets the width of the depth shadow
_REFERENCE_DISTANCE_M = 0.6  # where DomainStyle.depth_noise_mm holds


@dataclass(frozen=True)
class DomainStyle:
    """What one acquisition domain changes (another camera unit, room and light)."""

    depth_noise_mm: float  # σ at 0.6 m; stereo noise grows with z²
    hole_fraction: float  # random depth dropouts, face included
    ir_gain: float  # projector power × IR exposure
    light: Tuple[float, float, float]  # RGB gains of the room light (colour temperature)
    distance_m: Tuple[float, float]  # range the face distance is drawn from
    rgb_noise: float  # σ of colour sensor noise, 0..255 units


DOMAINS = (
    DomainStyle(1.0, 0.01, 1.0, (1.0, 1.0, 1.0), (0.40, 0.70), 2.0),
    DomainStyle(1.8, 0.03, 0.8, (1.08, 1.0, 0.85), (0.50, 0.85), 4.0),
    DomainStyle(2.4, 0.05, 1.2, (0.88, 0.97, 1.1), (0.45, 0.80), 5.0),
    DomainStyle(1.4, 0.02, 0.9, (1.0, 0.92, 0.95), (0.60, 1.00), 3.0),
)


@dataclass(frozen=True)
class SyntheticConfig:
    """Image size, frame rate and the pinhole camera shared by all three streams.

    The default fx (a D435 colour camera at 640×480) puts a face at 0.4-1.0 m at ~90-230 px wide.
    """

    width: int = 640
    height: int = 480
    fps: float = 30.0
    fx: float = 615.0
    depth_scale_m: float = 0.001

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 64 <= value <= 4096:
                raise ValueError(f"SyntheticConfig.{name}: expected an int in 64..4096 pixels, got {value!r}")
        for name in ("fps", "fx"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SyntheticConfig.{name}: expected a positive number, got {getattr(self, name)!r}")
        if not 0 < self.depth_scale_m < 1:
            raise ValueError(
                f"SyntheticConfig.depth_scale_m: expected metres per unit in (0, 1), got {self.depth_scale_m!r}")


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
_LUMA = np.float64([0.299, 0.587, 0.114])
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
    periods, a third wear glasses; proportions, head depth and nose (2-4 cm) are drawn per index.

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
    hair *= min(1.0, 0.65 * float(skin @ _LUMA) / max(1.0, float(hair @ _LUMA)))
    frames = np.float64(rng.choice([(28.0, 26.0, 30.0), (90.0, 60.0, 35.0), (150.0, 150.0, 155.0)]))
    frames *= min(1.0, 0.6 * float(skin @ _LUMA) / float(frames @ _LUMA))  # light frames: the same, around the eyes
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
    )


_POSE_RANGES = ("bend_m", "tilt_m", "pitch_m")  # material fields that are ranges: each scene draws from them


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
_MASKS = (
    ("resin", dict(albedo=(0.85, 0.95), lift=(15, 25), sheen=(20, 30), blur=(0.01, 0.015), ir_level=(170, 200),
                   gloss_ir=(20, 50), gloss_spread=(0.12, 0.2))),
    ("silicone", dict(albedo=(0.95, 1.05), tint=((0.98, 1.02), (0.93, 0.97), (0.9, 0.94)), lift=(5, 12),
                      sheen=(25, 40), blur=(0.004, 0.008), ir_level=(120, 150), gloss_ir=(40, 80),
                      gloss_spread=(0.06, 0.1))),
    ("latex", dict(albedo=(0.8, 0.9), tint=((1.02, 1.08), (0.93, 0.97), (0.86, 0.92)), lift=(10, 20),
                   sheen=(30, 45), blur=(0.008, 0.012), ir_level=(150, 180), gloss_ir=(60, 100),
                   gloss_spread=(0.05, 0.08))),
    ("card", dict(albedo=(0.7, 0.8), lift=(30, 45), sheen=(5, 10), blur=(0.015, 0.025), ir_level=(190, 220))),
)
_FAMILIES = {"print": _PAPERS, "replay": _SCREENS, "mask": _MASKS}
# Hand-held pose ranges per kind: prints sag and tilt; screens are held tilted back (top farther).
_HELD = {"print": dict(tilt_m=(-0.02, 0.02), pitch_m=(-0.02, 0.02)),
         "replay": dict(tilt_m=(-0.03, 0.03), pitch_m=(-0.04, 0.01)), "mask": {}}


def create_instrument(species: str, index: int, kind: Optional[str] = None) -> Instrument:
    """An attack instrument of ``species``: the same for the same (species, index), materials varied.

    Prints cycle matte office paper, glossy photo paper (an IR highlight where the sheet mirrors the
    illuminator), laser prints and thin newsprint (bent more); screens cycle glossy phones, tablets,
    matte laptops and OLED phones, each with its own glare; masks cycle resin, silicone, latex and
    card, all shaded by the camera's illuminator.

    Args:
        species: "print", "replay", "mask", or a name of your own with ``kind`` saying how it renders.
        index: 0, 1, 2, ... within the species.
        kind: "print", "replay" or "mask"; defaults to ``species`` for the built-in ones.

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
        if species not in ATTACK_KINDS:
            raise ValueError(f"kind: {species!r} is not one of {ATTACK_KINDS}; say how it renders, e.g. "
                             f"create_instrument({species!r}, {index!r}, kind='print')")
        kind = species
    if kind not in ATTACK_KINDS or (species in ATTACK_KINDS and kind != species):
        raise ValueError(f"kind: expected one of {ATTACK_KINDS} (equal to species for built-in ones), got {kind!r}")
    index = _check_index(index)
    rng = _rng_for(species, index)
    name, ranges = _FAMILIES[kind][index % len(_FAMILIES[kind])]
    values = _draw(rng, {**_HELD[kind], **ranges})
    extra = {"shading": float(rng.uniform(0.9, 1.0))} if kind == "mask" else {}
    material = _MATERIAL_TYPES[kind](name=name, **values, **extra)
    return Instrument(id=f"{species}-{index:02d}", species=species, kind=kind, material=material)


@dataclass(frozen=True)
class SceneSpec:
    """One scene: who or what is in front of the camera, where, and the room around it.

    ``distance_m`` and ``centre`` place the face box (brow to chin, ear to ear) at frame 0; head
    sway moves it over frames. ``draw_scene`` draws the room fields at random. ``subject`` is whose
    face it is (an attack shows the subject's face too); ``instrument`` the print, screen or mask
    used (its kind must be the scene's). None for either: the base photo, the default materials.
    """

    kind: str
    domain: int
    distance_m: float = 0.6
    centre: Tuple[float, float] = (320.0, 240.0)  # face box centre, pixels
    wall_m: float = 2.2
    wall_slope_m: float = 0.0  # depth change across the image width (the wall is not square-on)
    wall_colour: Tuple[float, float, float] = (150.0, 140.0, 125.0)
    clothing: Tuple[float, float, float] = (60.0, 70.0, 90.0)
    brightness: float = 1.0
    sheet_bend_m: float = 0.0  # print: sag of the sheet one face width from its centre
    sheet_tilt_m: float = 0.0  # print/replay: depth change per face width across the sheet
    motion_phase: float = 0.0
    subject: Optional[Subject] = None
    instrument: Optional[Instrument] = None
    sheet_pitch_m: float = 0.0  # print/replay: depth change per face width from top to bottom

    def __post_init__(self) -> None:
        if self.kind not in SCENE_KINDS:
            raise ValueError(f"SceneSpec.kind: expected one of {SCENE_KINDS}, got {self.kind!r}")
        _check_cast("SceneSpec", self.kind, self.subject, self.instrument)
        if not isinstance(self.domain, (int, np.integer)) or not 0 <= self.domain < len(DOMAINS):
            raise ValueError(f"SceneSpec.domain: expected an int in 0..{len(DOMAINS) - 1}, got {self.domain!r}")
        if not 0.2 <= self.distance_m <= self.wall_m - 0.3:
            raise ValueError(f"SceneSpec.distance_m: expected 0.2 m up to 0.3 m before the wall ({self.wall_m} m), "
                             f"got {self.distance_m!r}")
        if not self.brightness > 0:
            raise ValueError(f"SceneSpec.brightness: expected a positive gain, got {self.brightness!r}")


@dataclass(frozen=True)
class Segment:
    """A scripted stretch of a sequence: one kind for ``num_frames``, distance moving linearly; who is
    in front of the camera (``subject``) and, for an attack, with what (``instrument``)."""

    kind: str
    num_frames: int
    domain: int = 0
    distance_start_m: float = 0.6
    distance_end_m: Optional[float] = None  # None: stays at distance_start_m
    centre: Optional[Tuple[float, float]] = None  # None: drawn near the image centre
    subject: Optional[Subject] = None
    instrument: Optional[Instrument] = None

    def __post_init__(self) -> None:
        if self.kind not in SCENE_KINDS:
            raise ValueError(f"Segment.kind: expected one of {SCENE_KINDS}, got {self.kind!r}")
        _check_cast("Segment", self.kind, self.subject, self.instrument)
        if not isinstance(self.num_frames, int) or self.num_frames < 1:
            raise ValueError(f"Segment.num_frames: expected a positive int, got {self.num_frames!r}")


def _check_cast(owner: str, kind: str, subject: Optional[Subject], instrument: Optional[Instrument]) -> None:
    """Who and what a scene may hold: a Subject unless empty, an Instrument of the scene's kind for attacks."""
    if subject is not None and (not isinstance(subject, Subject) or kind == "empty"):
        raise ValueError(f"{owner}.subject: expected None or a Subject (and nobody in an empty scene), got "
                         f"{subject!r} in a {kind!r} scene")
    if instrument is not None and (not isinstance(instrument, Instrument) or instrument.kind != kind):
        raise ValueError(f"{owner}.instrument: expected None or an Instrument of kind {kind!r} (live and empty "
                         f"scenes hold none), got {instrument!r}")


def draw_scene(
    rng: np.random.Generator, kind: str, domain: int, config: SyntheticConfig = SyntheticConfig(),
    distance_m: Optional[float] = None, centre: Optional[Tuple[float, float]] = None,
    subject: Optional[Subject] = None, instrument: Optional[Instrument] = None,
) -> SceneSpec:
    """Draw a random scene of ``kind`` in ``domain``; ``distance_m``/``centre`` fix those instead.

    An ``instrument`` draws the sheet's bend, tilt and pitch from its material's ranges.
    """
    if not 0 <= domain < len(DOMAINS):
        raise ValueError(f"domain: expected an int in 0..{len(DOMAINS) - 1}, got {domain!r}")
    style = DOMAINS[domain]
    held = instrument is not None and kind in ("print", "replay")
    bend_range = instrument.material.bend_m if held and kind == "print" else (0.0, 0.02)
    tilt_range = instrument.material.tilt_m if held else (-0.02, 0.02)
    w, h = config.width, config.height
    drawn_distance = rng.uniform(*style.distance_m)
    drawn_centre = (w / 2 + rng.uniform(-0.12, 0.12) * w, h / 2 + rng.uniform(-0.08, 0.08) * h)
    return SceneSpec(
        kind=kind, domain=int(domain),
        distance_m=float(drawn_distance if distance_m is None else distance_m),
        centre=tuple(float(v) for v in (drawn_centre if centre is None else centre)),
        wall_m=float(rng.uniform(1.5, 3.0)), wall_slope_m=float(rng.uniform(-0.3, 0.3)),
        wall_colour=tuple(float(v) for v in np.float64([150, 140, 125]) + rng.uniform(-25, 25, 3)),
        clothing=tuple(float(v) for v in rng.uniform(25, 140, 3)),
        brightness=float(rng.uniform(0.85, 1.15)),
        sheet_bend_m=float(rng.uniform(*bend_range)) if kind == "print" else 0.0,
        sheet_tilt_m=float(rng.uniform(*tilt_range)) if kind in ("print", "replay") else 0.0,
        motion_phase=float(rng.uniform(0, 2 * np.pi)),
        subject=subject, instrument=instrument,
        # drawn only with an instrument: scenes without one keep the random stream they always had
        sheet_pitch_m=float(rng.uniform(*instrument.material.pitch_m)) if held else 0.0,
    )


def render_scene(
    scene: SceneSpec, frame_index: int, rng: np.random.Generator, config: SyntheticConfig = SyntheticConfig(),
    texture: Optional[FaceTexture] = None,
) -> FrameSet:
    """Render frame ``frame_index`` of ``scene``; sensor noise and holes are drawn from ``rng``.

    Args:
        scene: what is in front of the camera.
        frame_index: frame number; sets timestamps and the head sway.
        rng: the only source of randomness (same state, same frameset, bit for bit).
        config: image size and camera.
        texture: the base face; default the astronaut photo. ``scene.subject`` is derived from it.

    Returns:
        A FrameSet (uint8 RGB, uint16 depth, uint8 IR, origin "synthetic") with ``metadata["truth"]``:
        "box" (face box, None for an empty scene), "label" ("live"/"attack", None when empty),
        "attack" (the kind), "species" (the instrument's, else the kind; None when live or empty),
        "subject" and "instrument" (ids, None without), "domain", "distance_m".
    """
    base = texture if texture is not None else load_default_texture()
    texture = render.cached_subject_texture(base, scene.subject)
    style = DOMAINS[scene.domain]
    box, distance = _pose(scene, frame_index, config, texture)
    h, w = config.height, config.width
    wall = render.cut(render.wall_bank(h, w), rng, h, w)
    light = tuple(gain * scene.brightness for gain in style.light)
    rgb = [wall * np.float32(c * g) for c, g in zip(scene.wall_colour, light)]
    depth_m = np.empty((h, w), np.float32)
    depth_m[:] = scene.wall_m + scene.wall_slope_m * (np.arange(w, dtype=np.float32) / w - 0.5)
    ir = wall * np.float32(32.0 * style.ir_gain)  # the wall is beyond most of the projector's light
    if scene.kind != "empty":
        # Active IR falls off with distance; the square root keeps near faces out of saturation.
        ir_gain = style.ir_gain * float(np.sqrt(_REFERENCE_DISTANCE_M / distance))
        canvas = render.Canvas(rgb, depth_m, ir, light, ir_gain, texture, box, distance,
                                (config.fx, config.width / 2, config.height / 2))
        hand_held = scene.kind in ("print", "replay")
        # Whoever presents a print or screen or wears a mask is someone else: the base neck, not the subject's.
        neck = scene.subject.neck_width if scene.subject is not None and scene.kind == "live" else \
            render.BASE_NECK_WIDTH
        render.paint_torso(canvas, 0.30 if hand_held else 0.10, scene.clothing, neck)
        material = scene.instrument.material if scene.instrument is not None else None
        if scene.kind == "print":
            render.paint_print(canvas, material or PaperMaterial(), scene.sheet_bend_m, scene.sheet_tilt_m,
                                scene.sheet_pitch_m)
        elif scene.kind == "replay":
            render.paint_screen(canvas, material or ScreenMaterial(), scene.sheet_bend_m, scene.sheet_tilt_m,
                                 scene.sheet_pitch_m, scene.motion_phase)
        else:
            render.paint_head(canvas, scene.kind == "live", scene.subject, material or MaskMaterial())
    rgb_u8, depth, ir_u8 = _sense(rgb, depth_m, ir, scene, distance, rng, config)
    return _frameset(rgb_u8, depth, ir_u8, scene, None if scene.kind == "empty" else box, distance,
                     frame_index, config)


def _pose(scene: SceneSpec, frame_index: int, config: SyntheticConfig,
          texture: FaceTexture) -> Tuple[render.Box, float]:
    """Face box and distance at ``frame_index``: the scene's placement plus a slow sway."""
    t = frame_index / config.fps
    sway = 0.006 if scene.kind in ("print", "replay") else 0.015  # face widths: a held sheet trembles less
    distance = scene.distance_m + 0.004 * np.sin(2 * np.pi * 0.2 * t + scene.motion_phase)
    face_w = config.fx * FACE_WIDTH_M / distance
    if scene.subject is not None:
        face_w *= scene.subject.width_scale
    face_h = face_w * (texture.face_box[3] - texture.face_box[1]) / (texture.face_box[2] - texture.face_box[0])
    cx = scene.centre[0] + sway * face_w * np.sin(2 * np.pi * 0.4 * t + scene.motion_phase)
    cy = scene.centre[1] + 0.5 * sway * face_w * np.sin(2 * np.pi * 0.27 * t + 1.3 * scene.motion_phase)
    box = (cx - face_w / 2, cy - face_h / 2, cx + face_w / 2, cy + face_h / 2)
    return tuple(float(v) for v in box), float(distance)


def _sense(rgb: Sequence[np.ndarray], depth_m: np.ndarray, ir: np.ndarray, scene: SceneSpec, distance: float,
           rng: np.random.Generator, config: SyntheticConfig) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the sensors make of the scene: noise, depth holes, quantisation (inputs are overwritten)."""
    style = DOMAINS[scene.domain]
    h, w = depth_m.shape
    noise = render.noise_bank(h, w)
    for plane in rgb:
        plane += np.float32(style.rgb_noise) * render.cut(noise, rng, h, w)
        np.maximum(plane, 0.0, out=plane)
    rgb_u8 = cv2.merge([cv2.convertScaleAbs(plane) for plane in rgb])  # saturates at 255
    near = depth_m < scene.wall_m - 0.2
    sigma_m = np.float32(1e-3 * style.depth_noise_mm / _REFERENCE_DISTANCE_M**2)
    depth_m += sigma_m * depth_m * depth_m * render.cut(noise, rng, h, w)  # stereo noise grows with z²
    depth_m *= np.float32(1.0 / config.depth_scale_m)
    depth_m += np.float32(0.5)
    depth = np.minimum(depth_m, 65535.0).astype(np.uint16)  # non-negative: + 0.5 then truncation rounds
    holes = render.cut(noise, rng, h, w) > np.float32(NormalDist().inv_cdf(1.0 - style.hole_fraction))
    # Depth is seen from the left imager: the right imager cannot see the wall just left of a near
    # object, nor the image's left edge, so the sensor reports no depth there.
    shadow_px = int(config.fx * _BASELINE_M * (1.0 / distance - 1.0 / scene.wall_m)) if near.any() else 0
    holes |= render.stereo_shadow(near, shadow_px)
    holes[:, :int(config.fx * _BASELINE_M / scene.wall_m)] = True
    depth[holes] = 0
    ir += np.float32(2.0) * render.cut(noise, rng, h, w)
    np.maximum(ir, 0.0, out=ir)
    return rgb_u8, depth, cv2.convertScaleAbs(ir)


def _frameset(rgb: np.ndarray, depth: np.ndarray, ir: np.ndarray, scene: SceneSpec, box: Optional[render.Box],
              distance: float, frame_index: int, config: SyntheticConfig) -> FrameSet:
    intr = Intrinsics(config.width, config.height, config.fx, config.fx, config.width / 2, config.height / 2)
    stamp = frame_index * 1000.0 / config.fps
    empty = scene.kind == "empty"
    attack = None if empty or scene.kind == "live" else scene.kind
    truth: Dict[str, Any] = {
        "box": None if box is None else tuple(float(v) for v in box),
        "label": None if empty else ("live" if scene.kind == "live" else "attack"),
        "attack": attack, "species": scene.instrument.species if scene.instrument is not None else attack,
        "subject": None if scene.subject is None else scene.subject.id,
        "instrument": None if scene.instrument is None else scene.instrument.id,
        "domain": scene.domain, "distance_m": float(distance),
    }
    return FrameSet(
        rgb=rgb, depth=depth, ir=ir, depth_scale_m=config.depth_scale_m,
        timestamps_ms={name: stamp for name in ("rgb", "depth", "ir")},
        frame_numbers={name: frame_index for name in ("rgb", "depth", "ir")},
        intrinsics={name: intr for name in ("rgb", "depth", "ir")}, depth_to_color=Extrinsics(),
        color_aligned_to_depth=True, serial=f"SYNTH-{scene.domain}", origin="synthetic",
        metadata={"source": "synthetic", "truth": truth},
    )


def render_frameset(
    kind: str, domain: int, rng: np.random.Generator, frame_index: int, config: SyntheticConfig = SyntheticConfig(),
    texture: Optional[FaceTexture] = None, distance_m: Optional[float] = None,
    centre: Optional[Tuple[float, float]] = None, subject: Optional[Subject] = None,
    instrument: Optional[Instrument] = None,
) -> FrameSet:
    """Draw a scene of ``kind`` in ``domain`` and render one frame of it (both from ``rng``).

    Args:
        kind: one of ``SCENE_KINDS``.
        domain: 0..3.
        rng: the only source of randomness.
        frame_index: frame number (timestamps, head sway).
        config: image size and camera.
        texture: the face; default the astronaut photo.
        distance_m: face distance; default drawn from the domain's range.
        centre: face box centre in pixels; default drawn near the image centre.
        subject: whose face (default: the base photo's).
        instrument: the attack's print, screen or mask, of kind ``kind`` (default materials without).

    Returns:
        The FrameSet, ground truth in ``metadata["truth"]``.

    Raises:
        ValueError: unknown kind or domain, a distance outside 0.2 m .. the wall, or an instrument of
            another kind.

    Example:
        >>> fs = render_frameset("print", 0, np.random.default_rng(0), 0, subject=create_subject(3),
        ...                      instrument=create_instrument("print", 1))
        >>> fs.metadata["truth"]["subject"], fs.metadata["truth"]["instrument"]
        ('S003', 'print-01')
    """
    scene = draw_scene(rng, kind, domain, config, distance_m, centre, subject, instrument)
    return render_scene(scene, frame_index, rng, config, texture)


def render_sequence(
    segments: Iterable[Segment], seed: int = 0, config: SyntheticConfig = SyntheticConfig(),
    face_image: Optional[np.ndarray] = None,
) -> Iterator[FrameSet]:
    """Render scripted segments back to back: one room, one timeline, frame numbers running on.

    Example: somebody walking up, then holding up a print (of subject 4's face, on glossy paper)::

        render_sequence([Segment("empty", 15), Segment("live", 60, distance_start_m=1.0, distance_end_m=0.5),
                         Segment("print", 60, distance_start_m=0.55, subject=create_subject(4),
                                 instrument=create_instrument("print", 1))], seed=7)

    Args:
        segments: the script.
        seed: seeds the room, the placement and the sensor noise.
        config: image size and camera.
        face_image: RGB uint8 photo of a face; default the astronaut photo.

    Yields:
        FrameSets; ``truth["distance_m"]`` follows each segment's distance ramp.
    """
    segments = list(segments)
    for i, segment in enumerate(segments):
        if not isinstance(segment, Segment):
            raise TypeError(f"segments[{i}]: expected a Segment, got {type(segment).__name__}")
    texture = load_default_texture() if face_image is None else create_face_texture(face_image)
    rng = np.random.default_rng(seed)
    room: Optional[SceneSpec] = None
    index = 0
    for segment in segments:
        scene = draw_scene(rng, segment.kind, segment.domain, config, segment.distance_start_m, segment.centre,
                           segment.subject, segment.instrument)
        if room is None:
            room = scene
        scene = dataclasses.replace(scene, wall_m=room.wall_m, wall_slope_m=room.wall_slope_m,
                                    wall_colour=room.wall_colour)
        end = segment.distance_start_m if segment.distance_end_m is None else segment.distance_end_m
        for k in range(segment.num_frames):
            fraction = k / max(1, segment.num_frames - 1)
            distance = segment.distance_start_m + fraction * (end - segment.distance_start_m)
            yield render_scene(dataclasses.replace(scene, distance_m=distance), index, rng, config, texture)
            index += 1


class SyntheticCamera:
    """An iterator (and context manager) of synthetic framesets, one fresh random scene each.

    Args:
        seed: the whole stream is a function of the seed.
        config: image size and camera.
        classes: classes to draw from, uniformly per frameset (a subset of ``CLASSES``); default all
            of them, or with ``instruments`` "live" and the kinds the instruments cover.
        domains: domains to draw from, uniformly per frameset.
        num_frames: stop after this many (None: endless).
        face_image: an RGB uint8 photo with a frontal face, instead of the astronaut photo.
        subjects: whose faces to draw from, uniformly per frameset (None: the base photo's face).
        instruments: attack instruments; an attack frameset draws one of the drawn class's kind.
            Every attack class drawn needs at least one (None: the default materials).

    Raises:
        ValueError: unknown classes or domains, negative num_frames, no face in ``face_image``, an
            attack class no instrument covers, or one id naming two different subjects or instruments.
        TypeError: ``subjects`` or ``instruments`` holding something else.

    Example:
        >>> camera = SyntheticCamera(seed=1, num_frames=8, subjects=[create_subject(i) for i in range(4)],
        ...                          instruments=[create_instrument("replay", i) for i in range(2)])
        >>> sorted({fs.metadata["truth"]["label"] for fs in camera})
        ['attack', 'live']
    """

    is_realtime = False  # framesets are made at the consumer's pace

    def __init__(self, seed: int = 0, config: SyntheticConfig = SyntheticConfig(),
                 classes: Optional[Sequence[str]] = None, domains: Sequence[int] = (0, 1, 2, 3),
                 num_frames: Optional[int] = None, face_image: Optional[np.ndarray] = None,
                 subjects: Optional[Sequence[Subject]] = None,
                 instruments: Optional[Sequence[Instrument]] = None) -> None:
        self.subjects = None if subjects is None else _unique("subjects", subjects, Subject)
        self.instruments = None if instruments is None else _unique("instruments", instruments, Instrument)
        if classes is None:
            covered = {i.kind for i in self.instruments or ()}
            classes = CLASSES if self.instruments is None else tuple(c for c in CLASSES if c == "live" or c in covered)
        classes = (classes,) if isinstance(classes, str) else tuple(classes)
        domains = (domains,) if isinstance(domains, (int, np.integer)) else tuple(domains)
        if not classes or any(c not in CLASSES for c in classes):
            raise ValueError(f"classes: expected a non-empty subset of {CLASSES}, got {list(classes)}")
        if not domains or any(not isinstance(d, (int, np.integer)) or not 0 <= d < len(DOMAINS) for d in domains):
            raise ValueError(f"domains: expected a non-empty subset of 0..{len(DOMAINS) - 1}, got {list(domains)}")
        if num_frames is not None and (not isinstance(num_frames, (int, np.integer)) or num_frames < 0):
            raise ValueError(f"num_frames: expected None or an int >= 0, got {num_frames!r}")
        self._by_kind: Dict[str, List[Instrument]] = {}
        if self.instruments is not None:
            for kind in classes:
                if kind != "live":
                    self._by_kind[kind] = [i for i in self.instruments if i.kind == kind]
                    if not self._by_kind[kind]:
                        raise ValueError(f"instruments: none of kind {kind!r}, but classes include it; add one or "
                                         f"leave {kind!r} out of classes")
        self.seed, self.config, self.classes, self.domains = seed, config, classes, tuple(int(d) for d in domains)
        self.num_frames = num_frames
        self.texture = load_default_texture() if face_image is None else create_face_texture(face_image)

    def __enter__(self) -> "SyntheticCamera":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release; present so every source closes alike."""

    def __iter__(self) -> Iterator[FrameSet]:
        rng = np.random.default_rng(self.seed)
        index = 0
        while self.num_frames is None or index < self.num_frames:
            kind = self.classes[int(rng.integers(len(self.classes)))]
            domain = self.domains[int(rng.integers(len(self.domains)))]
            # Drawn only when asked for: a camera without subjects or instruments keeps its old stream.
            subject = None if self.subjects is None else self.subjects[int(rng.integers(len(self.subjects)))]
            choices = self._by_kind.get(kind)
            instrument = None if not choices else choices[int(rng.integers(len(choices)))]
            yield render_frameset(kind, domain, rng, index, self.config, self.texture, subject=subject,
                                  instrument=instrument)
            index += 1


def _unique(name: str, items: Sequence[Any], expected: type) -> Tuple[Any, ...]:
    """``items`` as a tuple, refused when empty, of another type, or when one id names two different items."""
    items = tuple(items)
    if not items:
        raise ValueError(f"{name}: expected None or a non-empty sequence of {expected.__name__}")
    by_id: Dict[str, Any] = {}
    for i, item in enumerate(items):
        if not isinstance(item, expected):
            raise TypeError(f"{name}[{i}]: expected a {expected.__name__}, got {type(item).__name__}")
        if by_id.setdefault(item.id, item) != item:
            raise ValueError(f"{name}[{i}]: id {item.id!r} already names a different {expected.__name__}; "
                             "ids keep training splits apart, so each must be unique")
    return items
