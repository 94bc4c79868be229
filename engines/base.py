"""The one contract every engine obeys: numpy crops and mask in, live probabilities out.

Engines differ in backend (onnxruntime, torch, TensorRT) but share the input checks, the
metadata checks and the output checks below, so a wrongly shaped input or a model compiled for
another preprocessing is refused the same way everywhere. numpy only: no torch here.
"""
from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from ..checkpoint import METADATA_KEY, validate_metadata
from ..errors import CheckpointError, EngineError, EngineMismatch
from ..frames import CROP_SIZE, MODALITIES

logger = logging.getLogger(__name__)

INPUT_NAMES: Tuple[str, str] = ("crops", "mask")
OUTPUT_NAME = "live_prob"
CROPS_SAMPLE_SHAPE: Tuple[int, int, int, int] = (len(MODALITIES), 3, CROP_SIZE, CROP_SIZE)
EXPORT_KEY = "mmdg_edge_export"
"""ONNX metadata key holding how the file was made (opset, precision, quantisation, sdk version)."""
PRECISIONS = ("fp32", "fp16", "int8")


def check_inputs(crops: Any, mask: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Validate engine inputs before any backend sees them.

    onnxruntime and TensorRT may run a wrongly shaped or typed buffer without complaint, so
    every engine calls this first.

    Args:
        crops: (B, 3, 3, 224, 224) float32, CLIP-normalised, modality order rgb, depth, ir.
        mask: (B, 3) bool presence mask; every row needs at least one True.

    Returns:
        ``(crops, mask)`` as C-contiguous arrays.

    Raises:
        TypeError: not numpy arrays, or the wrong dtype.
        ValueError: wrong shape, empty batch, non-finite values or a row with no modality.
    """
    if not isinstance(crops, np.ndarray):
        raise TypeError(f"crops: expected a numpy array, got {type(crops).__name__}")
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask: expected a numpy array, got {type(mask).__name__}")
    if crops.dtype != np.float32:
        raise TypeError(f"crops: expected float32 (mmdg_edge.preprocess.images_to_input output), got {crops.dtype}")
    if mask.dtype != np.bool_:
        raise TypeError(f"mask: expected bool, got {mask.dtype}")
    if crops.ndim != 5 or crops.shape[1:] != CROPS_SAMPLE_SHAPE:
        raise ValueError(f"crops: expected shape (B, {', '.join(map(str, CROPS_SAMPLE_SHAPE))}), got {crops.shape}")
    if crops.shape[0] < 1:
        raise ValueError("crops: the batch is empty (B = 0); pass at least one frameset")
    if mask.shape != (crops.shape[0], len(MODALITIES)):
        raise ValueError(f"mask: expected shape ({crops.shape[0]}, {len(MODALITIES)}) to match crops, got {mask.shape}")
    empty_rows = np.flatnonzero(~mask.any(axis=1))
    if empty_rows.size:
        raise ValueError(
            f"mask: rows {empty_rows.tolist()} have no modality present; at least one is needed to score a face"
        )
    if not np.isfinite(crops).all():
        raise ValueError("crops: contains NaN or infinite values; a corrupt frame must not be scored")
    return np.ascontiguousarray(crops), np.ascontiguousarray(mask)


def check_output(live_prob: Any, batch: int, source: str) -> np.ndarray:
    """Check a backend's output: (batch,) finite probabilities, returned as float32.

    Raises:
        EngineError: wrong shape or values outside [0, 1] (a broken engine must not open a door).
    """
    live_prob = np.asarray(live_prob, dtype=np.float32)
    if live_prob.shape != (batch,):
        raise EngineError(f"{source}: expected live_prob of shape ({batch},), got {live_prob.shape}")
    if not np.isfinite(live_prob).all() or (live_prob < 0).any() or (live_prob > 1).any():
        raise EngineError(f"{source}: produced live probabilities outside [0, 1] or non-finite: {live_prob.tolist()}")
    return live_prob


def parse_model_metadata(properties: Mapping[str, str], source: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Read and check the metadata a compiled model carries (ONNX metadata_props, TensorRT sidecar).

    Args:
        properties: key → JSON string; ``"mmdg_edge"`` holds the checkpoint metadata and
            ``"mmdg_edge_export"`` the export info.
        source: the file name, for messages.

    Returns:
        ``(metadata, export_info)``.

    Raises:
        EngineMismatch: metadata missing, not JSON, or incompatible with this SDK (preprocess
            version, modality order, class order, threshold, tampering), with the reason.
    """
    metadata = _load_json_property(properties, METADATA_KEY, source)
    export_info = _load_json_property(properties, EXPORT_KEY, source)
    try:
        validate_metadata(metadata, source=source)
    except CheckpointError as exc:
        raise EngineMismatch(f"refusing the model: {exc}") from exc
    if not isinstance(export_info, dict) or export_info.get("precision") not in PRECISIONS:
        got = export_info.get("precision") if isinstance(export_info, dict) else export_info
        raise EngineMismatch(f"{source}: export info names precision {got!r}, expected one of {PRECISIONS}")
    return metadata, export_info


def _load_json_property(properties: Mapping[str, str], key: str, source: str) -> Any:
    if key not in properties:
        raise EngineMismatch(
            f"{source}: has no {key!r} metadata; it was not exported by mmdg-edge (use `mmdg-edge export`), "
            "so its preprocessing and classes are unknown"
        )
    try:
        return json.loads(properties[key])
    except (json.JSONDecodeError, RecursionError) as exc:
        raise EngineMismatch(f"{source}: {key!r} metadata is not valid JSON ({exc})") from exc


class Engine(ABC):
    """Base class of every inference engine.

    Subclasses implement ``_run`` (validated numpy in, probabilities out) and ``precision``, set
    ``_metadata`` to the checkpoint metadata, ``_model_sha256`` to the digest of the file bytes
    they loaded and ``_files`` to every file they read with its digest, and may override ``close``. Engines are context managers.

    Example:
        >>> with create_engine("onnxruntime", "model.onnx") as engine:  # doctest: +SKIP
        ...     live_prob = engine.run(crops, mask)
    """

    name: str = "engine"

    def __init__(self) -> None:
        self._metadata: Dict[str, Any] = {}
        self._model_sha256: Optional[str] = None
        self._files: Tuple[Tuple[Path, str], ...] = ()
        self._closed = False

    @property
    def metadata(self) -> Dict[str, Any]:
        """The checkpoint metadata (threshold, preprocess, config, ...); a copy, safe to modify."""
        return json.loads(json.dumps(self._metadata))

    @property
    def model_sha256(self) -> Optional[str]:
        """Hex SHA-256 of the model file bytes this engine loaded and runs; None for an in-memory model.

        ``metadata["sha256"]`` names the checkpoint's weights, which its FP32, FP16 and INT8 exports
        share; this digest names the one file, so whatever is bound to a model (a device profile, an
        audit record) can tell those exports apart. It is computed from the same bytes the backend
        was given, never from a second read of the file.
        """
        return self._model_sha256

    @property
    def files(self) -> Tuple[Tuple[Path, str], ...]:
        """Every file whose content this engine acts on, each with the SHA-256 of the bytes it read.

        The model file, and for a TensorRT plan its sidecar (threshold, preprocessing, precision):
        what a trusted key's signatures must cover. Empty for an in-memory model.
        """
        return self._files

    @property
    @abstractmethod
    def precision(self) -> str:
        """The arithmetic the engine runs in: ``"fp32"``, ``"fp16"``, ``"int8"`` or ``"bf16"``."""

    def describe(self) -> Dict[str, Any]:
        """What runs where: engine name, precision, model digest; subclasses add device/providers."""
        return {"engine": self.name, "precision": self.precision, "model_sha256": self.model_sha256}

    def run(self, crops: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Score a batch of framesets.

        Args:
            crops: (B, 3, 3, 224, 224) float32 from ``mmdg_edge.preprocess.images_to_input``.
            mask: (B, 3) bool presence mask.

        Returns:
            (B,) float32 live probabilities.

        Raises:
            TypeError, ValueError: invalid inputs (see ``check_inputs``).
            EngineError: the engine is closed or the backend failed.
        """
        if self._closed:
            raise EngineError(f"{self.name}: the engine is closed")
        crops, mask = check_inputs(crops, mask)
        return check_output(self._run(crops, mask), crops.shape[0], self.name)

    @abstractmethod
    def _run(self, crops: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Backend inference on validated inputs."""

    def close(self) -> None:
        """Release the backend's resources; ``run`` raises EngineError afterwards."""
        self._closed = True

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
