"""What stands before the synthetic camera and where: scenes, scripted segments, domains and the camera's size.

``SceneSpec`` is one scene (``draw_scene`` draws one at random), ``Segment`` a stretch of a scripted
sequence, ``SecondFace`` another face in view; ``DOMAINS`` are the acquisition domains and
``LIGHTINGS`` the room light presets. Each checks its fields at construction and names the one
that is wrong. ``synthetic`` renders them and re-exports these names.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from .cast import ATTACK_KINDS, Instrument, Subject
from .sheet import SHEET_FOLDS

__all__ = [
    "CLASSES", "SCENE_KINDS", "FACE_WIDTH_M", "BESIDE_FACE_WIDTHS", "LIGHTINGS", "DOMAINS", "DOMAIN_NAMES",
    "PROTOCOL_DOMAINS", "DomainStyle", "domain_config", "domain_index",
    "SyntheticConfig", "SecondFace", "SceneSpec", "Segment", "draw_scene",
]

CLASSES = ("live",) + ATTACK_KINDS
SCENE_KINDS = CLASSES + ("empty",)  # "empty": nobody in front of the camera (scripted sequences)
FACE_WIDTH_M = 0.15  # face-detector box width (ear to ear) of an adult face
# Room light presets for draw_scene: the ranges brightness (the face's light, after the camera's exposure)
# and backlight (a lit window or wall behind the face) are drawn from. Backlit: the exposure set by the
# bright background leaves the face dark.
LIGHTINGS = {"room": dict(brightness=(0.85, 1.15), backlight=(0.0, 0.0)),
             "dim": dict(brightness=(0.25, 0.35), backlight=(0.0, 0.0)),
             "backlit": dict(brightness=(0.45, 0.6), backlight=(0.8, 1.2))}
BESIDE_FACE_WIDTHS = 1.7  # a second face's centre from the scene's face: a print's half width + a head's, apart


@dataclass(frozen=True)
class SecondFace:
    """A print or screen of another face held up beside the scene's face: as large, as far, fully in view.

    ``subject`` is whose face it shows (None: the base photo's), ``instrument`` the print or screen
    (of kind ``kind``; None: the default paper or screen), ``side`` where it is: 1 right of the
    scene's face in the image, -1 left. Something in view is an attack, so the frameset is one.
    """

    kind: str = "print"
    subject: Optional[Subject] = None
    instrument: Optional[Instrument] = None
    side: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("print", "replay"):
            raise ValueError(f"SecondFace.kind: expected 'print' or 'replay', got {self.kind!r}")
        _check_cast("SecondFace", self.kind, self.subject, self.instrument)
        if self.side not in (-1, 1) or isinstance(self.side, bool):
            raise ValueError(f"SecondFace.side: expected 1 (right of the face) or -1 (left), got {self.side!r}")


@dataclass(frozen=True)
class DomainStyle:
    """What one capture domain changes: the camera model, its projector, the room's light, the distance.

    Domains 0-3 are the four D435 units of the ``syn:`` protocols; the named capture domains after them
    (``DOMAIN_NAMES``) add other camera models (baseline and colour field of view), the projector off,
    sunlight's near-infrared and near or far faces, for leave-one-domain-out benchmarks.
    """

    depth_noise_mm: float  # σ at 0.6 m; stereo noise grows with z²
    hole_fraction: float  # random depth dropouts, face included
    ir_gain: float  # projector power × IR exposure (with the projector off: the room's near-infrared alone)
    light: Tuple[float, float, float]  # RGB gains of the room light (colour temperature)
    distance_m: Tuple[float, float]  # range the face distance is drawn from
    rgb_noise: float  # σ of colour sensor noise, 0..255 units
    name: str = ""
    baseline_m: float = 0.05  # stereo baseline: the width of the depth shadow beside near objects
    fx: float = 0.0  # focal length in pixels at the camera's size (0: SyntheticConfig.fx)
    # Share of the IR image's light that comes from the projector's dot pattern (0: projector off, no dots)
    dot_contrast: float = 0.25
    # Ambient near-infrared (sunlight) as a share of the projector's light on the face: it brightens IR
    # and washes the dots out by 1 / (1 + ambient_ir)
    ambient_ir: float = 0.0

    @property
    def emitter(self) -> bool:
        """Whether the projector is on (its dots are in the IR image)."""
        return self.dot_contrast > 0.0


DOMAINS = (
    DomainStyle(1.0, 0.01, 1.0, (1.0, 1.0, 1.0), (0.40, 0.70), 2.0, name="d435-a"),
    DomainStyle(1.8, 0.03, 0.8, (1.08, 1.0, 0.85), (0.50, 0.85), 4.0, name="d435-b"),
    DomainStyle(2.4, 0.05, 1.2, (0.88, 0.97, 1.1), (0.45, 0.80), 5.0, name="d435-c"),
    DomainStyle(1.4, 0.02, 0.9, (1.0, 0.92, 0.95), (0.60, 1.00), 3.0, name="d435-d"),
    # D415: the same colour camera, a 55 mm baseline and a narrow-field, less noisy depth; faces out to 1.2 m
    DomainStyle(0.8, 0.01, 1.1, (1.0, 0.98, 0.95), (0.50, 1.20), 2.5, name="d415", baseline_m=0.055),
    # D455: 95 mm baseline (less depth noise), a wide colour lens (fx 390 at 640×480): smaller faces
    DomainStyle(0.7, 0.015, 0.9, (0.95, 1.0, 1.05), (0.40, 0.85), 3.0, name="d455", baseline_m=0.095, fx=390.0),
    # The projector off: no dots, IR from the room's near-infrared only, stereo on bare skin far noisier
    DomainStyle(4.0, 0.10, 0.45, (1.0, 1.0, 1.0), (0.40, 0.80), 3.0, name="d435-emitter-off", dot_contrast=0.0),
    # Sunlight through a window: near-infrared everywhere, the dots washed out, a warm bright room
    DomainStyle(1.6, 0.03, 1.0, (1.15, 1.08, 0.95), (0.40, 0.80), 2.0, name="d435-sunlight", ambient_ir=0.6),
    # Close up with a short exposure: large faces, darker colour and IR
    DomainStyle(1.0, 0.02, 0.7, (0.75, 0.75, 0.75), (0.32, 0.45), 5.0, name="d435-near"),
)
DOMAIN_NAMES = tuple(style.name for style in DOMAINS)
PROTOCOL_DOMAINS = 4  # domains 0..3: the syn: protocols' four D435 units


def domain_config(config: "SyntheticConfig", domain: int) -> "SyntheticConfig":
    """``config`` as domain ``domain``'s camera sees: its own focal length where it has one."""
    fx = DOMAINS[domain].fx
    return config if not fx or fx == config.fx else dataclasses.replace(config, fx=fx)


def domain_index(name: str) -> int:
    """The index of the capture domain called ``name`` (one of ``DOMAIN_NAMES``).

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if name not in DOMAIN_NAMES:
        raise ValueError(f"domain {name!r}: expected one of {', '.join(DOMAIN_NAMES)}")
    return DOMAIN_NAMES.index(name)


@dataclass(frozen=True)
class SyntheticConfig:
    """Image size, frame rate, the pinhole camera shared by all three streams and the camera's serial.

    The default fx (a D435 colour camera at 640×480) puts a face at 0.4-1.0 m at ~90-230 px wide.
    Every frameset carries ``serial``, whatever its domain: a device profile calibrated on a
    collection of the synthetic camera (``collect``) is bound to it, and must hold for ``check``,
    ``record`` and ``live`` on the same camera.
    """

    width: int = 640
    height: int = 480
    fps: float = 30.0
    fx: float = 615.0
    depth_scale_m: float = 0.001
    serial: str = "SYNTH-1"
    # False: the IR image without the projector's dot pattern (the flood of light alone), to look at
    # the other near-infrared physics (shading, gloss, glints) without the dots in the way
    projector_dots: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.serial, str) or not self.serial:
            raise ValueError(f"SyntheticConfig.serial: expected a non-empty string, got {self.serial!r}")
        if not isinstance(self.projector_dots, bool):
            raise ValueError(f"SyntheticConfig.projector_dots: expected a bool, got {self.projector_dots!r}")
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
class SceneSpec:
    """One scene: who or what is in front of the camera, where, and the room around it.

    ``distance_m`` and ``centre`` place the face box (brow to chin, ear to ear) at frame 0; head
    sway moves it over frames. ``draw_scene`` draws the room fields at random. ``subject`` is whose
    face it is (an attack shows the subject's face too); ``instrument`` the print, screen or mask
    used (its kind must be the scene's). None for either: the base photo, the default materials.
    A print's sheet may be folded or rolled (``sheet_fold``, ``sheet_fold_m``: see ``SHEET_FOLDS``);
    an eyes-cut print (its material's ``eye_holes``) is worn by ``wearer`` (None: the base photo's person).
    ``yaw_deg``/``pitch_deg`` turn a live or mask head, ``second_face`` puts another face in view
    beside this one, ``backlight`` lights the wall behind (``LIGHTINGS`` holds presets for draw_scene).
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
    sheet_fold: str = "none"  # print: one of SHEET_FOLDS
    sheet_fold_m: float = 0.0  # print: how much farther the face's edges lie than the crease (0.01-0.08 m)
    wearer: Optional[Subject] = None  # eyes-cut print: whose live face is behind it
    yaw_deg: float = 0.0  # live/mask: the head turned, -40..40°; positive: the nose moves right in the image
    pitch_deg: float = 0.0  # live/mask: the head tilted, -20..20°; positive: the face lifts, the nose moves up
    second_face: Optional[SecondFace] = None  # another face in view beside this one
    backlight: float = 0.0  # light behind the face: the wall adds this × white in RGB (a window), 0..2

    def __post_init__(self) -> None:
        if self.kind not in SCENE_KINDS:
            raise ValueError(f"SceneSpec.kind: expected one of {SCENE_KINDS}, got {self.kind!r}")
        if isinstance(self.backlight, bool) or not isinstance(self.backlight, (int, float, np.integer, np.floating)) \
                or not 0.0 <= self.backlight <= 2.0:
            raise ValueError(f"SceneSpec.backlight: expected a gain in 0..2 (1: the wall behind turns white), got "
                             f"{self.backlight!r}")
        _check_pose("SceneSpec", self.kind, self.yaw_deg, self.pitch_deg)
        _check_second_face("SceneSpec", self.kind, self.second_face)
        _check_cast("SceneSpec", self.kind, self.subject, self.instrument)
        _check_wearer("SceneSpec", self.kind, self.instrument, self.wearer)
        if self.sheet_fold not in SHEET_FOLDS:
            raise ValueError(f"SceneSpec.sheet_fold: expected one of {SHEET_FOLDS}, got {self.sheet_fold!r}")
        folded = self.sheet_fold != "none"
        number = isinstance(self.sheet_fold_m, (int, float, np.integer, np.floating)) and not isinstance(
            self.sheet_fold_m, bool)
        if not number or (folded and (self.kind != "print" or not 0.01 <= self.sheet_fold_m <= 0.08)) or (
                not folded and self.sheet_fold_m != 0.0):
            raise ValueError(f"SceneSpec.sheet_fold_m: expected 0.01..0.08 m for a folded or rolled print and 0 "
                             f"otherwise, got {self.sheet_fold_m!r} with sheet_fold {self.sheet_fold!r} in a "
                             f"{self.kind!r} scene")
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
    wearer: Optional[Subject] = None  # eyes-cut print: whose live face is behind it
    yaw_deg: float = 0.0  # live/mask: the head turned (SceneSpec.yaw_deg)
    pitch_deg: float = 0.0  # live/mask: the head tilted (SceneSpec.pitch_deg)
    second_face: Optional[SecondFace] = None  # another face in view beside this one
    lighting: str = "room"  # one of LIGHTINGS

    def __post_init__(self) -> None:
        if self.kind not in SCENE_KINDS:
            raise ValueError(f"Segment.kind: expected one of {SCENE_KINDS}, got {self.kind!r}")
        if self.lighting not in LIGHTINGS:
            raise ValueError(f"Segment.lighting: expected one of {tuple(LIGHTINGS)}, got {self.lighting!r}")
        _check_pose("Segment", self.kind, self.yaw_deg, self.pitch_deg)
        _check_second_face("Segment", self.kind, self.second_face)
        _check_cast("Segment", self.kind, self.subject, self.instrument)
        _check_wearer("Segment", self.kind, self.instrument, self.wearer)
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


def _check_pose(owner: str, kind: str, yaw_deg: Any, pitch_deg: Any) -> None:
    """Head pose within what the renderer's turned height field shows well, on heads only."""
    for name, value, limit in (("yaw_deg", yaw_deg, 40.0), ("pitch_deg", pitch_deg, 20.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
                -limit <= value <= limit) or (value and kind not in ("live", "mask")):
            raise ValueError(f"{owner}.{name}: expected degrees in -{limit:g}..{limit:g} on a live or mask head (a "
                             f"print or screen turns with its sheet_tilt_m), got {value!r} in a {kind!r} scene")


def _check_second_face(owner: str, kind: str, second_face: Any) -> None:
    if second_face is not None and (not isinstance(second_face, SecondFace) or kind == "empty"):
        raise ValueError(f"{owner}.second_face: expected None or a SecondFace beside a face (not in an empty scene), "
                         f"got {second_face!r} in a {kind!r} scene")


def _check_wearer(owner: str, kind: str, instrument: Optional[Instrument], wearer: Optional[Subject]) -> None:
    """A wearer only behind an eyes-cut print."""
    if wearer is not None and (not isinstance(wearer, Subject) or kind != "print" or instrument is None
                               or not instrument.material.eye_holes):
        raise ValueError(f"{owner}.wearer: expected None, or a Subject behind a print instrument with eye_holes, got "
                         f"{wearer!r} with instrument {None if instrument is None else instrument.id!r} in a {kind!r} "
                         "scene")


def draw_scene(
    rng: np.random.Generator, kind: str, domain: int, config: SyntheticConfig = SyntheticConfig(),
    distance_m: Optional[float] = None, centre: Optional[Tuple[float, float]] = None,
    subject: Optional[Subject] = None, instrument: Optional[Instrument] = None, wearer: Optional[Subject] = None,
    yaw_deg: float = 0.0, pitch_deg: float = 0.0, second_face: Optional[SecondFace] = None, lighting: str = "room",
    farthest_m: Optional[float] = None,
) -> SceneSpec:
    """Draw a random scene of ``kind`` in ``domain``; ``distance_m``/``centre`` fix those instead.

    The wall stands 1.5-3 m away, and at least 0.3 m behind the face and behind ``farthest_m`` (the
    farthest a sequence's later framesets bring a face into this room).

    An ``instrument`` draws the sheet's bend, tilt and pitch (and a print's fold depth) from its
    material's ranges; ``wearer`` wears an eyes-cut print; ``yaw_deg``/``pitch_deg`` turn a live or
    mask head; a ``second_face`` stands beside the face, the pair placed near the image centre
    (without ``centre``). ``lighting`` names the ``LIGHTINGS`` preset the light is drawn from.
    """
    if not 0 <= domain < len(DOMAINS):
        raise ValueError(f"domain: expected an int in 0..{len(DOMAINS) - 1}, got {domain!r}")
    if lighting not in LIGHTINGS:
        raise ValueError(f"lighting: expected one of {tuple(LIGHTINGS)}, got {lighting!r}")
    light = LIGHTINGS[lighting]
    style = DOMAINS[domain]
    held = instrument is not None and kind in ("print", "replay")
    bend_range = instrument.material.bend_m if held and kind == "print" else (0.0, 0.02)
    tilt_range = instrument.material.tilt_m if held else (-0.02, 0.02)
    fold = instrument.material.fold if held and kind == "print" else "none"
    w, h = config.width, config.height
    drawn_distance = rng.uniform(*style.distance_m)
    drawn_centre = (w / 2 + rng.uniform(-0.12, 0.12) * w, h / 2 + rng.uniform(-0.08, 0.08) * h)
    if second_face is not None:
        pair_px = BESIDE_FACE_WIDTHS * config.fx * FACE_WIDTH_M / float(drawn_distance if distance_m is None
                                                                         else distance_m)
        drawn_centre = (drawn_centre[0] - second_face.side * pair_px / 2, drawn_centre[1])
    distance = float(drawn_distance if distance_m is None else distance_m)
    nearest_wall = max(1.5, max(distance, farthest_m or 0.0) + 0.3)
    return SceneSpec(
        kind=kind, domain=int(domain), distance_m=distance,
        centre=tuple(float(v) for v in (drawn_centre if centre is None else centre)),
        wall_m=float(rng.uniform(nearest_wall, max(3.0, nearest_wall))), wall_slope_m=float(rng.uniform(-0.3, 0.3)),
        wall_colour=tuple(float(v) for v in np.float64([150, 140, 125]) + rng.uniform(-25, 25, 3)),
        clothing=tuple(float(v) for v in rng.uniform(25, 140, 3)),
        brightness=float(rng.uniform(*light["brightness"])),
        sheet_bend_m=float(rng.uniform(*bend_range)) if kind == "print" else 0.0,
        sheet_tilt_m=float(rng.uniform(*tilt_range)) if kind in ("print", "replay") else 0.0,
        motion_phase=float(rng.uniform(0, 2 * np.pi)),
        subject=subject, instrument=instrument,
        # drawn only with an instrument: scenes without one keep the random stream they always had
        sheet_pitch_m=float(rng.uniform(*instrument.material.pitch_m)) if held else 0.0,
        sheet_fold=fold, sheet_fold_m=float(rng.uniform(*instrument.material.fold_m)) if fold != "none" else 0.0,
        wearer=wearer, yaw_deg=yaw_deg, pitch_deg=pitch_deg, second_face=second_face,
        backlight=float(rng.uniform(*light["backlight"])) if lighting == "backlit" else 0.0,
    )
