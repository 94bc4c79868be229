"""Aligner cost per 640×480 frameset (detect + register + crop + normalise), one core.

Frames: the astronaut photo (skimage) pasted at three scales with a head-shaped depth map and an
IR image, plus the real D435 office recording (no face: detection cost only). Baseline in the same
run: Haar detection at full resolution, which the aligner avoids by detecting on a 320 px copy.

    python benchmarks/bench_align.py [--repeats 200]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from skimage.data import astronaut

from mmdg_edge.align import FaceAligner, HaarFaceDetector
from mmdg_edge.frames import FrameSet
from mmdg_edge.sensors import open_source

OFFICE = Path(__file__).resolve().parents[1] / "mmdg_edge" / "assets" / "d435_office.bag"


def _frames():
    photo = astronaut()
    yy, xx = np.mgrid[0:480, 0:640]
    frames = []
    for size, x, y in ((300, 80, 60), (400, 120, 40), (480, 160, 0)):
        rgb = np.zeros((480, 640, 3), np.uint8)
        rgb[y : y + size, x : x + size] = cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA)
        depth = (600 + 60 * (((xx - x - size / 2) / size) ** 2 + ((yy - y - size / 2) / size) ** 2)).astype(np.uint16)
        frames.append(FrameSet(rgb=rgb, depth=depth, ir=cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY),
                               color_aligned_to_depth=True))
    return frames


def _percentiles(samples):
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per case")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    faces = _frames()
    with open_source(str(OFFICE)) as source:
        office = list(source)
    aligner, haar = FaceAligner(), HaarFaceDetector()
    cases = {
        "align, face (3 scales)": lambda i: aligner.align(faces[i % 3]),
        "align, no face (D435)": lambda i: aligner.align(office[0]),
        "baseline: Haar at 640x480": lambda i: haar(cv2.cvtColor(faces[i % 3].rgb, cv2.COLOR_RGB2GRAY)),
    }
    times = {name: [] for name in cases}
    for i in range(args.repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn(i)
            times[name].append((time.perf_counter() - t0) * 1000)
    base = statistics.median(times["baseline: Haar at 640x480"])
    print("Aligner per 640×480 frameset, 1 core (ms)")
    print(f"{'case':<28}{'p50':>8}{'p95':>8}{'p50 / baseline':>16}")
    for name, samples in times.items():
        p50, p95 = _percentiles(samples)
        print(f"{name:<28}{p50:>8.2f}{p95:>8.2f}{p50 / base:>16.2f}")


if __name__ == "__main__":
    main()
