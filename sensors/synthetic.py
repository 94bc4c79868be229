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
Here: domains, scenes and scripted segments, their rendering into framesets, and the camera. Subjects
(``create_subject``: faces, heads) and instruments (``create_instrument``: papers, screens, masks) come
from ``cast``, re-exported here; without them the camera renders what it always has, bit for bit.
Domains (0-3) change sensor noise, depth holes, IR gain, light colour and distance, so training can
hold one domain out. All streams are rendered from one viewpoint with one pinhole camera (colour
aligned to depth). Depth noise grows with z², and the D4xx stereo shadow (no depth just left of
near objects, and along the image's left edge) is there as on the real sensor.
"""
from __future__ import annotations

import dataclasses
import re
import zlib
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..frames import Extrinsics, FrameSet, Intrinsics
from . import cast, render
from .cast import (
    ATTACK_KINDS, HAIR_STYLES, Instrument, MaskMaterial, PaperMaterial, ScreenMaterial, Subject, create_instrument,
    create_subject, create_subject_texture,
)
from .render import FaceTexture, create_face_texture, load_default_texture

__all__ = [
    "CLASSES", "SCENE_KINDS", "ATTACK_KINDS", "DOMAINS", "HAIR_STYLES", "DomainStyle", "SyntheticConfig", "SceneSpec",
    "Segment", "FaceTexture", "Subject", "Instrument", "PaperMaterial", "ScreenMaterial", "MaskMaterial",
    "SyntheticCamera", "create_face_texture", "create_subject_texture", "load_default_texture", "create_subject",
    "create_instrument", "draw_scene", "render_scene", "render_frameset", "render_sequence", "presentation",
]

CLASSES = ("live",) + ATTACK_KINDS
SCENE_KINDS = CLASSES + ("empty",)  # "empty": nobody in front of the camera (scripted sequences)
FACE_WIDTH_M = 0.15  # face-detector box width (ear to ear) of an adult face
_BASELINE_M = 0.05  # D435 stereo baseline: sets the width of the depth shadow
_REFERENCE_DISTANCE_M = 0.6  # where DomainStyle.depth_noise_mm holds
_BASE_SHAPE = Subject("base")  # the head of scenes without a subject: the base photo's, a 3 cm nose


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

    def __post_init__(self) -> None:
        if not isinstance(self.serial, str) or not self.serial:
            raise ValueError(f"SyntheticConfig.serial: expected a non-empty string, got {self.serial!r}")
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
    texture = cast.cached_subject_texture(base, scene.subject)
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
            render.paint_head(canvas, scene.kind == "live", scene.subject or _BASE_SHAPE, material or MaskMaterial())
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
        color_aligned_to_depth=True, serial=config.serial, origin="synthetic",
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


def presentation(subject: str, species: str, instrument: str = "", frames: int = 30) -> Dict[str, Any]:
    """The ``SyntheticCamera`` options that stage one labelled presentation of a collection.

    Subject ``S<n>`` is ``create_subject(n)``; a bona fide presentation shows that face, an attack
    shows instrument ``<species>-<m>`` (``create_instrument(species, m)``). Every presentation is
    on one camera (domain 1), seeded by its labels, so the same labels give the same framesets.

    Example:
        >>> camera = SyntheticCamera(**presentation("S003", "print", "print-02", frames=2))
        >>> [fs.metadata["truth"]["label"] for fs in camera]
        ['attack', 'attack']

    Raises:
        ValueError: a subject id not of the form S<n>, a species the synthetic camera cannot render,
            or an attack instrument id not of the form <species>-<m>.
    """
    match = re.match(r"^S(\d+)$", subject)
    kind = "live" if species == "bona_fide" else species
    attack = re.match(rf"^{re.escape(species)}-(\d+)$", instrument) if instrument else None
    if match is None or (kind != "live" and (kind not in ATTACK_KINDS or attack is None)):
        raise ValueError(f"the synthetic camera stages subjects S<number> and instruments <species>-<number> of "
                         f"{', '.join(ATTACK_KINDS)} (e.g. S003, print-02); got {subject!r}, {species!r}, "
                         f"{instrument!r}")
    options: Dict[str, Any] = {"subjects": [create_subject(int(match.group(1)))], "classes": (kind,),
                               "domains": (1,), "num_frames": frames,
                               "seed": zlib.crc32(f"{subject}/{species}/{instrument}".encode())}
    if attack is not None:
        options["instruments"] = [create_instrument(species, int(attack.group(1)))]
    return options


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
