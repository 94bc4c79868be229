"""Engine speed and INT8 accuracy cost on CPU (and GPU engines when the machine has them).

For the tiny and paper configs (random init), batch 1 and 8: torch eager FP32 (baseline),
onnxruntime FP32 and onnxruntime dynamic INT8, each with p50/p95 latency, throughput, its ratio
to torch eager measured in the same interleaved run, and its accuracy cost against torch FP32
(largest live-probability difference, verdict agreement). Inputs are crops from the synthetic
camera through the aligner. Below each table: onnxruntime INT8's speed ratio to onnxruntime FP32.

    python benchmarks/bench_engines.py [--configs tiny,paper] [--batches 1,8] [--threads 2]
        [--iterations tiny=10,paper=5 | --iterations 5] [--threshold T]
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Dict

from mmdg_edge.engines.benchmark import format_table, run_benchmark
from mmdg_edge.preprocess import images_to_input
from mmdg_edge.train.synthetic_data import render_crops

ANY_CONFIG = "*"


def _inputs(rows: int):
    faces = render_crops((0, 1, 2, 3), 2 * rows, seed=0)
    if len(faces) < rows:
        raise SystemExit(f"the aligner accepted {len(faces)} of {2 * rows} synthetic framesets, {rows} needed")
    crops, mask = images_to_input(faces.images[:rows], faces.mask[:rows])
    return crops, mask, "synthetic camera + aligner"


def parse_iterations(text: str) -> Dict[str, int]:
    """``--iterations``: one count for every config ("5"), or one per config ("tiny=10,paper=5")."""
    try:
        if "=" not in text:
            return {ANY_CONFIG: int(text)}
        counts = {name: int(count) for name, _, count in (item.partition("=") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or CONFIG=N,... (e.g. 5 or tiny=10,paper=5), got {text!r}") from None
    if any(count < 1 for count in counts.values()):
        raise argparse.ArgumentTypeError(f"expected counts ≥ 1, got {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,paper", help="comma-separated presets")
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch and onnxruntime alike")
    parser.add_argument("--iterations", default="tiny=10,paper=5", type=parse_iterations,
                        help="timed rounds: N for every config, or CONFIG=N,... (≥ 5: the machine may be shared)")
    parser.add_argument("--rows", type=int, default=16, help="framesets for the accuracy columns")
    parser.add_argument("--threshold", type=float, default=None, help="verdict threshold (default: FP32 median)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    batches = tuple(int(b) for b in args.batches.split(","))
    iterations = args.iterations
    crops, mask, source = _inputs(max(args.rows, max(batches)))
    print(f"inputs: {len(crops)} framesets from {source}; threads {args.threads}; "
          f"agreement threshold {'FP32 median' if args.threshold is None else args.threshold}")
    for preset in args.configs.split(","):
        rows = run_benchmark(
            preset, batch_sizes=batches, iterations=iterations.get(preset, iterations.get(ANY_CONFIG, 3)), warmup=1, threads=args.threads,
            inputs=(crops, mask), threshold=args.threshold,
        )
        print(format_table(rows), flush=True)
        _print_int8_ratios(rows)


def _print_int8_ratios(rows) -> None:
    """onnxruntime INT8 against onnxruntime FP32, both timed in the same interleaved rounds."""
    p50 = {(row.engine, row.batch): row.p50_ms for row in rows}
    for (engine, batch), int8_ms in p50.items():
        fp32_ms = p50.get(("onnxruntime", batch))
        if engine == "onnxruntime int8" and fp32_ms is not None:
            print(f"{rows[0].config} batch {batch}: onnxruntime int8 is {fp32_ms / int8_ms:.2f}× onnxruntime fp32 "
                  f"({int8_ms:.1f} vs {fp32_ms:.1f} ms p50)")


if __name__ == "__main__":
    main()
