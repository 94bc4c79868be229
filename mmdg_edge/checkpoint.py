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

FORMAT_VERSION = 2
_FORMAT_CHANGES = {
    1: "format 1 gave U-Adapter++'s query, key and value linears biases that METHOD.md §2.2 does not have; the "
       "query biases shift every certainty and token choice, so its weights cannot be converted exactly: "
       "train the model again with this SDK (the demo model: scripts/train_demo_model.py)",
}
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


def _check_regular_file(path: Path) -> None:
    # Before any read: a FIFO blocks until a writer comes and /dev/zero never ends.
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: is not a regular file")


def _check_prefix(prefix: bytes, size: int, source: str) -> None:
    """Refuse pickles and impossible headers from the first 9 bytes of a ``size``-byte checkpoint."""
    head, first = prefix[:8], prefix[8:9]
    # A safetensors file is an 8-byte header length, then the JSON header; that length's low byte can
    # be 0x80 like a pickle's first byte, so a plausible length followed by "{" decides first.
    plausible = len(head) == 8 and struct.unpack("<Q", head)[0] <= min(_MAX_HEADER_BYTES, size - 8)
    if not (plausible and first == b"{") and any(head.startswith(magic) for magic in _PICKLE_MAGIC):
        raise CheckpointError(
            f"{source}: looks like a pickle/torch.save file; mmdg-edge never unpickles checkpoints (that can run "
            "arbitrary code). Convert trusted weights to .safetensors with mmdg_edge.checkpoint.save_checkpoint."
        )
    if len(head) < 8:
        raise CheckpointError(f"{source}: file is truncated ({len(head)} bytes); not a safetensors checkpoint")
    header_len = struct.unpack("<Q", head)[0]
    if header_len > min(_MAX_HEADER_BYTES, size - 8):
        raise CheckpointError(f"{source}: not a safetensors file (header length {header_len} is impossible)")


def _metadata_from_header(header: Mapping[str, str], source: str) -> Dict[str, Any]:
    """The validated mmdg-edge metadata from a safetensors ``__metadata__`` block."""
    if METADATA_KEY not in header:
        raise CheckpointError(f"{source}: has no {METADATA_KEY!r} metadata; it was not written by mmdg-edge")
    try:
        metadata = json.loads(header[METADATA_KEY])
    except (TypeError, json.JSONDecodeError, RecursionError) as exc:  # not a string; nested too deep
        raise CheckpointError(f"{source}: metadata is not valid JSON ({exc})") from exc
    validate_metadata(metadata, source=source)
    return metadata


def _metadata_from_bytes(data: bytes, source: str) -> Dict[str, Any]:
    """``read_metadata`` for a checkpoint held in memory (safetensors reads headers from files only)."""
    _check_prefix(data[:9], len(data), source)
    (header_len,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{source}: corrupt safetensors file (the header is not JSON: {exc})") from exc
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__", {}), dict):
        raise CheckpointError(f"{source}: corrupt safetensors file (the header or its __metadata__ is not an object)")
    return _metadata_from_header(header.get("__metadata__", {}), source)


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
    _check_regular_file(path)
    with path.open("rb") as handle:
        _check_prefix(handle.read(9), path.stat().st_size, str(path))
    safetensors = require("safetensors", "torch")
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            header = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own SafetensorError for every corruption
        raise CheckpointError(f"{path}: corrupt safetensors file ({exc})") from exc
    return _metadata_from_header(header, str(path))


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
        why = _FORMAT_CHANGES.get(metadata["format_version"], "")
        raise CheckpointError(
            f"{source}: checkpoint format {metadata['format_version']!r}, this SDK reads format {FORMAT_VERSION}"
            + (f": {why}" if why else "")
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


def read_checkpoint_bytes(path: PathLike) -> bytes:
    """The whole checkpoint file, for ``load_checkpoint_bytes`` and for hashing what was loaded.

    Raises:
        CheckpointError: missing, not a regular file (FIFO, device, directory) or unreadable.
    """
    path = Path(path)
    _check_regular_file(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc})") from exc


def load_checkpoint(path: PathLike, device: str = "cpu") -> Tuple["MMDGPlusPlus", Dict[str, Any]]:
    """Load a checkpoint into a fresh MMDG++ model, in eval mode.

    The file is read once and loaded by ``load_checkpoint_bytes``; the model is built from the
    stored config with ``pretrained=None`` (the file holds every weight, so nothing is
    downloaded), then the weights are checked against the stored SHA-256 and loaded strictly.

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
    return load_checkpoint_bytes(read_checkpoint_bytes(path), source=str(path), device=device)


def load_checkpoint_bytes(
    data: bytes, source: str = "<bytes>", device: str = "cpu"
) -> Tuple["MMDGPlusPlus", Dict[str, Any]]:
    """Load a checkpoint held in memory: the same checks and model as ``load_checkpoint``.

    A caller that must say exactly what it runs (``TorchEngine.model_sha256``) reads the file once
    with ``read_checkpoint_bytes``, hashes those bytes and loads them here, so the digest and the
    weights cannot come from two different versions of the file.

    Args:
        data: a whole ``.safetensors`` checkpoint.
        source: the file name, for messages.
        device: torch device for the weights.

    Returns:
        ``(model, metadata)``.

    Raises:
        CheckpointError: a pickle, a corrupt or truncated file, metadata that is absent, tampered
            with or incompatible, tampered weights, or weights that do not fit the stored config.

    Example:
        >>> data = read_checkpoint_bytes("model.safetensors")  # doctest: +SKIP
        >>> model, meta = load_checkpoint_bytes(data, source="model.safetensors")  # doctest: +SKIP
    """
    from .model import MMDGConfig, create_model

    metadata = _metadata_from_bytes(data, source)
    safetensors_torch = require("safetensors.torch", "torch")
    try:
        tensors = safetensors_torch.load(data)
    except Exception as exc:  # SafetensorError on truncated data or inconsistent offsets
        raise CheckpointError(f"{source}: corrupt safetensors file; cannot read the weights ({exc})") from exc
    if weights_sha256(tensors) != metadata["sha256"]:
        raise CheckpointError(f"{source}: weights do not match the SHA-256 in the metadata (modified or corrupt)")
    try:
        config = MMDGConfig.from_dict({**metadata["config"], "pretrained": None})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: invalid model config in metadata ({exc})") from exc
    model = create_model(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: weights do not fit the stored config ({exc})") from exc
    stored = metadata["config"].get("pretrained")
    if stored is not None:
        logger.info("%s was trained from CLIP weights %r; they are inside the checkpoint", source, stored)
    return model.to(device).eval(), metadata
