"""A synthetic RGB-D-IR camera: a face photo in front of a wall, live or presented as an attack.

Seeded and deterministic. The physics the real sensors see is what separates the classes:
- live: the photo texture-mapped on a head relief (nose ~3 cm out, sides ~6 cm back), skin IR with
  texture and bright eye glints, a little head motion from frame to frame;
- print: the photo on a flat or slightly bent sheet: planar depth, bright flat paper IR, lower
  contrast and halftone grain in RGB;
- replay: the photo on a screen: planar depth, almost no IR (screens emit no near-infrared),
  scanlines and a blue glow in RGB;
- mask: head-shaped depth, but uniform-material IR (no skin variation, no eye glints) and a
  smoothed, plastic-looking RGB.
Domains (0–3) change sensor noise, depth holes, IR gain, light colour and distance, so training
can hold one domain out. Every stream is rendered from one viewpoint (colour aligned to depth).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import require
from ..frames import Extrinsics, FrameSet, Intrinsics

logger = logging.getLogger(__name__)

CLASSES = ("live", "print", "replay", "mask")
FACE_WIDTH_M = 0.16
# The astronaut photo's face (Haar box in the 512 px original) and the crop used as texture.
_TEXTURE_CROP = (40, 140, 200, 300)  # y0, x0, y1, x1 of a region around the face
_FACE_IN_TEXTURE = (177 - 140, 66 - 40, 272 - 140, 161 - 40)  # x0, y0, x1, y1 inside that crop


@dataclass(frozen=True)
class DomainStyle:
    """What one acquisition domain changes."""

    depth_noise_mm: float
    hole_fraction: float
    ir_gain: float
    light: Tuple[float, float, float]
    distance_m: Tuple[float, float]


DOMAINS = (
    DomainStyle(1.0, 0.01, 1.0, (1.0, 1.0, 1.0), (0.45, 0.70)),
    DomainStyle(2.0, 0.03, 0.8, (1.08, 1.0, 0.85), (0.50, 0.80)),
    DomainStyle(3.0, 0.05, 1.2, (0.88, 0.97, 1.1), (0.45, 0.75)),
    DomainStyle(1.5, 0.02, 0.9, (1.0, 0.92, 0.95), (0.55, 0.85)),
)


@dataclass(frozen=True)
class SyntheticConfig:
    """Image size, frame rate and the pinhole camera shared by all three streams."""

    width: int = 640
    height: int = 480
    fps: float = 30.0
    fx: float = 385.0
    depth_scale_m: float = 0.001


def _default_texture() -> np.ndarray:
    data = require("skimage.data", "dev")
    y0, x0, y1, x1 = _TEXTURE_CROP
    return np.ascontiguousarray(data.astronaut()[y0:y1, x0:x1])


def render_frameset(
    kind: str, domain: int, rng: np.random.Generator, frame_index: int, config: SyntheticConfig = SyntheticConfig(),
    texture: Optional[np.ndarray] = None, distance_m: Optional[float] = None,
    centre: Optional[Tuple[float, float]] = None,
) -> FrameSet:
    """Render one frameset of class ``kind`` in ``domain`` (random draws from ``rng``)."""
    if kind not in CLASSES:
        raise ValueError(f"kind: expected one of {CLASSES}, got {kind!r}")
    if not 0 <= domain < len(DOMAINS):
        raise ValueError(f"domain: expected 0..{len(DOMAINS) - 1}, got {domain}")
    style = DOMAINS[domain]
    texture = texture if texture is not None else _default_texture()
    h, w = config.height, config.width
    d = float(distance_m if distance_m is not None else rng.uniform(*style.distance_m))
    th, tw = texture.shape[:2]
    face_tex_w = _FACE_IN_TEXTURE[2] - _FACE_IN_TEXTURE[0]
    scale = config.fx * FACE_WIDTH_M / d / face_tex_w  # texture pixels → image pixels
    cx, cy = centre if centre is not None else (w / 2 + rng.uniform(-0.15, 0.15) * w, h / 2 + rng.uniform(-0.1, 0.1) * h)
    if kind in ("live", "mask"):
        cx, cy = cx + rng.normal(0, 2.0), cy + rng.normal(0, 2.0)  # head motion
    fx0 = cx - (_FACE_IN_TEXTURE[0] + face_tex_w / 2) * scale
    fy0 = cy - (_FACE_IN_TEXTURE[1] + (_FACE_IN_TEXTURE[3] - _FACE_IN_TEXTURE[1]) / 2) * scale
    affine = np.float32([[scale, 0, fx0], [0, scale, fy0]])
    face_rgb = cv2.warpAffine(texture, affine, (w, h), flags=cv2.INTER_LINEAR, borderValue=0).astype(np.float32)
    cover = cv2.warpAffine(np.ones((th, tw), np.float32), affine, (w, h), flags=cv2.INTER_LINEAR) > 0.5

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wall_m = 2.2 + 0.0004 * (xx - w / 2)
    rgb = np.empty((h, w, 3), np.float32)
    rgb[:] = (150, 140, 125)
    rgb += rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    ir = np.full((h, w), 35.0, np.float32)
    depth_m = wall_m.copy()

    box_w = face_tex_w * scale
    box_h = (_FACE_IN_TEXTURE[3] - _FACE_IN_TEXTURE[1]) * scale
    rx, ry = (xx - cx) / (0.62 * box_w), (yy - cy) / (0.75 * box_h)
    r2 = rx**2 + ry**2
    head = (r2 < 1.0) & cover
    lum = face_rgb.mean(axis=2) / 255.0
    nose = np.exp(-((xx - cx) ** 2 + (yy - cy - 0.1 * box_h) ** 2) / (2 * (0.09 * box_w) ** 2))
    if kind in ("live", "mask"):
        relief = d + 0.06 * r2 - 0.03 * nose
        depth_m = np.where(head, relief, depth_m)
        rgb = np.where(head[..., None], face_rgb, rgb)
        if kind == "live":
            skin = (0.45 + 0.35 * lum) * 255 * style.ir_gain
            eyes = np.zeros_like(ir)
            for ex in (-0.22, 0.22):
                eyes += 120 * np.exp(-((xx - cx - ex * box_w) ** 2 + (yy - cy + 0.12 * box_h) ** 2) / (2 * (0.02 * box_w) ** 2))
            ir = np.where(head, skin + eyes, ir)
        else:
            ir = np.where(head, 150.0 * style.ir_gain, ir)
            rgb = np.where(head[..., None], cv2.GaussianBlur(rgb, (0, 0), 3) * 0.9 + 20, rgb)
    else:
        sheet = cover & (np.abs(xx - cx) < 0.9 * box_w) & (np.abs(yy - cy) < 1.1 * box_h)
        bend = rng.uniform(0.0, 0.02) if kind == "print" else 0.0
        plane = d + bend * ((xx - cx) / max(box_w, 1.0)) ** 2 + rng.uniform(-1e-4, 1e-4) * (xx - cx)
        depth_m = np.where(sheet, plane, depth_m)
        if kind == "print":
            printed = face_rgb * 0.75 + 40 + rng.normal(0, 8, (h, w, 1)).astype(np.float32)
            rgb = np.where(sheet[..., None], printed, rgb)
            ir = np.where(sheet, (170 + 40 * lum) * style.ir_gain, ir)
        else:
            screen = face_rgb * 0.9 + np.float32([0, 10, 35])
            screen[::3] *= 0.7  # scanlines
            rgb = np.where(sheet[..., None], screen, rgb)
            ir = np.where(sheet, 6.0, ir)

    rgb = np.clip(rgb * np.float32(style.light), 0, 255).astype(np.uint8)
    depth_m = depth_m + rng.normal(0, style.depth_noise_mm / 1000.0, (h, w)).astype(np.float32)
    depth = np.rint(depth_m / config.depth_scale_m).astype(np.uint16)
    depth[rng.random((h, w)) < style.hole_fraction] = 0
    ir = np.clip(ir + rng.normal(0, 3, (h, w)), 0, 255).astype(np.uint8)

    intr = Intrinsics(w, h, config.fx, config.fx, w / 2, h / 2)
    stamp = frame_index * 1000.0 / config.fps
    box = (float(cx - box_w / 2), float(cy - box_h / 2), float(cx + box_w / 2), float(cy + box_h / 2))
    return FrameSet(
        rgb=rgb, depth=depth, ir=ir, depth_scale_m=config.depth_scale_m,
        timestamps_ms={"rgb": stamp, "depth": stamp, "ir": stamp},
        frame_numbers={"rgb": frame_index, "depth": frame_index, "ir": frame_index},
        intrinsics={"rgb": intr, "depth": intr, "ir": intr}, depth_to_color=Extrinsics(),
        color_aligned_to_depth=True, serial=f"SYNTH-{domain}",
        metadata={"source": "synthetic", "truth": {
            "box": box, "label": "live" if kind == "live" else "attack", "attack": None if kind == "live" else kind,
            "domain": domain, "distance_m": d}},
    )


class SyntheticCamera:
    """An iterator (and context manager) of synthetic framesets.

    Args:
        seed: the whole stream is a function of the seed.
        config: image size and camera.
        classes: classes to draw from, uniformly per frameset.
        domains: domains to draw from.
        num_frames: stop after this many (None: endless).
        face_image: an RGB uint8 face image to use instead of the astronaut photo (its face should
            fill the image's central region as in ``_TEXTURE_CROP``).
    """

    is_live = False

    def __init__(self, seed: int = 0, config: SyntheticConfig = SyntheticConfig(), classes: Sequence[str] = CLASSES,
                 domains: Sequence[int] = (0, 1, 2, 3), num_frames: Optional[int] = None,
                 face_image: Optional[np.ndarray] = None) -> None:
        unknown = [c for c in classes if c not in CLASSES]
        if unknown or not classes:
            raise ValueError(f"classes: expected a non-empty subset of {CLASSES}, got {list(classes)}")
        self.seed, self.config, self.classes, self.domains = seed, config, tuple(classes), tuple(domains)
        self.num_frames = num_frames
        self._texture = face_image if face_image is not None else _default_texture()

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
            kind = self.classes[rng.integers(len(self.classes))]
            domain = int(self.domains[rng.integers(len(self.domains))])
            yield render_frameset(kind, domain, rng, index, self.config, self._texture)
            index += 1
