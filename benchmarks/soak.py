"""Soak: thousands of synthetic framesets through one Detector, watching for leaks and slow-down.

The synthetic camera (a fresh random scene per frameset, all classes and domains) feeds
``Detector.load("demo")`` (CPU onnxruntime on the bundled demo model), through ``Detector.stream``
(one long stream, session tracker included) or plain ``Detector.check`` calls. After a warm-up
(onnxruntime arenas, OpenCV buffers and the allocator settle), the process is measured at the start
and at the end of the run:
- framesets/s (render + check) over the first and the last tenth of the run, and the process CPU
  time per frameset (all threads), which machine load from other processes does not inflate;
- resident memory (VmRSS), open file descriptors, threads (Python's and the kernel's count).

Goals: RSS growth < 50 MB, no fd or thread growth, no "error" verdict (the detector turns any
failure, an exhausted fd table included, into one). Exit code 1 when a goal fails. The verdict
counts per true class show the detector did real work. Progress on stderr.

    python benchmarks/soak.py [--frames 10000] [--warmup 200] [--mode stream|check]
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
import time
from collections import Counter
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from mmdg_edge.detector import Detector
from mmdg_edge.frames import VERDICT_STATUSES, FrameSet, Verdict
from mmdg_edge.sensors import open_source

RSS_GROWTH_GOAL_MB = 50.0
CLASS_ORDER = ("live", "print", "replay", "mask")


def _proc_status(field: str) -> int:
    """An integer field of /proc/self/status (VmRSS in kB, Threads)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} line (not Linux?)")


def _snapshot() -> Dict[str, float]:
    return {
        "rss_mb": _proc_status("VmRSS") / 1024.0,
        "fds": float(len(os.listdir("/proc/self/fd"))),
        "threads_py": float(threading.active_count()),
        "threads_os": float(_proc_status("Threads")),
    }


def _verdicts(detector: Detector, frames: Iterator[FrameSet], mode: str) -> Iterator[Tuple[FrameSet, Verdict, str]]:
    if mode == "stream":
        for result in detector.stream(frames):
            yield result.frameset, result.verdict, result.session.status
    else:
        for frameset in frames:
            yield frameset, detector.check(frameset), "-"


def _row(name: str, start: float, end: float, goal: str, passed: Optional[bool], fmt: str = "{:.1f}") -> str:
    growth = fmt.format(end - start)
    growth = growth if growth.startswith("-") else "+" + growth
    result = "-" if passed is None else ("PASS" if passed else "FAIL")
    return f"{name:<28}{fmt.format(start):>10}{fmt.format(end):>10}{growth:>10}{goal:>14}{result:>8}"


def _soak(detector: Detector, args: argparse.Namespace) -> Dict[str, Any]:
    """Run warm-up and measured framesets; snapshots, rates, RSS samples and verdict counts."""
    tenth = max(1, args.frames // 10)
    statuses: Counter = Counter()
    sessions: Counter = Counter()
    by_class: Dict[str, Counter] = {name: Counter() for name in CLASS_ORDER}
    rss_samples: List[Tuple[int, float]] = []
    stamps: List[Tuple[float, float]] = []  # (wall, process CPU) seconds at 0, 10 %, 90 %, 100 %
    camera = open_source("synthetic", seed=args.seed, num_frames=args.warmup + args.frames)
    # The bar exists before the start snapshot: tqdm's monitor thread must not count as growth.
    with camera, tqdm(total=args.warmup + args.frames, unit="frameset", file=sys.stderr) as bar:
        results = _verdicts(detector, iter(camera), args.mode)
        for _ in itertools.islice(results, args.warmup):
            bar.update()
        start = _snapshot()
        stamps.append((time.perf_counter(), time.process_time()))
        for index, (frameset, verdict, session) in enumerate(results, start=1):
            statuses[verdict.status] += 1
            sessions[session] += 1
            by_class[frameset.metadata["truth"]["attack"] or "live"][verdict.status] += 1
            if index % args.rss_every == 0:
                rss_samples.append((index, _proc_status("VmRSS") / 1024.0))
            if index in (tenth, args.frames - tenth, args.frames):
                stamps.append((time.perf_counter(), time.process_time()))
            bar.update()
        end = _snapshot()
    measured = sum(statuses.values())
    if measured != args.frames:
        raise RuntimeError(f"the camera gave {measured} framesets after the warm-up, expected {args.frames}")
    wall, cpu = np.array(stamps).T
    slope = float(np.polyfit(*np.array(rss_samples).T, 1)[0]) * 1000.0 if len(rss_samples) >= 2 else float("nan")
    return {
        "start": start, "end": end, "statuses": statuses, "sessions": sessions, "by_class": by_class,
        "rate": (tenth / (wall[1] - wall[0]), tenth / (wall[3] - wall[2]), args.frames / (wall[3] - wall[0])),
        "cpu_ms": (1000.0 * (cpu[1] - cpu[0]) / tenth, 1000.0 * (cpu[3] - cpu[2]) / tenth),
        "rss_peak": max([start["rss_mb"], end["rss_mb"]] + [mb for _, mb in rss_samples]), "rss_slope": slope,
    }


def _print_counts(result: Dict[str, Any], mode: str) -> None:
    statuses = result["statuses"]
    print(f"Verdicts by true class ({sum(statuses.values())} framesets)")
    print(f"{'class':<10}" + "".join(f"{status:>12}" for status in VERDICT_STATUSES) + f"{'total':>8}")
    for name, counts in list(result["by_class"].items()) + [("all", statuses)]:
        print(f"{name:<10}" + "".join(f"{counts[status]:>12}" for status in VERDICT_STATUSES)
              + f"{sum(counts.values()):>8}")
    if mode == "stream":
        print("session decision after each frameset: "
              + ", ".join(f"{k} {v}" for k, v in sorted(result["sessions"].items())))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10_000, help="framesets measured after the warm-up")
    parser.add_argument("--warmup", type=int, default=200, help="framesets run before the start snapshot")
    parser.add_argument("--mode", choices=("stream", "check"), default="stream",
                        help="Detector.stream over one long stream, or Detector.check per frameset")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic camera")
    parser.add_argument("--intra-op-threads", type=int, default=1,
                        help="onnxruntime threads per operator (0 = one per core)")
    parser.add_argument("--rss-every", type=int, default=100, help="framesets between RSS samples (for the slope)")
    args = parser.parse_args()
    if args.frames < 10 or args.warmup < 0 or args.rss_every < 1:
        parser.error("--frames must be ≥ 10, --warmup ≥ 0 and --rss-every ≥ 1")
    detector = Detector.load("demo", engine="onnxruntime", providers=["CPUExecutionProvider"],
                             intra_op_num_threads=args.intra_op_threads)
    result = _soak(detector, args)
    start, end, errors = result["start"], result["end"], result["statuses"]["error"]
    goals = {
        "rss": end["rss_mb"] - start["rss_mb"] < RSS_GROWTH_GOAL_MB,
        "fds": end["fds"] <= start["fds"],
        "threads_py": end["threads_py"] <= start["threads_py"],
        "threads_os": end["threads_os"] <= start["threads_os"],
        "errors": errors == 0,
    }
    print(f"Soak: {args.frames} synthetic framesets after {args.warmup} warm-up, Detector.{args.mode}, "
          f"{detector.engine.describe()['providers'][0]}, intra-op threads {args.intra_op_threads}")
    print(f"{'':<28}{'start':>10}{'end':>10}{'growth':>10}{'goal':>14}{'result':>8}")
    print(_row("framesets/s (first/last 10%)", *result["rate"][:2], "-", None))
    print(_row("CPU ms/frameset (first/last)", *result["cpu_ms"], "-", None))
    print(_row("RSS (MB)", start["rss_mb"], end["rss_mb"], f"< {RSS_GROWTH_GOAL_MB:.0f} MB", goals["rss"]))
    print(_row("open file descriptors", start["fds"], end["fds"], "0", goals["fds"], "{:.0f}"))
    print(_row("threads (threading)", start["threads_py"], end["threads_py"], "0", goals["threads_py"], "{:.0f}"))
    print(_row("threads (/proc Threads)", start["threads_os"], end["threads_os"], "0", goals["threads_os"], "{:.0f}"))
    print(f"{'error verdicts':<28}{errors:>30}{'0':>14}{'PASS' if goals['errors'] else 'FAIL':>8}")
    print(f"overall {result['rate'][2]:.1f} framesets/s; RSS peak {result['rss_peak']:.1f} MB, "
          f"fitted slope {result['rss_slope']:+.2f} MB per 1000 framesets")
    print()
    _print_counts(result, args.mode)
    failed = [name for name, passed in goals.items() if not passed]
    print("PASS" if not failed else "FAIL: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
