"""Face geometry on the synthetic camera's held-out people: the learned face model beside Haar, one run.

Held-out people: synthetic subjects 900 and up, used for no training and no threshold (the demo
model trains on the base photo's person). Every presentation is a short stream of framesets of one
live person through ``Detector.stream`` (the demo model on onnxruntime, 1 thread, synthetic frames
allowed to open a session), under one condition:
- pose: yaw 0, ±20, ±40°; pitch ±20°; at 0.6 m in room light;
- distance: 0.35, 0.5, 0.7, 0.9 and 1.2 m, frontal;
- light: dim and backlit rooms at 0.6 m, frontal.
Per condition and face finder (BlazeFace + Face Mesh, the default; Haar + Face Mesh, the old detector):
- found: framesets where the face was found (a verdict with a face);
- landmark err: the landmarks' nose tip and eye centres against where the renderer put the nose
  tip and the corneal glints (``truth["faces"][0]["landmarks"]``), mean distance in % of the face
  width (the photo's own features sit a few pixels off the renderer's, so 0 is not reachable);
- BPCER: live framesets not judged live; "physics" counts the ones a physical check or the
  face quality denied (what the face geometry decides, whatever the model says), "uncertain" the
  ones judged uncertain (a score within the band about the threshold, or a pose too far off);
- opened: presentations that opened the door exactly once (the session level), and those that
  opened it more than once (one live presentation, several openings: the fault the tracker fixes).
And the time of everything but the model inside ``Detector.stream`` at 640×480 (p50).

    python benchmarks/bench_face_geometry.py [--people 6] [--frames 8] [--model demo|OTHER.onnx] [--threshold T]
"""
from __future__ import annotations

import argparse
from typing import Dict, List, Tuple

import cv2
import numpy as np

from mmdg_edge import Detector
from mmdg_edge.align import FaceAligner, HaarFaceDetector
from mmdg_edge.face_mesh import LEFT_EYE_INNER, LEFT_EYE_OUTER, NOSE_TIP, RIGHT_EYE_INNER, RIGHT_EYE_OUTER
from mmdg_edge.sensors.synthetic import Segment, create_subject, render_sequence

CONDITIONS: Dict[str, dict] = {
    "yaw 0°": dict(yaw_deg=0.0),
    "yaw -20°": dict(yaw_deg=-20.0), "yaw +20°": dict(yaw_deg=20.0),
    "yaw -40°": dict(yaw_deg=-40.0), "yaw +40°": dict(yaw_deg=40.0),
    "pitch -20°": dict(pitch_deg=-20.0), "pitch +20°": dict(pitch_deg=20.0),
    "0.35 m": dict(distance_start_m=0.35), "0.5 m": dict(distance_start_m=0.5), "0.7 m": dict(distance_start_m=0.7),
    "0.9 m": dict(distance_start_m=0.9), "1.2 m": dict(distance_start_m=1.2),
    "dim": dict(lighting="dim"), "backlit": dict(lighting="backlit"),
}
PHYSICS = ("physical veto", "face quality", "physical check")


def _presentations(people: int, frames: int) -> Dict[str, List[list]]:
    out = {}
    for c, (name, options) in enumerate(CONDITIONS.items()):
        options = {"distance_start_m": 0.6, **options}
        out[name] = [list(render_sequence([Segment("live", frames, domain=(p + c) % 4, subject=create_subject(900 + p),
                                                   **options)], seed=1000 * c + p)) for p in range(people)]
    return out


def _landmark_error(landmarks: np.ndarray, truth: dict) -> float:
    """Mean distance of the nose tip and the eye centres from the rendered ones, over the face width."""
    face = truth["faces"][0]
    eyes = [landmarks[[RIGHT_EYE_OUTER, RIGHT_EYE_INNER], :2].mean(axis=0),
            landmarks[[LEFT_EYE_INNER, LEFT_EYE_OUTER], :2].mean(axis=0)]
    found = np.array([landmarks[NOSE_TIP, :2], *eyes])
    rendered = np.array([face["landmarks"]["nose_tip"], *face["landmarks"]["eyes"]])
    return float(np.linalg.norm(found - rendered, axis=1).mean()) / (face["box"][2] - face["box"][0])


def _measure(detector: Detector,
             presentations: List[list]) -> Tuple[float, float, float, float, float, float, int, List[float]]:
    verdicts, opened, repeated, nose_errors, rest = [], 0, 0, [], []
    for frames in presentations:
        results = list(detector.stream(frames, allow_recorded=True))
        openings = sum(r.session.opened for r in results)
        opened, repeated = opened + (openings == 1), repeated + (openings > 1)
        for result in results:
            verdict, truth = result.verdict, result.frameset.metadata["truth"]
            verdicts.append(verdict)
            rest.append(verdict.timings_ms["total"] - verdict.timings_ms.get("engine", 0.0))
            if verdict.box is not None:
                landmarks = detector.aligner.align(result.frameset).landmarks
                if landmarks is not None:
                    nose_errors.append(_landmark_error(landmarks, truth))
    found = np.mean([v.box is not None for v in verdicts])
    bpcer = np.mean([v.status != "live" for v in verdicts])
    physics = np.mean([v.status != "live" and v.reason.startswith(PHYSICS) for v in verdicts])
    uncertain = np.mean([v.status == "uncertain" for v in verdicts])
    nose = float(np.median(nose_errors)) if nose_errors else float("nan")
    return found, nose, bpcer, physics, uncertain, opened / len(presentations), repeated, rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=6, help="held-out people per condition")
    parser.add_argument("--frames", type=int, default=8, help="framesets per presentation (≥ 5 to open)")
    parser.add_argument("--model", default="demo", help="the model deciding what the geometry lets through: "
                                                        "'demo' (default) or a .onnx path (another release's)")
    parser.add_argument("--threshold", type=float, help="judge at this threshold instead of the model's own "
                                                        "(another operating point)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    learned = Detector.load(args.model, engine="onnxruntime", intra_op_num_threads=1, threshold=args.threshold)
    haar = Detector(learned.engine, FaceAligner(detector=HaarFaceDetector(), mesh=learned.aligner.mesh))
    data = _presentations(args.people, args.frames)
    print(f"Held-out synthetic people ({args.people} per condition, {args.frames} framesets each), model {args.model} "
          f"(threshold {learned.threshold:.3f}), Detector.stream at 640×480, 1 thread")
    print(f"{'condition':<12}{'finder':<10}{'found':>8}{'lm err':>10}{'BPCER':>8}{'physics':>9}{'uncertain':>11}"
          f"{'opened 1×':>11}{'2×+':>5}")
    timings = {"BlazeFace": [], "Haar": []}
    for name, presentations in data.items():
        for finder, detector in (("BlazeFace", learned), ("Haar", haar)):
            found, nose, bpcer, physics, uncertain, opened, repeated, rest = _measure(detector, presentations)
            timings[finder].extend(rest)
            print(f"{name:<12}{finder:<10}{found:>8.1%}{nose:>9.1%} {bpcer:>8.1%}{physics:>9.1%}{uncertain:>11.1%}"
                  f"{opened:>11.0%}{repeated:>5}")
    print("all but the engine, p50 / p95 ms: " + "; ".join(
        f"{finder} {np.percentile(rest, 50):.2f} / {np.percentile(rest, 95):.2f}" for finder, rest in timings.items()))


if __name__ == "__main__":
    main()
