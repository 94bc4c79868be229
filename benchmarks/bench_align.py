"""Aligner cost per 640×480 RGB-D-IR frameset (detect + register + crop + normalise), one core.

Cases, interleaved frame by frame so machine load hits them alike:
- stream: one aligner over a synthetic live sequence (a person walking from 0.9 m to 0.5 m):
  tracking near the last face, a full-frame search every ``full_search_every`` frames;
- single frame: a fresh aligner per call (full-frame search on a 320 px copy), same frames;
- no face: the real D435 office recording (full-frame search that finds nothing);
- baseline: OpenCV's Haar cascade alone at full 640×480 on the same frames, what a naive
  aligner would spend on detection.

    python benchmarks/bench_align.py [--frames 120]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from mmdg_edge.align import AlignConfig, FaceAligner, HaarFaceDetector
from mmdg_edge.sensors import open_source
from mmdg_edge.sensors.synthetic import Segment, render_sequence

OFFICE = Path(__file__).resolve().parents[1] / "mmdg_edge" / "assets" / "d435_office.bag"


def _p50_p95(samples):
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120, help="framesets in the synthetic live sequence")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    frames = list(render_sequence([Segment("live", args.frames, distance_start_m=0.9, distance_end_m=0.5)], seed=3))
    with open_source(str(OFFICE)) as source:
        office = list(source)
    config = AlignConfig()
    stream, haar = FaceAligner(config), HaarFaceDetector()
    detector = stream.detector  # one cascade shared by the fresh single-frame aligners
    stream_office = FaceAligner(config, detector)
    cases = {
        "stream (tracking)": lambda i: stream.align(frames[i]),
        "single frame (full search)": lambda i: FaceAligner(config, detector).align(frames[i]),
        "no face (D435 office)": lambda i: stream_office.align(office[i % len(office)]),
        "baseline: Haar at 640x480": lambda i: haar(cv2.cvtColor(frames[i].rgb, cv2.COLOR_RGB2GRAY)),
    }
    times = {name: [] for name in cases}
    statuses = {name: 0 for name in cases}
    for i in range(len(frames)):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            result = fn(i)
            times[name].append((time.perf_counter() - t0) * 1000)
            statuses[name] += bool(getattr(result, "status", "ok") == "ok")
    base = np.percentile(times["baseline: Haar at 640x480"], 50)
    print(f"Aligner per 640×480 frameset, 1 core, {len(frames)} frames (ms; goal ≤ 10 ms p50)")
    print(f"{'case':<30}{'p50':>8}{'p95':>8}{'p50 / baseline':>16}{'faces ok':>10}")
    for name, samples in times.items():
        p50, p95 = _p50_p95(samples)
        ok = f"{statuses[name]}/{len(frames)}" if name != "baseline: Haar at 640x480" else "-"
        print(f"{name:<30}{p50:>8.2f}{p95:>8.2f}{p50 / base:>16.2f}{ok:>10}")


if __name__ == "__main__":
    main()
