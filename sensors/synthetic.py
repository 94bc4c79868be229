"""A synthetic RGB-D-IR camera: a face in front of a wall, live or presented as an attack.

Seeded and deterministic. The physics the real sensors see is what separates the classes:
- live: the photo texture-mapped on a head relief (nose ~4 cm before the cheeks, sides ~9 cm
  back), skin IR with the face's structure and bright corneal glints, a little head sway;
- print: the photo on a flat or slightly bent, tilted sheet: planar depth, bright flat paper IR,
  lower contrast, halftone dots and paper grain in RGB;
- replay: the photo on a screen in a dark bezel: planar depth, almost no IR (screens emit no
  near-infrared), scanlines, moiré and a blue glow in RGB, unaffected by the room light;
- mask: head-shaped depth, but material IR (no skin variation, no glints: one value on the default
  mask, shaded by the camera's illuminator on an instrument's) and a smoothed RGB with a sheen;
  glasses and a wig worn over it stand before it (``wear``), as a person's glasses do.
Here: the rendering of scenes and scripted segments (``scene``: where who stands, the room, the
head's pose, a second face) into framesets, and the camera. Subjects (``create_subject``: faces,
heads) and instruments (``create_instrument``: papers, screens, masks, folded or hand-held prints)
come from ``cast``; these names are all re-exported here. Without subjects, instruments or the new
scene options the camera renders what it always has, bit for bit.
Domains (0-3) change sensor noise, depth holes, IR gain, light colour and distance, so training can
hold one domain out. All streams are rendered from one viewpoint with one pinhole camera (colour
aligned to depth). Depth noise grows with z², and the D4xx stereo shadow (no depth just left of
near objects, and along the image's left edge) is there as on the real sensor.
"""
from __future__ import annotations

import dataclasses
import re
import zlib
from statistics import NormalDist
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..frames import Extrinsics, FrameSet, Intrinsics
from . import cast, render, sheet
from .cast import (
    ATTACK_KINDS, HAIR_STYLES, MASK_COVERAGES, MASK_FAMILIES, SPECIES, Instrument, MaskMaterial, PaperMaterial,
    ScreenMaterial, Subject, create_instrument, create_subject, create_subject_texture,
)
from .render import FaceTexture, create_face_texture, load_default_texture
from .scene import (
    BESIDE_FACE_WIDTHS, CLASSES, DOMAIN_NAMES, DOMAINS, FACE_WIDTH_M, LIGHTINGS, PROTOCOL_DOMAINS, SCENE_KINDS,
    DomainStyle, SceneSpec, SecondFace, Segment, SyntheticConfig, domain_config, domain_index, draw_scene,
)
from .sheet import SHEET_FOLDS

__all__ = [
    "CLASSES", "SCENE_KINDS", "ATTACK_KINDS", "SPECIES", "SHEET_FOLDS", "LIGHTINGS", "DOMAINS", "DOMAIN_NAMES",
    "PROTOCOL_DOMAINS", "MASK_FAMILIES", "MASK_COVERAGES", "HAIR_STYLES", "domain_index", "domain_config",
    "DomainStyle", "SyntheticConfig", "SceneSpec", "SecondFace", "Segment", "FaceTexture", "Subject", "Instrument",
    "PaperMaterial", "ScreenMaterial", "MaskMaterial", "SyntheticCamera", "create_face_texture",
    "create_subject_texture", "load_default_texture", "create_subject", "create_instrument", "draw_scene",
    "render_scene", "render_frameset", "render_sequence", "presentation",
]

_REFERENCE_DISTANCE_M = 0.6  # where DomainStyle.depth_noise_mm holds
_BASE_SHAPE = Subject("base")  # the head of scenes without a subject: the base photo's, a 3 cm nose
_WORN_GAP_M = 0.01  # an eyes-cut print is held this close before the wearer's nose tip


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
        "subject" and "instrument" (ids, None without), "domain", "distance_m", "wearer" (who wears
        an eyes-cut print, None for the base photo's person or no such print), "yaw_deg" and
        "pitch_deg" (the head's turn; the box stays where the face facing the camera would be),
        "faces" (each face in view, the scene's first: its "box", "landmarks" ("eyes": the image's
        left one first, and "nose_tip", pixels, where the renderer put the glints and the nose,
        turned with the head, along a folded sheet), "label", "attack", "species", "subject" and
        "instrument"; a ``second_face`` adds one, and makes the frameset an attack),
        "brightness" and "backlight" (the room light).
    """
    base = texture if texture is not None else load_default_texture()
    texture = cast.cached_subject_texture(base, scene.subject)
    config = domain_config(config, scene.domain)
    faces: List[Dict[str, Any]] = []  # the truth of each face in view, the scene's own first
    style = DOMAINS[scene.domain]
    box, distance = _pose(scene, frame_index, config, texture)
    h, w = config.height, config.width
    wall = render.cut(render.wall_bank(h, w), rng, h, w)
    light = tuple(gain * scene.brightness for gain in style.light)
    rgb = [wall * np.float32(c * g) for c, g in zip(scene.wall_colour, light)]
    depth_m = np.empty((h, w), np.float32)
    depth_m[:] = scene.wall_m + scene.wall_slope_m * (np.arange(w, dtype=np.float32) / w - 0.5)
    ir = wall * np.float32(32.0 * style.ir_gain)  # the wall is beyond most of the projector's light
    scatter_mm = np.full((h, w), render.HARD_SCATTER_MM, np.float32)
    if scene.backlight:  # a window or lit wall: white in colour, sunlight's near-infrared in IR
        rgb = [plane + wall * np.float32(255.0 * scene.backlight) for plane in rgb]
        ir += wall * np.float32(90.0 * scene.backlight)
    if scene.kind != "empty":
        # Active IR falls off with distance; the square root keeps near faces out of saturation.
        ir_gain = style.ir_gain * float(np.sqrt(_REFERENCE_DISTANCE_M / distance))
        canvas = render.Canvas(rgb, depth_m, ir, light, ir_gain, texture, box, distance,
                               (config.fx, config.width / 2, config.height / 2), scatter_mm)
        hand_held = scene.kind in ("print", "replay")
        # Whoever presents a print or screen or wears a mask is someone else: the base neck, not the subject's.
        neck = scene.subject.neck_width if scene.subject is not None and scene.kind == "live" else \
            render.BASE_NECK_WIDTH
        material = scene.instrument.material if scene.instrument is not None else None
        if isinstance(material, PaperMaterial) and material.eye_holes:
            _paint_wearer(canvas, scene, base, config)
        else:
            render.paint_torso(canvas, 0.30 if hand_held else 0.10, scene.clothing, neck)
        if scene.second_face is not None:  # first, so that the face itself is on top where a bezel reaches it
            faces.append(_paint_second_face(canvas, scene, base, config))
        landmarks = _paint_face(canvas, scene, material)
        faces.insert(0, _face_truth(box, landmarks, scene.kind, scene.subject, scene.instrument))
    rgb_u8, depth, ir_u8 = _sense(rgb, depth_m, ir, scatter_mm, scene, distance, rng, config)
    return _frameset(rgb_u8, depth, ir_u8, scene, faces, distance, frame_index, config)


def _paint_face(canvas: render.Canvas, scene: SceneSpec, material: Optional[cast.Material]) -> np.ndarray:
    """The scene's own face (print, screen, mask or live head); returns its landmarks (render.face_points)."""
    shape = scene.subject or _BASE_SHAPE
    if scene.kind == "print":
        sheet.paint_print(canvas, material or PaperMaterial(), scene.sheet_bend_m, scene.sheet_tilt_m,
                          scene.sheet_pitch_m, scene.sheet_fold, scene.sheet_fold_m, shape.eye_spacing)
        landmarks = sheet.sheet_landmarks(canvas, shape, scene.sheet_bend_m, scene.sheet_tilt_m, scene.sheet_fold,
                                          scene.sheet_fold_m)
    elif scene.kind == "replay":
        sheet.paint_screen(canvas, material or ScreenMaterial(), scene.sheet_bend_m, scene.sheet_tilt_m,
                           scene.sheet_pitch_m, scene.motion_phase)
        landmarks = sheet.sheet_landmarks(canvas, shape)
    else:
        render.paint_head(canvas, scene.kind == "live", shape, material or MaskMaterial(), scene.yaw_deg,
                          scene.pitch_deg)
        landmarks = render.head_landmarks(canvas, shape, scene.yaw_deg, scene.pitch_deg)
    return landmarks


def _canvas_at(canvas: render.Canvas, texture: FaceTexture, centre: Tuple[float, float], distance: float,
               width_scale: float, scene: SceneSpec, config: SyntheticConfig) -> render.Canvas:
    """A canvas over ``canvas``'s planes for another face: ``texture`` with its box at ``centre``, ``distance``."""
    face_w = config.fx * FACE_WIDTH_M * width_scale / distance
    fb = texture.face_box
    face_h = face_w * (fb[3] - fb[1]) / (fb[2] - fb[0])
    box = (centre[0] - face_w / 2, centre[1] - face_h / 2, centre[0] + face_w / 2, centre[1] + face_h / 2)
    ir_gain = DOMAINS[scene.domain].ir_gain * float(np.sqrt(_REFERENCE_DISTANCE_M / distance))
    return render.Canvas(canvas.rgb, canvas.depth_m, canvas.ir, canvas.light, ir_gain, texture, box, distance,
                         canvas.camera, canvas.scatter_mm)


def _paint_wearer(canvas: render.Canvas, scene: SceneSpec, base: FaceTexture, config: SyntheticConfig) -> None:
    """The live person behind an eyes-cut print: nose tip 1 cm behind the sheet, eyes behind its holes."""
    wearer = scene.wearer or _BASE_SHAPE
    behind = _canvas_at(canvas, cast.cached_subject_texture(base, scene.wearer), canvas.centre,
                        canvas.distance + wearer.nose_m + _WORN_GAP_M, wearer.width_scale, scene, config)
    render.paint_torso(behind, 0.10, scene.clothing, wearer.neck_width)
    render.paint_head(behind, True, wearer, MaskMaterial())


def _paint_second_face(canvas: render.Canvas, scene: SceneSpec, base: FaceTexture,
                       config: SyntheticConfig) -> Dict[str, Any]:
    """The scene's second face, a flat print or screen beside the first at its distance; returns its truth."""
    other = scene.second_face
    texture = cast.cached_subject_texture(base, other.subject)
    centre = (canvas.centre[0] + other.side * BESIDE_FACE_WIDTHS * canvas.face_width, canvas.centre[1])
    shape = other.subject or _BASE_SHAPE
    beside = _canvas_at(canvas, texture, centre, canvas.distance, shape.width_scale, scene, config)
    b = beside.box
    if b[0] < 0 or b[1] < 0 or b[2] > config.width or b[3] > config.height:
        raise ValueError(f"SceneSpec.second_face: its face box {tuple(round(v) for v in b)} leaves the "
                         f"{config.width}×{config.height} image; place the face (centre {scene.centre}) farther "
                         f"from that side or the pair farther away (distance_m {scene.distance_m})")
    material = other.instrument.material if other.instrument is not None else None
    if other.kind == "print":
        sheet.paint_print(beside, material or PaperMaterial(), 0.0, 0.0, 0.0, eye_spacing=shape.eye_spacing)
    else:
        sheet.paint_screen(beside, material or ScreenMaterial(), 0.0, 0.0, 0.0, scene.motion_phase)
    landmarks = sheet.sheet_landmarks(beside, shape)
    return _face_truth(b, landmarks, other.kind, other.subject, other.instrument)


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


def _sense(rgb: Sequence[np.ndarray], depth_m: np.ndarray, ir: np.ndarray, scatter_mm: np.ndarray, scene: SceneSpec,
           distance: float, rng: np.random.Generator, config: SyntheticConfig
           ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the sensors make of the scene: the projector's dots, ambient near-infrared, noise, depth holes,
    quantisation (inputs are overwritten)."""
    style = DOMAINS[scene.domain]
    h, w = depth_m.shape
    if style.emitter and config.projector_dots:  # each surface blurs the dots by its own scatter; sunlight washes them out
        ir = render.project_dots(ir, scatter_mm, depth_m, config.fx, style.dot_contrast / (1.0 + style.ambient_ir),
                                 rng)
    if style.ambient_ir:
        ir *= np.float32(1.0 + style.ambient_ir)
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
    shadow_px = int(config.fx * style.baseline_m * (1.0 / distance - 1.0 / scene.wall_m)) if near.any() else 0
    holes |= render.stereo_shadow(near, shadow_px)
    holes[:, :int(config.fx * style.baseline_m / scene.wall_m)] = True
    depth[holes] = 0
    ir += np.float32(2.0) * render.cut(noise, rng, h, w)
    np.maximum(ir, 0.0, out=ir)
    return rgb_u8, depth, cv2.convertScaleAbs(ir)


def _face_truth(box: render.Box, landmarks: np.ndarray, kind: str, subject: Optional[Subject],
                instrument: Optional[Instrument]) -> Dict[str, Any]:
    """What one face in view is: its box, landmarks, label, attack kind, species, subject and instrument ids."""
    attack = None if kind == "live" else kind
    points = [tuple(float(v) for v in point) for point in landmarks]
    return {"box": tuple(float(v) for v in box), "landmarks": {"eyes": (points[0], points[1]), "nose_tip": points[2]},
            "label": "live" if kind == "live" else "attack", "attack": attack,
            "species": instrument.species if instrument is not None else attack,
            "subject": None if subject is None else subject.id,
            "instrument": None if instrument is None else instrument.id}


def _frameset(rgb: np.ndarray, depth: np.ndarray, ir: np.ndarray, scene: SceneSpec, faces: List[Dict[str, Any]],
              distance: float, frame_index: int, config: SyntheticConfig) -> FrameSet:
    intr = Intrinsics(config.width, config.height, config.fx, config.fx, config.width / 2, config.height / 2)
    stamp = frame_index * 1000.0 / config.fps
    # The frameset is an attack when any face in view is; its attack is the first attacking face's.
    attacking = next((face for face in faces if face["label"] == "attack"), None)
    truth: Dict[str, Any] = {
        "box": faces[0]["box"] if faces else None,
        "label": None if not faces else ("live" if attacking is None else "attack"),
        **{key: None if attacking is None else attacking[key] for key in ("attack", "species", "instrument")},
        "subject": None if scene.subject is None else scene.subject.id,
        "domain": scene.domain, "distance_m": float(distance), "faces": faces,
        "brightness": float(scene.brightness), "backlight": float(scene.backlight),
        "wearer": None if scene.wearer is None else scene.wearer.id,
        "yaw_deg": float(scene.yaw_deg), "pitch_deg": float(scene.pitch_deg),
    }
    return FrameSet(
        rgb=rgb, depth=depth, ir=ir, depth_scale_m=config.depth_scale_m,
        timestamps_ms={name: stamp for name in ("rgb", "depth", "ir")},
        frame_numbers={name: frame_index for name in ("rgb", "depth", "ir")},
        intrinsics={name: intr for name in ("rgb", "depth", "ir")}, depth_to_color=Extrinsics(),
        color_aligned_to_depth=True, serial=config.serial, origin="synthetic",
        metadata={"source": "synthetic", "truth": truth,
                  "emitter": "on" if DOMAINS[scene.domain].emitter and config.projector_dots else "off"},
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
        ValueError: unknown kind or domain, a distance under 0.2 m, or an instrument of
            another kind.

    Example:
        >>> fs = render_frameset("print", 0, np.random.default_rng(0), 0, subject=create_subject(3),
        ...                      instrument=create_instrument("print", 1))
        >>> fs.metadata["truth"]["subject"], fs.metadata["truth"]["instrument"]
        ('S003', 'print-01')
    """
    scene = draw_scene(rng, kind, domain, domain_config(config, domain), distance_m, centre, subject, instrument)
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
    farthest = max(max(s.distance_start_m, s.distance_end_m or 0.0) for s in segments) if segments else None
    index = 0
    for segment in segments:
        scene = draw_scene(rng, segment.kind, segment.domain, domain_config(config, segment.domain),
                           segment.distance_start_m, segment.centre,
                           segment.subject, segment.instrument, segment.wearer, segment.yaw_deg, segment.pitch_deg,
                           segment.second_face, segment.lighting, farthest)
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
    kind = "live" if species == "bona_fide" else SPECIES.get(species)
    attack = re.match(rf"^{re.escape(species)}-(\d+)$", instrument) if instrument else None
    if match is None or (kind != "live" and (kind is None or attack is None)):
        raise ValueError(f"the synthetic camera stages subjects S<number> and instruments <species>-<number> of "
                         f"{', '.join(SPECIES)} (e.g. S003, print-02); got {subject!r}, {species!r}, "
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
