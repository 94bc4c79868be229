"""Sources at 640×480 on one core: recording playback (with and without alignment), the synthetic camera.

The real D435 office frameset (depth z16 + unregistered colour rgb8, 640×480) is written N times to
a temporary .db3 with the recorder, then read back, passes interleaved so machine load hits every
case alike:
- baseline: playback alone (``align=False``: decode + copy out, no registration);
- playback + alignment: what ``open_source(FILE)`` does by default (colour resampled onto depth);
- alignment alone: ``align_color_to_depth`` on the frames already in memory;
- the synthetic camera rendering 640×480 RGB + depth + IR framesets (all classes and domains).

    python benchmarks/bench_sensors.py [--frames 60] [--passes 3]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mmdg_edge.sensors.playback import PlaybackSource
from mmdg_edge.sensors.recorder import record
from mmdg_edge.sensors.registration import align_color_to_depth
from mmdg_edge.sensors.synthetic import SyntheticCamera

OFFICE = Path(__file__).resolve().parents[1] / "mmdg_edge" / "assets" / "d435_office.bag"


def _copies(frameset, count):
    for k in range(count):
        yield dataclasses.replace(frameset, frame_numbers={n: k for n in frameset.frame_numbers},
                                  timestamps_ms={n: k * 1000.0 / 30 for n in frameset.timestamps_ms})


def _play(path, align):
    with PlaybackSource(path, align=align) as source:
        return sum(1 for _ in source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60, help="framesets in the recording")
    parser.add_argument("--passes", type=int, default=3, help="timed passes per case")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # librealsense's threads inherit the one core
    with PlaybackSource(OFFICE, align=False) as source:
        (office,) = list(source)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "office.db3"
        record(_copies(office, args.frames), path)
        with PlaybackSource(path, align=False) as source:
            frames = list(source)
        cases = {
            "baseline: playback only": lambda: _play(path, False),
            "playback + alignment": lambda: _play(path, True),
            "alignment alone": lambda: sum(1 for f in frames if align_color_to_depth(
                f.rgb, f.depth, f.depth_scale_m, f.intrinsics["depth"], f.intrinsics["rgb"],
                f.depth_to_color) is not None),
            "synthetic camera (RGB-D-IR)": lambda: sum(1 for _ in SyntheticCamera(seed=1, num_frames=args.frames)),
        }
        rates = {name: [] for name in cases}
        counts = {}
        for _ in range(args.passes):
            for name, fn in cases.items():
                t0 = time.perf_counter()
                counts[name] = fn()
                rates[name].append(counts[name] / (time.perf_counter() - t0))
    base = float(np.median(rates["baseline: playback only"]))
    print(f"Sources at 640×480, 1 core, {args.frames} framesets × {args.passes} passes "
          "(recording: depth + colour; synthetic: RGB + depth + IR)")
    print(f"{'case':<30} {'framesets':>9} {'fps (median)':>13} {'vs baseline':>12}")
    for name, values in rates.items():
        rate = float(np.median(values))
        print(f"{name:<30} {counts[name]:>9} {rate:>13.1f} {rate / base:>11.2f}x")


if __name__ == "__main__":
    main()
