"""Engine benchmark: latency p50/p95 and throughput per engine, precision and batch size.

Every row carries its speed ratio to torch eager FP32 measured in the same run on the same
inputs, and its accuracy cost against that reference: the largest live-probability difference
and the verdict agreement. Used by ``mmdg-edge bench`` and ``benchmarks/bench_engines.py``.
"""
from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import MissingDependency, require
from .base import Engine

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

BASELINE = "torch eager"
PRESETS = ("tiny", "paper")
_PROVIDER_DEVICES = {
    "CPUExecutionProvider": "cpu",
    "CUDAExecutionProvider": "cuda",
    "TensorrtExecutionProvider": "cuda",
}


@dataclass(frozen=True)
class BenchRow:
    """One engine at one batch size."""

    config: str
    engine: str
    precision: str
    device: str
    batch: int
    p50_ms: float
    p95_ms: float
    throughput_fps: float
    speedup: float
    max_abs_error: float
    agreement: float
    baseline: str = BASELINE  # what speedup, max_abs_error and agreement compare with


def measure_latency(
    engines: Dict[str, Engine], crops: np.ndarray, mask: np.ndarray, *, iterations: int, warmup: int
) -> Dict[str, List[float]]:
    """Milliseconds per ``run`` call of each engine, ``iterations`` timed rounds after ``warmup``.

    The engines take turns within every round, so load from other processes on a shared
    machine hits each of them alike and the ratios stay fair.
    """
    if iterations < 1 or warmup < 0:
        raise ValueError(f"iterations/warmup: expected ≥ 1 and ≥ 0, got {iterations}, {warmup}")
    for _ in range(warmup):
        for engine in engines.values():
            engine.run(crops, mask)
    latencies: Dict[str, List[float]] = {label: [] for label in engines}
    for _ in range(iterations):
        for label, engine in engines.items():
            start = time.perf_counter()
            engine.run(crops, mask)
            latencies[label].append((time.perf_counter() - start) * 1e3)
    return latencies


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def benchmark(
    engines: Dict[str, Engine],
    inputs: Tuple[np.ndarray, np.ndarray],
    *,
    batch_sizes: Sequence[int] = (1, 8),
    iterations: int = 5,
    warmup: int = 1,
    threshold: Optional[float] = None,
    config: str = "",
    baseline: str = BASELINE,
) -> List[BenchRow]:
    """Time every engine at every batch size and compare it with the baseline.

    Args:
        engines: label → engine; ``baseline`` must be among them and is the reference for speed
            and accuracy.
        inputs: ``(crops, mask)`` with at least ``max(batch_sizes)`` rows; accuracy uses all rows.
        batch_sizes: batch sizes to time.
        iterations, warmup: timed and untimed calls per engine and batch size.
        threshold: live-probability threshold for the verdict agreement; None = the median of
            the reference probabilities (half the rows on each side: the hardest split, and the
            only informative one for a random-init model whose scores all sit near one value).
        config: a label for the table (e.g. "tiny").
        baseline: the reference engine's label: ``BASELINE`` (torch eager FP32), or onnxruntime
            FP32 where torch is not installed.

    Returns:
        One BenchRow per engine and batch size, baseline first.
    """
    if baseline not in engines:
        raise ValueError(f"engines: the baseline {baseline!r} is required, got {sorted(engines)}")
    crops, mask = inputs
    if crops.shape[0] < max(batch_sizes):
        raise ValueError(f"inputs: {crops.shape[0]} rows, the largest batch needs {max(batch_sizes)}")
    reference = engines[baseline].run(crops, mask)
    threshold = float(np.median(reference)) if threshold is None else threshold
    order = [baseline] + [label for label in engines if label != baseline]
    accuracy: Dict[str, Tuple[float, float]] = {}
    for label in order:
        live_prob = reference if label == baseline else engines[label].run(crops, mask)
        agreement = float(np.mean((live_prob >= threshold) == (reference >= threshold)))
        accuracy[label] = (float(np.max(np.abs(live_prob - reference))), agreement)
    rows = []
    for batch in batch_sizes:
        ordered = {label: engines[label] for label in order}
        timings = measure_latency(ordered, crops[:batch], mask[:batch], iterations=iterations, warmup=warmup)
        baseline_ms = _percentile(timings[baseline], 50)
        for label in order:
            latencies = timings[label]
            p50 = _percentile(latencies, 50)
            info = engines[label].describe()
            rows.append(
                BenchRow(
                    config=config,
                    engine=label,
                    precision=str(info.get("precision", "")),
                    device=_device_label(info),
                    batch=batch,
                    p50_ms=p50,
                    p95_ms=_percentile(latencies, 95),
                    throughput_fps=batch * 1e3 / statistics.mean(latencies),
                    speedup=baseline_ms / p50,
                    max_abs_error=accuracy[label][0],
                    agreement=accuracy[label][1],
                    baseline=baseline,
                )
            )
            logger.info("%s %s batch %d: p50 %.1f ms", config, label, batch, p50)
    return rows


def _device_label(info: Dict[str, Any]) -> str:
    """Where an engine runs, in torch's lower-case words ("cpu", "cuda"), whatever the engine reports.

    onnxruntime reports providers ("CUDAExecutionProvider", then its CPU fallback): the first one
    decides. TensorRT reports the GPU's product name; it always runs on CUDA.
    """
    providers = list(info.get("providers") or [])
    if providers:
        name = str(providers[0])
        return _PROVIDER_DEVICES.get(name, name.replace("ExecutionProvider", "").lower())
    if info.get("engine") == "tensorrt":
        return "cuda"
    return str(info.get("device", "")).lower()


def format_table(rows: Sequence[BenchRow]) -> str:
    """A fixed-width text table of benchmark rows."""
    header = (
        f"{'config':<7} {'engine':<20} {'prec':<5} {'device':<8} {'batch':>5} {'p50 ms':>9} {'p95 ms':>9} "
        f"{'fps':>8} {'×base':>7} {'max|Δp|':>9} {'agree':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.config:<7} {row.engine:<20} {row.precision:<5} {row.device:<8} {row.batch:>5} {row.p50_ms:>9.1f} "
            f"{row.p95_ms:>9.1f} {row.throughput_fps:>8.2f} {row.speedup:>6.2f}× {row.max_abs_error:>9.2e} "
            f"{row.agreement:>6.1%}"
        )
    if rows:
        lines.append(f"×base, max|Δp|, agree: against {rows[0].baseline} at the same batch size, in the same run")
    return "\n".join(lines)


def create_checkpoint(preset: str, directory: PathLike, *, seed: int = 0) -> Path:
    """Save a randomly initialised checkpoint of the ``tiny`` or ``paper`` config (speed benchmarks only).

    The U-Adapter++ up-projections start at zero (the model then equals plain CLIP); they are
    given small random values so the adapters do real work in the timed graph.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset: expected one of {PRESETS}, got {preset!r}")
    torch = require("torch", "torch")
    from ..checkpoint import save_checkpoint
    from ..model import MMDGConfig, create_model

    torch.manual_seed(seed)
    model = create_model(MMDGConfig.tiny() if preset == "tiny" else MMDGConfig.paper())
    with torch.no_grad():
        for block in model.adapters:
            for adapter in block:
                adapter.up.weight.normal_(0.0, 0.02)
    return save_checkpoint(Path(directory) / f"{preset}.safetensors", model, provenance={"note": "random init, benchmark"})


def _skip(label: str, why: str) -> None:
    logger.warning("bench: skipped %s: %s", label, why)


def create_engines(
    checkpoint: PathLike,
    directory: PathLike,
    *,
    threads: int = 0,
    int8: bool = True,
    compile: bool = False,
    stack: ExitStack,
) -> Dict[str, Engine]:
    """Every engine this machine can run for a checkpoint, keyed by a table label (torch needed).

    CPU: torch eager FP32 (baseline), optional torch.compile, then ``create_onnx_engines`` on its
    export. GPU, when present: torch CUDA FP32/FP16. Exported files go to ``directory``; engines are
    closed by ``stack``.
    """
    from .export import export_onnx
    from .torch_engine import TorchEngine

    torch = require("torch", "torch")
    engines: Dict[str, Engine] = {BASELINE: stack.enter_context(TorchEngine(checkpoint))}
    if compile:
        engines["torch compile"] = stack.enter_context(TorchEngine(checkpoint, compile=True))
    if torch.cuda.is_available():
        engines["torch cuda"] = stack.enter_context(TorchEngine(checkpoint, device="cuda"))
        engines["torch cuda fp16"] = stack.enter_context(TorchEngine(checkpoint, device="cuda", dtype="fp16"))
    else:
        _skip("torch cuda", "torch sees no CUDA device")
    onnx_path = export_onnx(checkpoint, Path(directory) / "model.onnx")
    return {**engines, **create_onnx_engines(onnx_path, directory, threads=threads, int8=int8, stack=stack)}


def create_onnx_engines(onnx_path: PathLike, directory: PathLike, *, threads: int = 0, int8: bool = True,
                        stack: ExitStack) -> Dict[str, Engine]:
    """The engines of an FP32 ONNX file: onnxruntime FP32 on CPU, dynamic INT8 (needs the ``onnx``
    package), onnxruntime CUDA and TensorRT FP16 where present. Each one left out is logged with why."""
    import onnxruntime as ort

    from . import _is_installed, available_engines
    from .export import quantize_onnx
    from .onnxruntime_engine import OnnxRuntimeEngine

    directory = Path(directory)
    cpu = ("CPUExecutionProvider",)
    engines: Dict[str, Engine] = {
        "onnxruntime": stack.enter_context(OnnxRuntimeEngine(onnx_path, providers=cpu, intra_op_num_threads=threads))}
    if int8 and not _is_installed("onnx"):
        _skip("onnxruntime int8", 'quantising needs the onnx package (pip install "mmdg-edge[torch]")')
    elif int8:
        int8_path = quantize_onnx(onnx_path, directory / "model.int8.onnx", "dynamic")
        engines["onnxruntime int8"] = stack.enter_context(
            OnnxRuntimeEngine(int8_path, providers=cpu, intra_op_num_threads=threads))
    if "CUDAExecutionProvider" in ort.get_available_providers():
        engines["onnxruntime cuda"] = stack.enter_context(
            OnnxRuntimeEngine(onnx_path, providers=("CUDAExecutionProvider",)))
    else:
        _skip("onnxruntime cuda", "this onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)")
    if "tensorrt" in available_engines():
        from .tensorrt_engine import TensorRTEngine, build_engine

        plan = build_engine(onnx_path, directory / "model.plan", fp16=True, max_batch=8, opt_batch=8)
        engines["tensorrt fp16"] = stack.enter_context(TensorRTEngine(plan))
    else:
        _skip("tensorrt fp16", 'tensorrt is not installed (pip install "mmdg-edge[tensorrt]", on a GPU)')
    return engines


def _torch_or_none() -> Any:
    try:
        return require("torch", "torch")
    except MissingDependency:
        return None


def run_benchmark(
    checkpoint: str,
    *,
    batch_sizes: Sequence[int] = (1, 8),
    iterations: int = 5,
    warmup: int = 1,
    threads: int = 2,
    int8: bool = True,
    compile: bool = False,
    inputs: Optional[Tuple[np.ndarray, np.ndarray]] = None,
    threshold: Optional[float] = None,
) -> List[BenchRow]:
    """Benchmark every available engine on one model; say (in the log) which were skipped and why.

    With torch, the baseline is torch eager FP32 and the ONNX engines run its export. Without torch
    (a kiosk install) or for an ONNX file, the onnxruntime engines run alone, against onnxruntime
    FP32; ``tiny`` is then timed on the bundled demo model (the tiny config, trained weights: the
    same graph, so the same speed).

    Args:
        checkpoint: ``.safetensors`` path, an FP32 ``.onnx`` file, ``"demo"``, or ``"tiny"``/``"paper"``
            for a random-init model.
        batch_sizes, iterations, warmup: what to time.
        threads: CPU threads for torch and onnxruntime alike (0 = their defaults).
        int8: include onnxruntime dynamic INT8.
        compile: include torch.compile (slow to warm up).
        inputs: ``(crops, mask)`` to time and compare on; default seeded random crops, all present.
        threshold: verdict threshold; None = the median of the reference (see ``benchmark``).

    Returns:
        The rows (see ``benchmark``).

    Raises:
        MissingDependency: a checkpoint that only torch can run (``paper``, a ``.safetensors`` file)
            without torch.
    """
    torch = None if str(checkpoint).endswith(".onnx") else _torch_or_none()
    if inputs is None:
        rng = np.random.default_rng(0)
        rows = max(max(batch_sizes), 16)
        inputs = (rng.standard_normal((rows, 3, 3, 224, 224), dtype=np.float32), np.ones((rows, 3), bool))
    timing = dict(batch_sizes=batch_sizes, iterations=iterations, warmup=warmup, threshold=threshold)
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        if torch is None:
            onnx_path = _onnx_model(checkpoint)
            for torch_label in (BASELINE, "torch compile") if compile else (BASELINE,):
                _skip(torch_label, "an ONNX file holds no torch model" if str(checkpoint).endswith(".onnx") else
                      'torch is not installed (pip install "mmdg-edge[torch]")')
            engines = create_onnx_engines(onnx_path, scratch, threads=threads, int8=int8, stack=stack)
            label = checkpoint if checkpoint in PRESETS else Path(onnx_path).stem
            return benchmark(engines, inputs, config=label, baseline="onnxruntime", **timing)
        previous_threads = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        stack.callback(torch.set_num_threads, previous_threads)
        path = create_checkpoint(checkpoint, scratch) if checkpoint in PRESETS else Path(checkpoint)
        label = checkpoint if checkpoint in PRESETS else path.stem
        engines = create_engines(path, scratch, threads=threads, int8=int8, compile=compile, stack=stack)
        return benchmark(engines, inputs, config=label, **timing)


def _onnx_model(checkpoint: str) -> Path:
    """The ONNX file to time without torch: the file itself, or the demo model for ``demo`` and ``tiny``."""
    from ..assets import DEMO_CHECKPOINT, DEMO_MODEL, bundled

    if str(checkpoint).endswith(".onnx"):
        return Path(checkpoint)
    if checkpoint in ("demo", "tiny") or Path(checkpoint) == DEMO_CHECKPOINT:
        if checkpoint == "tiny":
            logger.info("bench: torch is not installed, so tiny is timed on the demo model (the tiny config, "
                        "trained weights)")
        return bundled(DEMO_MODEL, "reinstall mmdg-edge")
    raise MissingDependency(f"bench --checkpoint {checkpoint}: building or exporting it needs torch, which this "
                            'install lacks: pip install "mmdg-edge[torch]"; without torch, bench an ONNX file '
                            "(demo, tiny or FILE.onnx)")
