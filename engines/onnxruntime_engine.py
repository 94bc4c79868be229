"""onnxruntime engine: the embedded default (CPU anywhere, CUDA/TensorRT providers when present).

Part of the kiosk path: imports onnxruntime and numpy, never torch. A model is refused unless
its metadata (written by ``mmdg-edge export``) matches this SDK and its inputs/outputs match
the engine contract.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import onnxruntime as ort

from ..errors import EngineError, EngineMismatch
from ._onnx_props import parse_onnx_properties
from .base import CROPS_SAMPLE_SHAPE, INPUT_NAMES, OUTPUT_NAME, Engine, parse_model_metadata

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

PROVIDER_ORDER: Tuple[str, ...] = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
"""Preferred execution providers, best first; filtered by what this onnxruntime build offers."""

# name → (ONNX type string, shape after the batch dimension)
_EXPECTED_INPUTS = {"crops": ("tensor(float)", CROPS_SAMPLE_SHAPE), "mask": ("tensor(bool)", (3,))}
_EXPECTED_OUTPUT = (OUTPUT_NAME, "tensor(float)", ())


def resolve_providers(requested: Optional[Sequence[str]], available: Sequence[str]) -> List[str]:
    """Ordered providers to ask onnxruntime for.

    Args:
        requested: the caller's ordered list, or None for ``PROVIDER_ORDER``.
        available: ``onnxruntime.get_available_providers()``.

    Returns:
        ``requested`` (or the default order) without the providers this build lacks.

    Raises:
        ValueError: ``requested`` is a bare string or empty.
        EngineError: none of the requested providers is available.
    """
    if isinstance(requested, str):
        raise ValueError(f"providers: expected a list of provider names, got the string {requested!r}")
    order = list(PROVIDER_ORDER if requested is None else requested)
    if not order:
        raise ValueError(f"providers: expected at least one provider, e.g. {list(PROVIDER_ORDER)}")
    chosen = [provider for provider in order if provider in available]
    skipped = [provider for provider in order if provider not in available]
    if not chosen:
        raise EngineError(f"providers: none of {order} is available in this onnxruntime build (it has {list(available)})")
    if skipped:
        logger.info("onnxruntime lacks %s; falling back to %s", skipped, chosen)
    return chosen


class OnnxRuntimeEngine(Engine):
    """Run an exported MMDG++ ONNX model with onnxruntime.

    Args:
        model_path: ``.onnx`` file written by ``mmdg-edge export`` (FP32, FP16 or INT8), weights
            inline; it is read once and those bytes are checked, hashed (``model_sha256``) and run.
        providers: ordered execution providers; None = TensorRT EP, CUDA EP, CPU, filtered by
            what is installed. ``describe()["providers"]`` reports what onnxruntime actually uses.
        intra_op_num_threads: threads inside one operator (0 = onnxruntime's default, one per core).
        inter_op_num_threads: threads across operators (0 = default).
        allow_spinning: let idle worker threads spin; False frees the cores for the camera and
            aligner on a small kiosk CPU at a small latency cost.

    Raises:
        EngineError: missing, truncated or unreadable file; no usable provider.
        EngineMismatch: metadata missing/invalid/incompatible, or inputs/outputs not the contract.

    Example:
        >>> engine = OnnxRuntimeEngine("model.onnx", intra_op_num_threads=2)  # doctest: +SKIP
        >>> engine.run(crops, mask)  # doctest: +SKIP
        array([0.93], dtype=float32)
    """

    name = "onnxruntime"

    def __init__(
        self,
        model_path: PathLike,
        *,
        providers: Optional[Sequence[str]] = None,
        intra_op_num_threads: int = 0,
        inter_op_num_threads: int = 0,
        allow_spinning: bool = True,
    ) -> None:
        super().__init__()
        for field_name, value in (("intra_op_num_threads", intra_op_num_threads), ("inter_op_num_threads", inter_op_num_threads)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{field_name}: expected an int ≥ 0 (0 = onnxruntime's default), got {value!r}")
        self.path = Path(model_path)
        # One read: the metadata check, the digest and the session all see these bytes, so a file
        # replaced meanwhile cannot run under another file's checks or digest.
        data = _read_model(self.path)
        # Metadata first: a foreign, truncated or mismatched model is refused before onnxruntime parses it.
        properties = parse_onnx_properties(data, str(self.path))
        self._metadata, self.export_info = parse_model_metadata(properties, str(self.path))
        self._model_sha256 = hashlib.sha256(data).hexdigest()
        self._files = ((self.path, self._model_sha256),)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_num_threads
        options.inter_op_num_threads = inter_op_num_threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        if self.precision == "fp16":
            # onnxruntime 1.32's CPU layout optimisations (ORT_ENABLE_ALL) crash the process on our
            # FP16 graph; the extended level keeps the fusions and loads it safely.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        chosen = resolve_providers(providers, ort.get_available_providers())
        try:
            self._session = ort.InferenceSession(data, sess_options=options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own pybind11 types (InvalidProtobuf, Fail, ...)
            raise EngineError(
                f"{self.path}: onnxruntime cannot load this file; it is truncated, corrupt, not ONNX or keeps "
                f"its weights in external data files (re-export with `mmdg-edge export`) ({exc})"
            ) from exc
        self._check_signature()
        self.providers = tuple(self._session.get_providers())
        logger.info("%s on %s (%s)", self.path.name, self.providers, self.precision)

    def _check_signature(self) -> None:
        inputs = {arg.name: arg for arg in self._session.get_inputs()}
        if sorted(inputs) != sorted(INPUT_NAMES):
            raise EngineMismatch(f"{self.path}: inputs are {sorted(inputs)}, the engine contract is {list(INPUT_NAMES)}")
        for name, (type_name, sample_shape) in _EXPECTED_INPUTS.items():
            _check_arg(self.path, inputs[name], type_name, sample_shape)
        outputs = self._session.get_outputs()
        name, type_name, sample_shape = _EXPECTED_OUTPUT
        if [arg.name for arg in outputs] != [name]:
            raise EngineMismatch(f"{self.path}: outputs are {[arg.name for arg in outputs]}, expected [{name!r}]")
        _check_arg(self.path, outputs[0], type_name, sample_shape)

    @property
    def precision(self) -> str:
        return self.export_info["precision"]

    def describe(self) -> Dict[str, Any]:
        return {
            **super().describe(),
            "model": str(self.path),
            "quantization": self.export_info.get("quantization"),
            "providers": list(self.providers),
        }

    def _run(self, crops: np.ndarray, mask: np.ndarray) -> np.ndarray:
        try:
            return self._session.run([OUTPUT_NAME], {"crops": crops, "mask": mask})[0]
        except Exception as exc:  # onnxruntime's pybind11 error types share no useful base
            raise EngineError(f"{self.path}: onnxruntime failed to run ({exc})") from exc

    def close(self) -> None:
        self._session = None
        super().close()


def _check_arg(path: Path, arg: Any, type_name: str, sample_shape: Tuple[int, ...]) -> None:
    shape = list(arg.shape)
    batch_is_dynamic = bool(shape) and not isinstance(shape[0], int)
    if arg.type != type_name or not batch_is_dynamic or tuple(shape[1:]) != sample_shape:
        expected = ["batch", *sample_shape]
        raise EngineMismatch(
            f"{path}: {arg.name!r} is {arg.type} {shape}, the engine contract is {type_name} {expected} "
            "(dynamic batch)"
        )


def _read_model(path: Path) -> bytes:
    if not path.is_file():
        raise EngineError(f"{path}: no such ONNX file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EngineError(f"{path}: cannot read the ONNX file ({exc})") from exc
