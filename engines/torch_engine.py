"""torch engine: eager or ``torch.compile``, CPU or CUDA, FP32/FP16/BF16, from a checkpoint.

Training machines and GPU workstations use it directly on checkpoints; kiosks use the
onnxruntime or TensorRT engines (no torch there).
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Union

import numpy as np

from ..checkpoint import load_checkpoint_bytes, read_checkpoint_bytes
from ..errors import EngineError, require
from .base import Engine

if TYPE_CHECKING:
    from ..model import MMDGPlusPlus

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

DTYPES = ("fp32", "fp16", "bf16")


class TorchEngine(Engine):
    """Run a checkpoint with torch.

    Args:
        checkpoint: ``.safetensors`` checkpoint (``mmdg_edge.checkpoint``).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: ``"fp32"``, ``"fp16"`` or ``"bf16"``; inputs are cast on the way in and the
            probabilities come back as float32.
        compile: wrap the model in ``torch.compile`` (first runs are slow while it compiles).

    Raises:
        ValueError: unknown dtype or device.
        CheckpointError: the checkpoint cannot be loaded.
        EngineError: the device is not available.

    Example:
        >>> engine = TorchEngine("model.safetensors", device="cuda", dtype="fp16")  # doctest: +SKIP
        >>> engine.run(crops, mask)  # doctest: +SKIP
    """

    name = "torch"

    def __init__(self, checkpoint: PathLike, *, device: str = "cpu", dtype: str = "fp32", compile: bool = False) -> None:
        super().__init__()
        torch = require("torch", "torch")
        _check_device(torch, device)
        if dtype not in DTYPES:
            raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
        self.path = Path(checkpoint)
        # One read: the weights loaded and the digest reported come from the same bytes.
        data = read_checkpoint_bytes(self.path)
        model, metadata = load_checkpoint_bytes(data, source=str(self.path), device="cpu")
        self._setup(model, metadata, device, dtype, compile)
        self._model_sha256 = hashlib.sha256(data).hexdigest()
        self._files = ((self.path, self._model_sha256),)

    @classmethod
    def from_model(
        cls, model: "MMDGPlusPlus", metadata: Mapping[str, Any], *, device: str = "cpu", dtype: str = "fp32",
        compile: bool = False,
    ) -> "TorchEngine":
        """Wrap an in-memory model and its checkpoint metadata (benchmarks, tests, notebooks).

        The model is moved/cast in place and put in eval mode. No file was loaded, so
        ``model_sha256`` is None.
        """
        torch = require("torch", "torch")
        _check_device(torch, device)
        if dtype not in DTYPES:
            raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
        engine = cls.__new__(cls)
        Engine.__init__(engine)
        engine.path = None
        engine._setup(model, metadata, device, dtype, compile)
        return engine

    def _setup(self, model: "MMDGPlusPlus", metadata: Mapping[str, Any], device: str, dtype: str, compile: bool) -> None:
        torch = require("torch", "torch")
        self.device = torch.device(device)
        self.dtype_name = dtype
        self._dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
        self._metadata = dict(metadata)
        self._compiled = compile
        model = model.to(self.device, self._dtype).eval()
        self._model = model
        self._forward = torch.compile(model.live_prob) if compile else model.live_prob

    @property
    def precision(self) -> str:
        return self.dtype_name

    def describe(self) -> Dict[str, Any]:
        return {
            **super().describe(),
            "model": str(self.path) if self.path else "<in memory>",
            "device": str(self.device),
            "compile": self._compiled,
        }

    def _run(self, crops: np.ndarray, mask: np.ndarray) -> np.ndarray:
        torch = require("torch", "torch")
        with torch.inference_mode():
            crops_t = torch.from_numpy(crops).to(self.device, self._dtype, non_blocking=True)
            mask_t = torch.from_numpy(mask).to(self.device, non_blocking=True)
            try:
                live_prob = self._forward(crops_t, mask_t)
            except RuntimeError as exc:  # CUDA OOM, unsupported kernel for the dtype, compile errors
                raise EngineError(f"torch engine ({self.device}, {self.dtype_name}) failed: {exc}") from exc
            return live_prob.float().cpu().numpy()

    def close(self) -> None:
        self._model = None
        self._forward = None
        super().close()


def _check_device(torch: Any, device: str) -> None:
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device: {device!r} requested but torch sees no CUDA device")
