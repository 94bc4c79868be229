"""TensorRT 10: plan builder from the exported ONNX file, and a pycuda runner.

A plan only runs on the GPU model and TensorRT version it was built with, so every plan gets
a sidecar JSON (``model.plan.json``): ONNX and plan SHA-256, TensorRT version, GPU name,
compute capability, precision, optimisation profile and the checkpoint metadata. The runner
refuses a plan whose sidecar does not match the machine. tensorrt and pycuda are imported
only inside the builder and the runner; profiles, sidecars and buffer plans are pure Python.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ..checkpoint import METADATA_KEY
from ..errors import EngineError, EngineMismatch, require
from ..digest import file_sha256
from ..version import __version__
from ._onnx_props import read_onnx_properties
from .base import CROPS_SAMPLE_SHAPE, EXPORT_KEY, INPUT_NAMES, OUTPUT_NAME, Engine, parse_model_metadata

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

SIDECAR_VERSION = 1
MAX_PROFILE_BATCH = 1024
_TENSOR_SPECS: Tuple[Tuple[str, Tuple[int, ...], str, bool], ...] = (
    ("crops", CROPS_SAMPLE_SHAPE, "float32", True),
    ("mask", (3,), "bool", True),
    (OUTPUT_NAME, (), "float32", False),
)


@dataclass(frozen=True)
class OptimizationProfile:
    """The batch sizes a plan accepts: ``min_batch ≤ opt_batch ≤ max_batch`` (tuned for opt)."""

    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 8

    def __post_init__(self) -> None:
        for name in ("min_batch", "opt_batch", "max_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PROFILE_BATCH:
                raise ValueError(f"OptimizationProfile.{name}: expected an int in 1..{MAX_PROFILE_BATCH}, got {value!r}")
        if not self.min_batch <= self.opt_batch <= self.max_batch:
            raise ValueError(
                "OptimizationProfile: expected min_batch ≤ opt_batch ≤ max_batch, got "
                f"{self.min_batch}, {self.opt_batch}, {self.max_batch}"
            )

    def shapes(self) -> Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...], Tuple[int, ...]]]:
        """Per input, the (min, opt, max) shapes TensorRT's optimisation profile takes."""
        return {
            name: tuple((batch, *sample) for batch in (self.min_batch, self.opt_batch, self.max_batch))
            for name, sample, _, is_input in _TENSOR_SPECS
            if is_input
        }

    def check_batch(self, batch: int) -> None:
        """Raise ValueError unless the plan can run ``batch`` framesets in one call."""
        if not self.min_batch <= batch <= self.max_batch:
            raise ValueError(f"batch: the plan accepts {self.min_batch}..{self.max_batch} framesets, got {batch}")

    def to_dict(self) -> Dict[str, int]:
        return {"min_batch": self.min_batch, "opt_batch": self.opt_batch, "max_batch": self.max_batch}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "OptimizationProfile":
        if not isinstance(data, dict) or set(data) != {"min_batch", "opt_batch", "max_batch"}:
            raise ValueError(f"OptimizationProfile.from_dict: expected min_batch, opt_batch, max_batch, got {data!r}")
        return cls(**data)


@dataclass(frozen=True)
class BufferSpec:
    """One I/O binding for a given batch: name, shape, numpy dtype and size in bytes."""

    name: str
    shape: Tuple[int, ...]
    dtype: str
    nbytes: int
    is_input: bool


def plan_buffers(batch: int, profile: Optional[OptimizationProfile] = None) -> Tuple[BufferSpec, ...]:
    """The host/device buffers one call with ``batch`` framesets needs, inputs first.

    Args:
        batch: framesets per call.
        profile: when given, ``batch`` must lie inside it.

    Returns:
        BufferSpec for crops (float32), mask (bool, 1 byte each) and live_prob (float32).
    """
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch: expected an int ≥ 1, got {batch!r}")
    if profile is not None:
        profile.check_batch(batch)
    specs = []
    for name, sample, dtype, is_input in _TENSOR_SPECS:
        shape = (batch, *sample)
        specs.append(BufferSpec(name, shape, dtype, int(np.prod(shape)) * np.dtype(dtype).itemsize, is_input))
    return tuple(specs)


@dataclass(frozen=True)
class PlanSidecar:
    """What a plan was built from and for; written beside the plan as ``<plan>.json``."""

    onnx_sha256: str
    plan_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: Tuple[int, int]
    precision: str
    profile: OptimizationProfile
    metadata: Dict[str, Any]
    export_info: Dict[str, Any]
    dla_core: Optional[int] = None
    sdk_version: str = __version__
    sidecar_version: int = SIDECAR_VERSION
    workspace_mb: int = 1024

    def to_dict(self) -> Dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["compute_capability"] = list(self.compute_capability)
        data["profile"] = self.profile.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str = "sidecar") -> "PlanSidecar":
        """Parse and type-check a sidecar dict; raise EngineMismatch naming what is wrong."""
        if not isinstance(data, dict):
            raise EngineMismatch(f"{source}: expected a JSON object, got {type(data).__name__}")
        names = set(cls.__dataclass_fields__)
        required = names - {"dla_core", "sdk_version", "workspace_mb"}
        missing, unknown = sorted(required - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise EngineMismatch(f"{source}: sidecar lacks {missing} / has unknown keys {unknown}")
        if data["sidecar_version"] != SIDECAR_VERSION:
            raise EngineMismatch(f"{source}: sidecar version {data['sidecar_version']!r}, this SDK reads {SIDECAR_VERSION}")
        capability = data["compute_capability"]
        if not (isinstance(capability, list) and len(capability) == 2 and all(isinstance(v, int) for v in capability)):
            raise EngineMismatch(f"{source}: compute_capability must be [major, minor], got {capability!r}")
        if data["precision"] not in ("fp32", "fp16"):
            raise EngineMismatch(f"{source}: precision must be 'fp32' or 'fp16', got {data['precision']!r}")
        try:
            profile = OptimizationProfile.from_dict(data["profile"])
        except (TypeError, ValueError) as exc:
            raise EngineMismatch(f"{source}: invalid profile ({exc})") from exc
        metadata, export_info = parse_model_metadata(
            {METADATA_KEY: json.dumps(data["metadata"]), EXPORT_KEY: json.dumps(data["export_info"])}, source
        )
        return cls(**{**data, "compute_capability": tuple(capability), "profile": profile,
                      "metadata": metadata, "export_info": export_info})


def sidecar_path(plan_path: PathLike) -> Path:
    """``model.plan`` → ``model.plan.json``."""
    plan_path = Path(plan_path)
    return plan_path.with_name(plan_path.name + ".json")


def write_sidecar(plan_path: PathLike, sidecar: PlanSidecar) -> Path:
    """Write ``<plan>.json``; returns its path."""
    path = sidecar_path(plan_path)
    path.write_text(json.dumps(sidecar.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
    return path


def load_sidecar(plan_path: PathLike) -> PlanSidecar:
    """Read and validate ``<plan>.json``.

    Raises:
        EngineMismatch: the sidecar is missing, not JSON, or incomplete/invalid.
    """
    return read_sidecar(plan_path)[0]


def read_sidecar(plan_path: PathLike) -> Tuple[PlanSidecar, str]:
    """``load_sidecar`` and the SHA-256 of the very bytes it parsed (what a signature must cover).

    Raises:
        EngineMismatch: the sidecar is missing, not JSON, or incomplete/invalid.
    """
    path = sidecar_path(plan_path)
    if not path.is_file():
        raise EngineMismatch(
            f"{plan_path}: no sidecar {path.name}; without it the plan's GPU, TensorRT version and "
            "preprocessing are unknown. Rebuild it with `mmdg-edge build`."
        )
    try:
        raw = path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EngineMismatch(f"{path}: unreadable sidecar ({type(exc).__name__}: {exc})") from exc
    return PlanSidecar.from_dict(data, source=str(path)), hashlib.sha256(raw).hexdigest()


def check_sidecar(
    sidecar: PlanSidecar,
    *,
    tensorrt_version: str,
    gpu_name: str,
    compute_capability: Tuple[int, int],
    plan_sha256: Optional[str] = None,
    source: str = "plan",
) -> None:
    """Refuse a plan built for another GPU or TensorRT version, or modified since it was built.

    Raises:
        EngineMismatch: with what the plan was built for, what this machine has, and the fix.
    """
    fix = "rebuild the plan on this machine with `mmdg-edge build --onnx MODEL.onnx --output MODEL.plan`"
    if sidecar.tensorrt_version != tensorrt_version:
        raise EngineMismatch(
            f"{source}: built with TensorRT {sidecar.tensorrt_version}, this machine has TensorRT "
            f"{tensorrt_version}; plans are not portable across versions; {fix}"
        )
    if tuple(sidecar.compute_capability) != tuple(compute_capability) or sidecar.gpu_name != gpu_name:
        built = f"{sidecar.gpu_name} (compute capability {'.'.join(map(str, sidecar.compute_capability))})"
        here = f"{gpu_name} (compute capability {'.'.join(map(str, compute_capability))})"
        raise EngineMismatch(f"{source}: built for {built}, this GPU is {here}; {fix}")
    if plan_sha256 is not None and plan_sha256 != sidecar.plan_sha256:
        raise EngineMismatch(f"{source}: the plan file does not match its sidecar's SHA-256 (modified or corrupt); {fix}")


def _gpu_identity(device_index: int) -> Tuple[Any, str, Tuple[int, int]]:
    cuda = require("pycuda.driver", "tensorrt")
    cuda.init()
    if not 0 <= device_index < cuda.Device.count():
        raise EngineError(f"device_index: {device_index} is not a CUDA device here ({cuda.Device.count()} found)")
    device = cuda.Device(device_index)
    return device, device.name(), tuple(device.compute_capability())


def build_engine(
    onnx_path: PathLike,
    plan_path: PathLike,
    *,
    fp16: bool = True,
    min_batch: int = 1,
    opt_batch: int = 1,
    max_batch: int = 8,
    workspace_mb: int = 1024,
    timing_cache: Optional[PathLike] = None,
    dla_core: Optional[int] = None,
    device_index: int = 0,
) -> Path:
    """Build a TensorRT plan (and its sidecar) from an exported ONNX file.

    Args:
        onnx_path: FP32 or FP16 ``.onnx`` from ``mmdg-edge export`` (not ORT INT8).
        plan_path: the plan file to write; the sidecar goes to ``<plan>.json``.
        fp16: let TensorRT pick FP16 kernels.
        min_batch, opt_batch, max_batch: the optimisation profile.
        workspace_mb: builder workspace memory limit.
        timing_cache: file to read kernel timings from and update (speeds up rebuilds).
        dla_core: DLA core index on Jetson (layers DLA cannot run fall back to the GPU).
        device_index: CUDA device to build for.

    Returns:
        The plan path.

    Raises:
        ValueError: bad profile, workspace or DLA core.
        MissingDependency: tensorrt or pycuda is not installed.
        EngineMismatch: the ONNX file's metadata is missing or incompatible, or it is ORT INT8.
        EngineError: parsing or building failed (TensorRT's messages are included).

    Example:
        >>> build_engine("model.onnx", "model.plan", fp16=True, max_batch=4)  # doctest: +SKIP
    """
    profile = OptimizationProfile(min_batch, opt_batch, max_batch)
    if not isinstance(workspace_mb, int) or isinstance(workspace_mb, bool) or workspace_mb < 1:
        raise ValueError(f"workspace_mb: expected an int ≥ 1, got {workspace_mb!r}")
    if dla_core is not None and (not isinstance(dla_core, int) or isinstance(dla_core, bool) or dla_core < 0):
        raise ValueError(f"dla_core: expected None or an int ≥ 0, got {dla_core!r}")
    onnx_path, plan_path = Path(onnx_path), Path(plan_path)
    metadata, export_info = parse_model_metadata(read_onnx_properties(onnx_path), str(onnx_path))
    if export_info["precision"] == "int8":
        raise EngineMismatch(
            f"{onnx_path}: onnxruntime INT8 graphs (DynamicQuantizeLinear/MatMulInteger) are not for TensorRT; "
            "build from the FP32 export"
        )
    trt = require("tensorrt", "tensorrt")
    device, gpu_name, capability = _gpu_identity(device_index)
    context = device.retain_primary_context()
    context.push()
    try:
        serialized = _build_serialized(trt, onnx_path, profile, fp16, workspace_mb, timing_cache, dla_core)
    finally:
        context.pop()
        context.detach()
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(bytes(serialized))
    write_sidecar(
        plan_path,
        PlanSidecar(
            onnx_sha256=file_sha256(onnx_path),
            plan_sha256=file_sha256(plan_path),
            tensorrt_version=trt.__version__,
            gpu_name=gpu_name,
            compute_capability=capability,
            precision="fp16" if fp16 else "fp32",
            profile=profile,
            metadata=metadata,
            export_info=export_info,
            dla_core=dla_core,
            workspace_mb=workspace_mb,
        ),
    )
    logger.info("built %s for %s (TensorRT %s, %s)", plan_path, gpu_name, trt.__version__, profile)
    return plan_path


def _build_serialized(
    trt: Any, onnx_path: Path, profile: OptimizationProfile, fp16: bool, workspace_mb: int,
    timing_cache: Optional[PathLike], dla_core: Optional[int],
) -> Any:
    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(0)  # TensorRT 10 networks are always explicit-batch
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"{onnx_path}: TensorRT cannot parse the ONNX graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if fp16:
        if not builder.platform_has_fast_fp16:
            logger.warning("this GPU has no fast FP16; the FP16 plan may not be faster than FP32")
        config.set_flag(trt.BuilderFlag.FP16)
    trt_profile = builder.create_optimization_profile()
    for name, (smallest, optimal, largest) in profile.shapes().items():
        trt_profile.set_shape(name, smallest, optimal, largest)
    config.add_optimization_profile(trt_profile)
    if dla_core is not None:
        if dla_core >= builder.num_DLA_cores:
            raise ValueError(f"dla_core: {dla_core} requested, this device has {builder.num_DLA_cores} DLA cores")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    cache_file = Path(timing_cache) if timing_cache is not None else None
    cache_bytes = cache_file.read_bytes() if cache_file is not None and cache_file.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"{onnx_path}: TensorRT failed to build a plan (see the TensorRT log above)")
    if cache_file is not None:
        cache_file.write_bytes(bytes(config.get_timing_cache().serialize()))
    return serialized


class TensorRTEngine(Engine):
    """Run a TensorRT plan: pinned host buffers, async copies, one CUDA stream per runner.

    Batches larger than the profile's ``max_batch`` run in chunks; smaller than ``min_batch``
    are padded by repeating the last row (the padding rows are dropped). One engine may be shared
    by threads (e.g. two detectors): calls are serialised, since they share one execution
    context, stream and set of buffers.

    Args:
        plan_path: plan written by ``build_engine`` (its sidecar must sit beside it).
        device_index: CUDA device.

    Raises:
        MissingDependency: tensorrt or pycuda is not installed.
        EngineMismatch: no/invalid sidecar, or a plan for another GPU or TensorRT version.
        EngineError: the plan cannot be deserialised or lacks the contract's tensors.

    Example:
        >>> engine = TensorRTEngine("model.plan")  # doctest: +SKIP
        >>> engine.run(crops, mask)  # doctest: +SKIP
    """

    name = "tensorrt"

    def __init__(self, plan_path: PathLike, *, device_index: int = 0) -> None:
        super().__init__()
        self.path = Path(plan_path)
        if not self.path.is_file():
            raise EngineError(f"{self.path}: no such TensorRT plan")
        self.sidecar, sidecar_sha256 = read_sidecar(self.path)
        trt = require("tensorrt", "tensorrt")
        self._cuda = require("pycuda.driver", "tensorrt")
        device, gpu_name, capability = _gpu_identity(device_index)
        # One read: the bytes checked against the sidecar's digest are the bytes deserialised.
        plan = self.path.read_bytes()
        self._model_sha256 = hashlib.sha256(plan).hexdigest()
        self._files = ((self.path, self._model_sha256), (sidecar_path(self.path), sidecar_sha256))
        check_sidecar(
            self.sidecar, tensorrt_version=trt.__version__, gpu_name=gpu_name, compute_capability=capability,
            plan_sha256=self._model_sha256, source=str(self.path),
        )
        self._metadata = self.sidecar.metadata
        self.profile = self.sidecar.profile
        # Held across host copy, execute and copy back: the context, stream and pinned buffers are
        # one per engine, so unserialised threads would score each other's crops.
        self._lock = threading.Lock()
        self._cuda_context = device.retain_primary_context()
        self._cuda_context.push()
        try:
            self._load(trt, plan)
        finally:
            self._cuda_context.pop()

    def _load(self, trt: Any, plan: bytes) -> None:
        cuda = self._cuda
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            raise EngineError(f"{self.path}: TensorRT cannot deserialise this plan")
        names = {self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)}
        if names != {*INPUT_NAMES, OUTPUT_NAME}:
            raise EngineMismatch(f"{self.path}: plan tensors are {sorted(names)}, expected {[*INPUT_NAMES, OUTPUT_NAME]}")
        self._context = self._engine.create_execution_context()
        self._stream = cuda.Stream()
        self._host: Dict[str, np.ndarray] = {}
        self._device: Dict[str, Any] = {}
        for spec in plan_buffers(self.profile.max_batch):
            plan_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(spec.name)))
            if plan_dtype != np.dtype(spec.dtype):
                raise EngineMismatch(f"{self.path}: tensor {spec.name!r} is {plan_dtype} in the plan, expected {spec.dtype}")
            self._host[spec.name] = cuda.pagelocked_empty(spec.shape, spec.dtype)
            self._device[spec.name] = cuda.mem_alloc(spec.nbytes)
            self._context.set_tensor_address(spec.name, int(self._device[spec.name]))

    @property
    def precision(self) -> str:
        return self.sidecar.precision

    def describe(self) -> Dict[str, Any]:
        return {
            **super().describe(),
            "model": str(self.path),
            "device": self.sidecar.gpu_name,
            "tensorrt": self.sidecar.tensorrt_version,
            "profile": self.profile.to_dict(),
        }

    def _run(self, crops: np.ndarray, mask: np.ndarray) -> np.ndarray:
        outputs: List[np.ndarray] = []
        step = self.profile.max_batch
        with self._lock:
            # run() checked before waiting for the lock; close() may have freed the buffers since.
            if self._closed:
                raise EngineError(f"{self.name}: the engine is closed")
            self._cuda_context.push()
            try:
                for start in range(0, crops.shape[0], step):
                    outputs.append(self._run_chunk(crops[start : start + step], mask[start : start + step]))
            finally:
                self._cuda_context.pop()
        return np.concatenate(outputs)

    def _run_chunk(self, crops: np.ndarray, mask: np.ndarray) -> np.ndarray:
        cuda = self._cuda
        batch = crops.shape[0]
        padded = max(batch, self.profile.min_batch)
        if padded > batch:
            crops = np.concatenate([crops, np.repeat(crops[-1:], padded - batch, axis=0)])
            mask = np.concatenate([mask, np.repeat(mask[-1:], padded - batch, axis=0)])
        for name, array in (("crops", crops), ("mask", mask)):
            host = self._host[name][:padded]
            np.copyto(host, array)
            self._context.set_input_shape(name, array.shape)
            cuda.memcpy_htod_async(self._device[name], host, self._stream)
        if not self._context.execute_async_v3(stream_handle=self._stream.handle):
            raise EngineError(f"{self.path}: TensorRT execution failed")
        out = self._host[OUTPUT_NAME][:padded]
        cuda.memcpy_dtoh_async(out, self._device[OUTPUT_NAME], self._stream)
        self._stream.synchronize()
        return out[:batch].copy()

    def close(self) -> None:
        with self._lock:  # never free the buffers under a running call
            if not self._closed:
                self._cuda_context.push()
                try:
                    for allocation in self._device.values():
                        allocation.free()
                    self._context = self._engine = self._runtime = None
                finally:
                    self._cuda_context.pop()
                    self._cuda_context.detach()
            super().close()
