"""Versioned, safe checkpoints: safetensors weights with a JSON metadata block in the header.

No pickle anywhere: safetensors holds only tensors, and the metadata is plain JSON. A pickle or
``torch.save`` file is recognised by its first bytes and refused without being unpickled. The
metadata (config, modality order, preprocessing, classes, threshold, provenance) travels with the
weights; export copies it into ONNX and TensorRT sidecars, and every engine reads it from there.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple, Union

from .errors import CheckpointError, require
from .frames import MODALITIES
from .preprocess import NORMALIZATION_VERSION, PreprocessConfig
from .version import __version__

if TYPE_CHECKING:
    from .model import MMDGPlusPlus

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
METADATA_KEY = "mmdg_edge"
CLASSES = ("attack", "live")
_MAX_HEADER_BYTES = 100 * 1024 * 1024
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol ≥ 2; torch.save zip archives
_REQUIRED_KEYS = (
    "format_version", "sdk_version", "config", "modalities", "classes", "preprocess", "threshold", "provenance",
    "sha256", "metadata_sha256",
)

PathLike = Union[str, "os.PathLike[str]"]


def _canonical(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _metadata_digest(metadata: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in metadata.items() if k != "metadata_sha256"})).hexdigest()


def weights_sha256(tensors: Mapping[str, Any]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order (torch or numpy arrays)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name]
        array = value.detach().cpu().contiguous().numpy() if hasattr(value, "detach") else value
        digest.update(f"{name}|{array.dtype}|{tuple(array.shape)}|".encode())
        digest.update(memoryview(array.reshape(-1).view("uint8") if array.size else array.tobytes()))
    return digest.hexdigest()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: is not a regular file")
    with path.open("rb") as handle:
        head, first = handle.read(8), handle.read(1)
    # A safetensors file is an 8-byte header length, then the JSON header; that length's low byte can
    # be 0x80 like a pickle's first byte, so a plausible length followed by "{" decides first.
    plausible = len(head) == 8 and struct.unpack("<Q", head)[0] <= min(_MAX_HEADER_BYTES, path.stat().st_size - 8)
    if not (plausible and first == b"{") and any(head.startswith(magic) for magic in _PICKLE_MAGIC):
        raise CheckpointError(
            f"{path}: looks like a pickle/torch.save file; mmdg-edge never unpickles checkpoints (that can run "
            "arbitrary code). Convert trusted weights to .safetensors with mmdg_edge.checkpoint.save_checkpoint."
        )
    if len(head) < 8:
        raise CheckpointError(f"{path}: file is truncated ({len(head)} bytes); not a safetensors checkpoint")
    header_len = struct.unpack("<Q", head)[0]
    if header_len > min(_MAX_HEADER_BYTES, path.stat().st_size - 8):
        raise CheckpointError(f"{path}: not a safetensors file (header length {header_len} is impossible)")


def read_metadata(path: PathLike) -> Dict[str, Any]:
    """Read and validate a checkpoint's metadata without torch.

    Args:
        path: a ``.safetensors`` checkpoint written by ``save_checkpoint``.

    Returns:
        The metadata dict (format_version, sdk_version, config, modalities, classes, preprocess,
        threshold, provenance, sha256, metadata_sha256).

    Raises:
        CheckpointError: missing file, pickle, corrupt header, or metadata that is absent, tampered
            with or incompatible with this SDK (the message says which).

    Example:
        >>> read_metadata("mmdg_edge/assets/demo.safetensors")["threshold"]  # doctest: +SKIP
    """
    path = Path(path)
    _check_file(path)
    safetensors = require("safetensors", "torch")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            header = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own SafetensorError for every corruption
        raise CheckpointError(f"{path}: corrupt safetensors file ({exc})") from exc
    if METADATA_KEY not in header:
        raise CheckpointError(f"{path}: has no {METADATA_KEY!r} metadata; it was not written by mmdg-edge")
    try:
        metadata = json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: metadata is not valid JSON ({exc})") from exc
    validate_metadata(metadata, source=str(path))
    return metadata


def validate_metadata(metadata: Any, source: str = "checkpoint") -> None:
    """Check a metadata dict against what this SDK can run; raise CheckpointError saying why not."""
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{source}: metadata must be a JSON object, got {type(metadata).__name__}")
    missing = [key for key in _REQUIRED_KEYS if key not in metadata]
    if missing:
        raise CheckpointError(f"{source}: metadata lacks {missing}")
    if metadata["metadata_sha256"] != _metadata_digest(metadata):
        raise CheckpointError(f"{source}: metadata was modified after saving (its digest does not match)")
    if metadata["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{source}: checkpoint format {metadata['format_version']!r}, this SDK reads format {FORMAT_VERSION}"
        )
    if list(metadata["modalities"]) != list(MODALITIES):
        raise CheckpointError(f"{source}: modality order {metadata['modalities']} differs from {list(MODALITIES)}")
    if list(metadata["classes"]) != list(CLASSES):
        raise CheckpointError(f"{source}: class order {metadata['classes']} differs from {list(CLASSES)}")
    preprocess = metadata["preprocess"]
    if not isinstance(preprocess, dict) or preprocess.get("version") != NORMALIZATION_VERSION:
        got = preprocess.get("version") if isinstance(preprocess, dict) else preprocess
        raise CheckpointError(
            f"{source}: trained on crops encoded as {got!r}, this SDK produces {NORMALIZATION_VERSION!r}; "
            "scores would be meaningless"
        )
    try:
        PreprocessConfig.from_dict(preprocess)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: invalid preprocess block ({exc})") from exc
    threshold = metadata["threshold"]
    if not isinstance(threshold, (int, float)) or not math.isfinite(threshold) or not 0.0 < threshold < 1.0:
        raise CheckpointError(f"{source}: threshold must be a number in (0, 1), got {threshold!r}")


def save_checkpoint(
    path: PathLike,
    model: "MMDGPlusPlus",
    *,
    threshold: float = 0.5,
    provenance: Optional[Dict[str, Any]] = None,
    preprocess: PreprocessConfig = PreprocessConfig(),
) -> Path:
    """Write model weights and metadata as one ``.safetensors`` file.

    Args:
        path: output file; the ``.safetensors`` suffix is required.
        model: the MMDG++ model.
        threshold: live-probability decision threshold (chosen on validation data).
        provenance: training facts (protocol, data, epochs, seed, notes) stored verbatim.
        preprocess: the crop encoding the model was trained on.

    Returns:
        The path written.

    Raises:
        ValueError: wrong suffix or threshold outside (0, 1).

    Example:
        >>> save_checkpoint("model.safetensors", model, threshold=0.42)  # doctest: +SKIP
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path: checkpoints are .safetensors files, got {path.name!r}")
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold: expected a value in (0, 1), got {threshold}")
    safetensors_torch = require("safetensors.torch", "torch")
    tensors = {name: value.detach().cpu().contiguous().clone() for name, value in model.state_dict().items()}
    metadata: Dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "sdk_version": __version__,
        "config": model.config.to_dict(),
        "modalities": list(MODALITIES),
        "classes": list(CLASSES),
        "preprocess": preprocess.to_dict(),
        "threshold": float(threshold),
        "provenance": dict(provenance or {}),
        "sha256": weights_sha256(tensors),
    }
    metadata["metadata_sha256"] = _metadata_digest(metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors_torch.save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(metadata)})
    return path


def load_checkpoint(path: PathLike, device: str = "cpu") -> Tuple["MMDGPlusPlus", Dict[str, Any]]:
    """Load a checkpoint into a fresh MMDG++ model, in eval mode.

    The model is built from the stored config with ``pretrained=None`` (the file holds every
    weight, so nothing is downloaded), then the weights are checked against the stored SHA-256
    and loaded strictly.

    Args:
        path: a ``.safetensors`` checkpoint.
        device: torch device for the weights.

    Returns:
        ``(model, metadata)``.

    Raises:
        CheckpointError: anything ``read_metadata`` refuses, tampered weights, or weights that do
            not fit the stored config.

    Example:
        >>> model, meta = load_checkpoint("mmdg_edge/assets/demo.safetensors")  # doctest: +SKIP
    """
    from .model import MMDGConfig, create_model

    metadata = read_metadata(path)
    safetensors_torch = require("safetensors.torch", "torch")
    try:
        tensors = safetensors_torch.load_file(str(path), device="cpu")
    except Exception as exc:  # SafetensorError on truncated data
        raise CheckpointError(f"{path}: cannot read the weights ({exc})") from exc
    if weights_sha256(tensors) != metadata["sha256"]:
        raise CheckpointError(f"{path}: weights do not match the SHA-256 in the metadata (modified or corrupt)")
    try:
        config = MMDGConfig.from_dict({**metadata["config"], "pretrained": None})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model config in metadata ({exc})") from exc
    model = create_model(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored config ({exc})") from exc
    stored = metadata["config"].get("pretrained")
    if stored is not None:
        logger.info("%s was trained from CLIP weights %r; they are inside the checkpoint", path, stored)
    return model.to(device).eval(), metadata
