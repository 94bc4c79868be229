"""The kiosk path inside ``Detector.stream`` at 640×480, per stage, from the detector's own timings.

Every verdict carries ``timings_ms`` for each stage it ran (validate: checks and freshness; align:
find the face, place its landmarks, cut it; physics; encode; engine) and the total. This prints their
p50, and "all but engine" (total − engine) at p50/p95, for each face finder (BlazeFace + Face Mesh,
the default; Haar + Face Mesh, the old detector in front of the same landmarks) and:
- new scenes: the synthetic camera, every frameset a new random scene, so every one needs a
  full-frame search (the hard case for the aligner);
- walking person: one synthetic person walking from 0.9 m to 0.5 m (the landmarks of the last
  frameset place the next, a full search every ``TrackConfig.full_search_every`` framesets);
- baseline: OpenCV's Haar cascade alone at full 640×480 on the new-scene frames, in the same run:
  what a naive aligner would spend on detection;
- Face Mesh alone on the walking person's face, warm (called again and again) and right after the
  engine has run (as in the stream: the engine's weights and activations push the mesh's out of
  the core's cache).
The demo model on onnxruntime (CPU, one thread); OpenCV on one thread. Goal: all but engine ≤ 5 ms p50
while tracking.

    python benchmarks/bench_kiosk_path.py [--frames 200]
"""
from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from mmdg_edge import Detector, open_source
from mmdg_edge.align import FaceAligner, HaarFaceDetector
from mmdg_edge.face_mesh import roi_from_landmarks
from mmdg_edge.preprocess import encode
from mmdg_edge.sensors.synthetic import Segment, render_sequence

STAGES = ("validate", "align", "physics", "encode", "engine")


def _row(name, verdicts, baseline_ms):
    found = sum(v.box is not None for v in verdicts)
    rest = [v.timings_ms["total"] - v.timings_ms.get("engine", 0.0) for v in verdicts]
    stages = [np.percentile([v.timings_ms.get(s, 0.0) for v in verdicts], 50) for s in STAGES]
    p50, p95 = np.percentile(rest, 50), np.percentile(rest, 95)
    return (f"{name:<38}" + "".join(f"{v:>9.2f}" for v in stages) + f"{p50:>10.2f}{p95:>9.2f}{p50 / baseline_ms:>11.2f}"
            f"{found:>6}/{len(verdicts)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200, help="framesets per case")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    learned = Detector.load("demo", engine="onnxruntime", intra_op_num_threads=1)
    haar = Detector(learned.engine, FaceAligner(detector=HaarFaceDetector(), mesh=learned.aligner.mesh))
    with open_source("synthetic", seed=5, num_frames=args.frames) as camera:
        scenes = list(camera)
    walking = list(render_sequence([Segment("live", args.frames, distance_start_m=0.9, distance_end_m=0.5)], seed=3))
    cascade = HaarFaceDetector()
    baseline = []
    for frameset in scenes:
        started = time.perf_counter()
        cascade(cv2.cvtColor(frameset.rgb, cv2.COLOR_RGB2GRAY))
        baseline.append((time.perf_counter() - started) * 1000)
    base = float(np.percentile(baseline, 50))
    print("Detector.stream per 640×480 frameset, demo model on onnxruntime, 1 thread (ms, p50 per stage; "
          "goal: all but engine ≤ 5 ms p50 while tracking)")
    print(f"{'case':<38}" + "".join(f"{s:>9}" for s in STAGES) + f"{'rest p50':>10}{'p95':>9}{'/ baseline':>11}"
          f"{'faces':>9}")
    for finder, detector in (("BlazeFace + mesh", learned), ("Haar + mesh", haar)):
        print(_row(f"{finder}, new scenes (full search)", [r.verdict for r in detector.stream(scenes)], base))
        print(_row(f"{finder}, walking person (tracking)", [r.verdict for r in detector.stream(walking)], base))
    print(f"{'baseline: Haar 640x480':<38}" + " " * 9 * len(STAGES) + f"{base:>10.2f}"
          f"{np.percentile(baseline, 95):>9.2f}{1.0:>11.2f}")
    warm, cold = _mesh_after_engine(learned, walking)
    print(f"Face Mesh alone on the walking person's face, p50: warm {warm:.2f} ms, right after the engine {cold:.2f} ms")


def _mesh_after_engine(detector: Detector, framesets) -> tuple:
    """p50 ms of the landmark model on each frameset's face, called twice in a row (the second call
    warm) and called right after one engine run."""
    mesh, warm, cold = detector.aligner.mesh, [], []
    for frameset in framesets:
        result = detector.aligner.align(frameset)
        if result.crops is None or result.source != "RGB":
            continue
        roi, inputs = roi_from_landmarks(result.landmarks), encode([result.crops], detector.preprocess)
        detector.engine.run(*inputs)
        for times in (cold, warm):
            started = time.perf_counter()
            mesh(frameset.rgb, roi)
            times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(warm, 50)), float(np.percentile(cold, 50))


if __name__ == "__main__":
    main()
