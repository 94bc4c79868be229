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

from ..errors import require
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
) -> List[BenchRow]:
    """Time every engine at every batch size and compare it with the baseline.

    Args:
        engines: label → engine; ``BASELINE`` ("torch eager") must be among them and is the
            reference for speed and accuracy.
        inputs: ``(crops, mask)`` with at least ``max(batch_sizes)`` rows; accuracy uses all rows.
        batch_sizes: batch sizes to time.
        iterations, warmup: timed and untimed calls per engine and batch size.
        threshold: live-probability threshold for the verdict agreement; None = the median of
            the reference probabilities (half the rows on each side: the hardest split, and the
            only informative one for a random-init model whose scores all sit near one value).
        config: a label for the table (e.g. "tiny").

    Returns:
        One BenchRow per engine and batch size, baseline first.
    """
    if BASELINE not in engines:
        raise ValueError(f"engines: the baseline {BASELINE!r} is required, got {sorted(engines)}")
    crops, mask = inputs
    if crops.shape[0] < max(batch_sizes):
        raise ValueError(f"inputs: {crops.shape[0]} rows, the largest batch needs {max(batch_sizes)}")
    reference = engines[BASELINE].run(crops, mask)
    threshold = float(np.median(reference)) if threshold is None else threshold
    order = [BASELINE] + [label for label in engines if label != BASELINE]
    accuracy: Dict[str, Tuple[float, float]] = {}
    for label in order:
        live_prob = reference if label == BASELINE else engines[label].run(crops, mask)
        agreement = float(np.mean((live_prob >= threshold) == (reference >= threshold)))
        accuracy[label] = (float(np.max(np.abs(live_prob - reference))), agreement)
    rows = []
    for batch in batch_sizes:
        ordered = {label: engines[label] for label in order}
        timings = measure_latency(ordered, crops[:batch], mask[:batch], iterations=iterations, warmup=warmup)
        baseline_ms = _percentile(timings[BASELINE], 50)
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
        f"{'fps':>8} {'×torch':>7} {'max|Δp|':>9} {'agree':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.config:<7} {row.engine:<20} {row.precision:<5} {row.device:<8} {row.batch:>5} {row.p50_ms:>9.1f} "
            f"{row.p95_ms:>9.1f} {row.throughput_fps:>8.2f} {row.speedup:>6.2f}× {row.max_abs_error:>9.2e} "
            f"{row.agreement:>6.1%}"
        )
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


def create_engines(
    checkpoint: PathLike,
    directory: PathLike,
    *,
    threads: int = 0,
    int8: bool = True,
    compile: bool = False,
    stack: ExitStack,
) -> Dict[str, Engine]:
    """Every engine this machine can run for a checkpoint, keyed by a table label.

    CPU: torch eager FP32 (baseline), optional torch.compile, onnxruntime FP32 and INT8
    (dynamic). GPU, when present: torch CUDA FP32/FP16, onnxruntime CUDA FP32, TensorRT FP16.
    Exported files go to ``directory``; engines are closed by ``stack``.
    """
    from . import available_engines
    from .export import export_onnx, quantize_onnx
    from .onnxruntime_engine import OnnxRuntimeEngine
    from .torch_engine import TorchEngine

    torch = require("torch", "torch")
    directory = Path(directory)
    engines: Dict[str, Engine] = {}

    def add(label: str, factory: Callable[[], Engine]) -> None:
        engines[label] = stack.enter_context(factory())

    add(BASELINE, lambda: TorchEngine(checkpoint))
    if compile:
        add("torch compile", lambda: TorchEngine(checkpoint, compile=True))
    onnx_path = export_onnx(checkpoint, directory / "model.onnx")
    cpu = ("CPUExecutionProvider",)
    add("onnxruntime", lambda: OnnxRuntimeEngine(onnx_path, providers=cpu, intra_op_num_threads=threads))
    if int8:
        int8_path = quantize_onnx(onnx_path, directory / "model.int8.onnx", "dynamic")
        add("onnxruntime int8", lambda: OnnxRuntimeEngine(int8_path, providers=cpu, intra_op_num_threads=threads))
    if torch.cuda.is_available():
        add("torch cuda", lambda: TorchEngine(checkpoint, device="cuda"))
        add("torch cuda fp16", lambda: TorchEngine(checkpoint, device="cuda", dtype="fp16"))
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        add("onnxruntime cuda", lambda: OnnxRuntimeEngine(onnx_path, providers=("CUDAExecutionProvider",)))
    if "tensorrt" in available_engines():
        from .tensorrt_engine import TensorRTEngine, build_engine

        plan = build_engine(onnx_path, directory / "model.plan", fp16=True, max_batch=8, opt_batch=8)
        add("tensorrt fp16", lambda: TensorRTEngine(plan))
    return engines


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
    """Benchmark every available engine on one checkpoint (or a random ``tiny``/``paper`` preset).

    Args:
        checkpoint: ``.safetensors`` path, or ``"tiny"``/``"paper"`` for a random-init model.
        batch_sizes, iterations, warmup: what to time.
        threads: CPU threads for torch and onnxruntime alike (0 = their defaults).
        int8: include onnxruntime dynamic INT8.
        compile: include torch.compile (slow to warm up).
        inputs: ``(crops, mask)`` to time and compare on; default seeded random crops, all present.
        threshold: verdict threshold; None = the median of the reference (see ``benchmark``).

    Returns:
        The rows (see ``benchmark``).
    """
    torch = require("torch", "torch")

    if inputs is None:
        rng = np.random.default_rng(0)
        rows = max(max(batch_sizes), 16)
        inputs = (rng.standard_normal((rows, 3, 3, 224, 224), dtype=np.float32), np.ones((rows, 3), bool))
    previous_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        if threads:
            torch.set_num_threads(threads)
        stack.callback(torch.set_num_threads, previous_threads)
        path = create_checkpoint(checkpoint, scratch) if checkpoint in PRESETS else Path(checkpoint)
        label = checkpoint if checkpoint in PRESETS else path.stem
        engines = create_engines(path, scratch, threads=threads, int8=int8, compile=compile, stack=stack)
        return benchmark(
            engines, inputs, batch_sizes=batch_sizes, iterations=iterations, warmup=warmup,
            threshold=threshold, config=label,
        )
