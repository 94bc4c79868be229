"""Crop normalisation and model-input tensors: the ONE place training and inference share.

Every constant that decides what the model sees lives here: crop size, CLIP mean/std, the
metric depth window and the IR percentiles. They are versioned (``NORMALIZATION_VERSION``) and
written into every checkpoint, so a model is never fed crops encoded differently from the ones
it was trained on. numpy and OpenCV only: the kiosk path imports no torch.
"""
from __future__ import annotations

import math

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .frames import CROP_SIZE, MODALITIES, FaceCrops

CLIP_MEAN: Tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: Tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

NORMALIZATION_VERSION = "mmdg-edge-crops/2"
"""Bump whenever the encoding of any crop changes; checkpoints trained on another version are refused.
Version 2: depth is encoded around the median of the face's inner region (version 1: the whole box)."""


@dataclass(frozen=True)
class PreprocessConfig:
    """How crops are encoded (stored in checkpoint metadata, checked at load)."""

    crop_size: int = CROP_SIZE
    mean: Tuple[float, float, float] = CLIP_MEAN
    std: Tuple[float, float, float] = CLIP_STD
    # Depth: a fixed metric window centred on the median face depth; a real head spans ~10-15 cm
    # nose to ears, so 0.25 m keeps its relief in range while a flat sheet stays one grey level.
    depth_window_m: float = 0.25
    # IR: robust contrast stretch; percentiles, not min/max, so specular glints do not set the scale.
    ir_low_percentile: float = 1.0
    ir_high_percentile: float = 99.0
    version: str = NORMALIZATION_VERSION

    def __post_init__(self) -> None:
        if self.crop_size != CROP_SIZE:
            raise ValueError(f"PreprocessConfig.crop_size: the model takes {CROP_SIZE} px crops, got {self.crop_size}")
        if not self.depth_window_m > 0:
            raise ValueError(f"PreprocessConfig.depth_window_m: expected > 0 metres, got {self.depth_window_m}")
        values = (*self.mean, *self.std)
        if len(self.mean) != 3 or len(self.std) != 3 or not all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in values) or min(self.std) <= 0:
            raise ValueError(f"PreprocessConfig.mean/std: expected 3 finite values each with std > 0, got "
                             f"{list(self.mean)} and {list(self.std)}")
        if not 0 <= self.ir_low_percentile < self.ir_high_percentile <= 100:
            raise ValueError(
                "PreprocessConfig.ir_low_percentile/ir_high_percentile: expected 0 <= low < high <= 100, got "
                f"{self.ir_low_percentile}, {self.ir_high_percentile}"
            )

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PreprocessConfig":
        names = {f.name for f in fields(cls)}
        unknown, missing = set(data) - names, names - set(data)
        if unknown or missing:
            raise ValueError(
                f"PreprocessConfig.from_dict: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}"
            )
        return cls(**{**data, "mean": tuple(data["mean"]), "std": tuple(data["std"])})


def encode_depth(
    depth: np.ndarray, depth_scale_m: float, center_m: float, config: PreprocessConfig = PreprocessConfig()
) -> np.ndarray:
    """Encode a depth crop relative to the face: near = bright, far = dark, holes = 0.

    Args:
        depth: H×W uint16 depth in ``depth_scale_m`` units, 0 where the sensor has no data.
        depth_scale_m: metres per unit.
        center_m: the face's depth (median over its inner region), mapped to mid-grey.
        config: the window width.

    Returns:
        H×W uint8: valid pixels in 1..255 (centre ≈ 128), holes exactly 0.
    """
    if depth.dtype != np.uint16:
        return _depth_levels(depth, depth_scale_m, center_m, config)
    # Every value up to the crop's largest encoded once, then looked up: the same arithmetic per value
    # (tests/test_preprocess.py holds the two equal), a fraction of the passes over the crop.
    table = _depth_levels(np.arange(int(depth.max(initial=0)) + 1, dtype=np.uint16), depth_scale_m, center_m, config)
    return np.take(table, depth)


def _depth_levels(depth: np.ndarray, depth_scale_m: float, center_m: float, config: PreprocessConfig) -> np.ndarray:
    """``encode_depth``'s arithmetic, pixel by pixel."""
    metres = depth.astype(np.float32)
    metres *= np.float32(depth_scale_m)
    level = (np.float32(center_m + 0.5 * config.depth_window_m) - metres) / np.float32(config.depth_window_m)
    np.clip(level, 0.0, 1.0, out=level)
    level *= 254.0
    level += 1.0
    return np.where(depth > 0, np.rint(level), 0).astype(np.uint8)


def _percentiles(image: np.ndarray, percentiles: Tuple[float, float]) -> Tuple[float, float]:
    """``np.percentile(image.astype(np.float32), percentiles)`` (linear interpolation), bit for bit.

    An integer image's order statistics are among its values: a cumulative histogram finds them
    by counting instead of partitioning every pixel, in a fraction of the time on a 224² crop
    (tests/test_preprocess.py holds the two equal). Other dtypes go to ``np.percentile``.
    """
    if image.dtype not in (np.uint8, np.uint16):
        return tuple(np.percentile(image.astype(np.float32), percentiles))
    if image.dtype == np.uint8:  # OpenCV's histogram: exact counts (float32 holds integers to 2**24)
        counts = cv2.calcHist([np.ascontiguousarray(image)], [0], None, [256], [0, 256])[:, 0].astype(np.int64)
    else:
        counts = np.bincount(image.ravel())
    cumulative = np.cumsum(counts)
    position = (image.size - 1) * (np.asarray(percentiles, np.float64) / 100.0)
    below = np.floor(position)
    gamma = position - below
    below = below.astype(np.int64)
    above = np.minimum(below + 1, image.size - 1)
    # numpy's own interpolation (np.lib._function_base_impl._lerp) on float32 order statistics
    low_value = np.searchsorted(cumulative, below, side="right").astype(np.float32)
    high_value = np.searchsorted(cumulative, above, side="right").astype(np.float32)
    step = high_value - low_value
    result = np.where(gamma >= 0.5, high_value - step * (1.0 - gamma), low_value + step * gamma)
    return result[0], result[1]


def encode_ir(ir: np.ndarray, config: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """Contrast-stretch an IR crop between robust percentiles to the full uint8 range."""
    low, high = _percentiles(ir, (config.ir_low_percentile, config.ir_high_percentile))
    if high - low < 1e-6:
        return np.zeros(ir.shape, np.uint8)
    integer = ir.dtype in (np.uint8, np.uint16)
    # An integer crop: stretch every value it can hold once, then look its pixels up (the same arithmetic).
    top = 255 if ir.dtype == np.uint8 else int(ir.max()) if integer else 0
    values = np.arange(top + 1, dtype=np.float32) if integer else ir.astype(np.float32)
    values -= low
    values *= np.float32(255.0 / (high - low))
    np.clip(values, 0.0, 255.0, out=values)
    stretched = np.rint(values).astype(np.uint8)
    if not integer:
        return stretched
    if ir.dtype == np.uint8:
        return cv2.LUT(np.ascontiguousarray(ir), stretched).reshape(ir.shape)
    return np.take(stretched, ir)


def gray_to_rgb(image: np.ndarray) -> np.ndarray:
    """Repeat a single-channel H×W image to H×W×3 (depth and IR enter CLIP as 3 channels)."""
    return np.repeat(image[..., None], 3, axis=-1)


def _channel_affine(config: PreprocessConfig) -> Tuple[np.ndarray, np.ndarray]:
    """CLIP normalisation per channel as (x - offset) · scale, on 0..255 values."""
    return 255.0 * np.asarray(config.mean, np.float32), (1.0 / (255.0 * np.asarray(config.std, np.float32)))


def images_to_input(
    images: np.ndarray, mask: np.ndarray, config: PreprocessConfig = PreprocessConfig()
) -> Tuple[np.ndarray, np.ndarray]:
    """Turn encoded uint8 crops into the engines' input tensors (training datasets and caches).

    Args:
        images: (B, 3, 224, 224, 3) uint8 encoded crops in MODALITIES order (HWC per modality),
            as ``encode_images`` returns them.
        mask: (B, 3) bool presence mask.
        config: mean/std.

    Returns:
        ``crops`` (B, 3, 3, 224, 224) float32, CLIP-normalised, exactly zero where masked,
        and ``mask`` (B, 3) bool; identical to ``encode`` of the same faces.
    """
    images = np.asarray(images)
    mask = np.asarray(mask)
    size = config.crop_size
    if images.dtype != np.uint8 or images.ndim != 5 or images.shape[1:] != (len(MODALITIES), size, size, 3):
        raise ValueError(f"images: expected (B, 3, {size}, {size}, 3) uint8, got {images.shape} {images.dtype}")
    if mask.dtype != np.bool_ or mask.shape != images.shape[:2]:
        raise ValueError(f"mask: expected ({images.shape[0]}, 3) bool, got {mask.shape} {mask.dtype}")
    offset, scale = _channel_affine(config)
    # order="C" makes the transposed copy contiguous, so the arithmetic after it runs on contiguous memory.
    crops = images.transpose(0, 1, 4, 2, 3).astype(np.float32, order="C")
    crops -= offset.reshape(1, 1, 3, 1, 1)
    crops *= scale.reshape(1, 1, 3, 1, 1)
    crops *= mask[:, :, None, None, None]
    return crops, mask.copy()


def _encoded_planes(crops: FaceCrops, config: PreprocessConfig) -> Tuple[Optional[np.ndarray], ...]:
    """Per modality the uint8 image the model sees: H×W×3 colour or H×W grey (None where absent)."""
    depth = None
    if crops.depth is not None:
        depth = encode_depth(crops.depth, crops.depth_scale_m, crops.quality.distance_m, config)
    ir = encode_ir(crops.ir, config) if crops.ir is not None else None
    return crops.rgb, depth, ir


def encode_images(
    crops: Sequence[FaceCrops], config: PreprocessConfig = PreprocessConfig()
) -> Tuple[np.ndarray, np.ndarray]:
    """Encoded uint8 crops ``(B, 3, 224, 224, 3)`` and their mask: what ``images_to_input`` takes,
    compact enough to cache (training sets, collection datasets)."""
    if len(crops) == 0:
        raise ValueError("crops: expected at least one FaceCrops")
    images = np.zeros((len(crops), len(MODALITIES), CROP_SIZE, CROP_SIZE, 3), np.uint8)
    for b, face in enumerate(crops):
        for m, plane in enumerate(_encoded_planes(face, config)):
            if plane is not None:
                images[b, m] = plane if plane.ndim == 3 else plane[..., None]
    return images, np.stack([face.mask for face in crops])


def encode(crops: Sequence[FaceCrops], config: PreprocessConfig = PreprocessConfig()) -> Tuple[np.ndarray, np.ndarray]:
    """Raw face crops → the engines' ``(crops, mask)`` input: the one encoding step of the SDK.

    Depth is encoded around the face distance, IR contrast-stretched, grey modalities fill all
    three channels, and everything is CLIP-normalised into (B, 3, 3, 224, 224) float32 (zero where
    a modality is absent). The detector, the training datasets and export calibration call this.

    Args:
        crops: FaceCrops from ``mmdg_edge.align.FaceAligner``.
        config: the model's preprocessing (from its metadata).

    Returns:
        ``(crops, mask)``: (B, 3, 3, 224, 224) float32 and (B, 3) bool.

    Example:
        >>> inputs, mask = encode([aligner.align(frameset).crops], PreprocessConfig())  # doctest: +SKIP
    """
    if len(crops) == 0:
        raise ValueError("crops: expected at least one FaceCrops")
    offset, scale = _channel_affine(config)
    out = np.empty((len(crops), len(MODALITIES), 3, CROP_SIZE, CROP_SIZE), np.float32)  # each plane written once
    for b, face in enumerate(crops):
        for m, plane in enumerate(_encoded_planes(face, config)):
            if plane is None:
                out[b, m] = 0.0
                continue
            channels = cv2.split(plane) if plane.ndim == 3 else (plane,) * 3  # contiguous planes
            for c in range(3):
                channel = out[b, m, c]
                np.subtract(channels[c], offset[c], out=channel, dtype=np.float32)  # uint8 → float32 on the way
                channel *= scale[c]
    return out, np.stack([face.mask for face in crops])
