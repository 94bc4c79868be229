"""Inference engines behind one contract, created by name or chosen automatically.

Engines register in a static table (name → "module:callable") and are imported on first use,
so listing or choosing an engine imports neither torch nor TensorRT. ``auto`` lives in one
function, ``select_engine``, which says what it chose and why.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Tuple, Union

from ..errors import MissingDependency
from .base import Engine

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

PLAN_SUFFIXES = (".plan", ".engine", ".trt")
ONNX_SUFFIXES = (".onnx",)
CHECKPOINT_SUFFIXES = (".safetensors",)
GPU_ORT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


@dataclass(frozen=True)
class _EngineEntry:
    target: str  # "module:callable"
    modules: Tuple[str, ...]  # importable names the engine needs
    extra: str  # the mmdg-edge extra that provides them


def _create_registry(entries: Iterable[Tuple[str, _EngineEntry]]) -> Dict[str, _EngineEntry]:
    registry: Dict[str, _EngineEntry] = {}
    for name, entry in entries:
        if name in registry:
            raise ValueError(f"engine {name!r} is registered twice ({registry[name].target} and {entry.target})")
        registry[name] = entry
    return registry


_ENGINES = _create_registry(
    (
        ("onnxruntime", _EngineEntry("mmdg_edge.engines.onnxruntime_engine:OnnxRuntimeEngine", ("onnxruntime",), "")),
        ("torch", _EngineEntry("mmdg_edge.engines.torch_engine:TorchEngine", ("torch", "open_clip"), "torch")),
        ("tensorrt", _EngineEntry("mmdg_edge.engines.tensorrt_engine:TensorRTEngine", ("tensorrt", "pycuda"), "tensorrt")),
    )
)


def list_engines() -> Tuple[str, ...]:
    """Every registered engine name, installed or not."""
    return tuple(_ENGINES)


def available_engines() -> Tuple[str, ...]:
    """Engine names whose packages are installed here (checked without importing them)."""
    return tuple(
        name for name, entry in _ENGINES.items() if all(_is_installed(module) for module in entry.modules)
    )


def _is_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class EngineChoice:
    """What ``select_engine`` picked: the engine name, the options it adds, and why."""

    name: str
    reason: str
    options: Mapping[str, Any] = field(default_factory=dict)


def select_engine(name: str, model_path: PathLike) -> EngineChoice:
    """Resolve an engine name, ``"auto"`` included, for a model file.

    ``auto`` prefers, among what the file and this machine allow: a TensorRT plan, then
    onnxruntime on a GPU provider, then torch on CUDA, then onnxruntime on the CPU. The file kind
    decides which engines can read it: ``.plan`` → TensorRT, ``.onnx`` → onnxruntime,
    ``.safetensors`` → torch.

    Args:
        name: a registered engine name or ``"auto"``.
        model_path: the model file.

    Returns:
        An EngineChoice; ``reason`` is a sentence for logs and the CLI.

    Raises:
        ValueError: unknown name, or a file kind no engine reads.
        MissingDependency: ``auto`` needs an engine that is not installed.

    Example:
        >>> select_engine("auto", "model.onnx").reason  # doctest: +SKIP
        'model.onnx is ONNX; onnxruntime has no GPU provider here, so CPUExecutionProvider'
    """
    if name != "auto":
        if name not in _ENGINES:
            raise ValueError(f"engine: unknown name {name!r}; available: {', '.join(('auto',) + list_engines())}")
        return EngineChoice(name, f"engine {name!r} was requested by name")
    path = Path(model_path)
    suffix = path.suffix.lower()
    installed = available_engines()
    if suffix in PLAN_SUFFIXES:
        _require_engine("tensorrt", installed, path)
        return EngineChoice("tensorrt", f"{path.name} is a TensorRT plan; only the TensorRT engine runs it")
    if suffix in ONNX_SUFFIXES:
        _require_engine("onnxruntime", installed, path)
        gpu = _gpu_ort_providers()
        if gpu:
            return EngineChoice(
                "onnxruntime",
                f"{path.name} is ONNX and onnxruntime offers {', '.join(gpu)}; using the GPU with CPU fallback",
                {"providers": gpu + ("CPUExecutionProvider",)},
            )
        return EngineChoice(
            "onnxruntime",
            f"{path.name} is ONNX and onnxruntime has no GPU provider here, so CPUExecutionProvider",
            {"providers": ("CPUExecutionProvider",)},
        )
    if suffix in CHECKPOINT_SUFFIXES:
        _require_engine("torch", installed, path)
        torch = importlib.import_module("torch")
        if torch.cuda.is_available():
            return EngineChoice("torch", f"{path.name} is a checkpoint and torch sees CUDA", {"device": "cuda"})
        return EngineChoice(
            "torch",
            f"{path.name} is a checkpoint and no CUDA device is visible, so torch on CPU "
            "(export it with `mmdg-edge export` for the faster onnxruntime default)",
            {"device": "cpu"},
        )
    raise ValueError(
        f"model_path: cannot tell which engine reads {path.name!r}; expected a TensorRT plan "
        f"({', '.join(PLAN_SUFFIXES)}), ONNX ({', '.join(ONNX_SUFFIXES)}) or a checkpoint "
        f"({', '.join(CHECKPOINT_SUFFIXES)})"
    )


def _require_engine(name: str, installed: Tuple[str, ...], path: Path) -> None:
    if name not in installed:
        entry = _ENGINES[name]
        hint = f'pip install "mmdg-edge[{entry.extra}]"' if entry.extra else "pip install mmdg-edge"
        raise MissingDependency(
            f"{path.name} needs the {name} engine ({', '.join(entry.modules)}), which is not installed; {hint}"
        )


def _gpu_ort_providers() -> Tuple[str, ...]:
    ort = importlib.import_module("onnxruntime")
    available = set(ort.get_available_providers())
    return tuple(provider for provider in GPU_ORT_PROVIDERS if provider in available)


def model_files(model_path: PathLike) -> Tuple[Path, ...]:
    """The files an engine reads for ``model_path``: the file itself and, for a TensorRT plan, its
    sidecar (which sets the threshold, preprocessing and precision), so a signature check can
    cover all of them before any is parsed."""
    path = Path(model_path)
    if path.suffix.lower() in PLAN_SUFFIXES:
        from .tensorrt_engine import sidecar_path

        return path, sidecar_path(path)
    return (path,)


def create_engine(name: str, model_path: PathLike, **options: Any) -> Engine:
    """Create an inference engine by name, or the best one for the file and machine with ``"auto"``.

    Args:
        name: ``"auto"`` or one of ``list_engines()`` (onnxruntime, torch, tensorrt).
        model_path: ``.onnx`` (onnxruntime), ``.safetensors`` checkpoint (torch) or TensorRT plan.
        **options: passed to the engine's constructor (e.g. ``intra_op_num_threads`` for
            onnxruntime, ``device``/``dtype`` for torch); they override what ``auto`` adds.

    Returns:
        An Engine: ``engine.run(crops, mask) -> live_prob (B,)``, ``engine.metadata``.

    Raises:
        ValueError: unknown engine name or model file kind.
        MissingDependency: the engine's packages are not installed.
        EngineError, EngineMismatch: the model cannot be loaded or does not match this SDK.

    Example:
        >>> engine = create_engine("auto", "model.onnx", intra_op_num_threads=2)  # doctest: +SKIP
    """
    choice = select_engine(name, model_path)
    if name == "auto":
        logger.info("auto engine: %s (%s)", choice.name, choice.reason)
    entry = _ENGINES[choice.name]
    module_name, _, attribute = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except MissingDependency:  # an ImportError that already says what to install
        raise
    except ImportError as exc:
        hint = f'pip install "mmdg-edge[{entry.extra}]"' if entry.extra else "pip install mmdg-edge"
        raise MissingDependency(f"engine {choice.name!r} cannot be imported ({exc}); {hint}") from exc
    factory = getattr(module, attribute)
    return factory(model_path, **{**dict(choice.options), **options})


__all__ = [
    "Engine",
    "EngineChoice",
    "available_engines",
    "create_engine",
    "list_engines",
    "model_files",
    "select_engine",
]
