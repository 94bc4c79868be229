"""The learned face models against Haar, at 640×480, one thread, in one run.

Rows (p50 and p95 in ms, and p50 as a share of Haar's):
- BlazeFace short and full range: ``BlazeFaceDetector`` on the whole frame, letterbox to 128×128
  (short) or 192×192 (full), decoding and suppression included;
- Face Mesh: ``FaceMesh`` on the detected face's region, the 192×192 warp included;
- each on onnxruntime (the bundled converted files, what the SDK runs) and, when ``ai-edge-litert``
  is installed, the same code with the source ``.tflite`` model on the TFLite runtime in place of
  the onnxruntime session;
- with ``--mesh FILE``: another conversion of the Face Mesh (the previous release's, say:
  ``git show REV:mmdg_edge/assets/face_mesh.onnx > old.onnx``) in the same code, taking turns with
  the bundled one, and the bundled mesh's p50 as a share of it;
- baseline: OpenCV's Haar cascade, full search of the grey 640×480 frame (``HaarFaceDetector``
  defaults, colour → grey included), the baseline of ``bench_kiosk_path.py``; timed apart from the
  rest (see ``main``).
The frame is the astronaut photo (scikit-image) scaled to 480×480 on a 640×480 grey background:
more texture than the synthetic camera's rooms, so Haar takes longer here than there.

    python benchmarks/bench_face_models.py [--runs 300] [--haar-runs 50] [--mesh OLD.onnx]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np
from skimage import data

from mmdg_edge.face_detectors import BlazeFaceDetector, HaarFaceDetector
from mmdg_edge.face_mesh import FaceMesh, roi_from_detection

TFLITE = Path(__file__).resolve().parents[1] / "tests" / "data" / "face_models"


class _TfliteSession:
    """The part of onnxruntime's session the face models call, answered by the TFLite runtime."""

    def __init__(self, model: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(model), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._outputs = [d["index"] for d in self._interpreter.get_output_details()]

    def run(self, names: Optional[List[str]], feeds: dict) -> List[np.ndarray]:
        (nchw,) = feeds.values()
        self._interpreter.set_tensor(self._input, np.ascontiguousarray(nchw.transpose(0, 2, 3, 1)))
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(index) for index in self._outputs]


def _frame() -> np.ndarray:
    frame = np.full((480, 640, 3), 96, np.uint8)
    frame[:, 80:560] = cv2.resize(data.astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    return frame


def _times_ms(calls: Dict[str, Callable[[], object]], runs: int) -> Dict[str, np.ndarray]:
    """Each call's times. The calls take turns in a new random order each round, so a busy spell on
    a shared machine, or the preemption that follows a long call, hits every row alike."""
    for _ in range(20):
        for call in calls.values():
            call()
    names = list(calls)
    order = np.random.default_rng(0)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for _ in range(runs):
        for index in order.permutation(len(names)):
            started = time.perf_counter()
            calls[names[index]]()
            times[names[index]].append((time.perf_counter() - started) * 1000)
    return {name: np.array(values) for name, values in times.items()}


def _tflite_runtime_available() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="timed calls per row (after 20 warm-up rounds)")
    parser.add_argument("--haar-runs", type=int, default=50, help="timed calls of the Haar baseline")
    parser.add_argument("--mesh", type=Path, help="another Face Mesh ONNX file to time beside the bundled one")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    frame = _frame()
    haar = HaarFaceDetector()
    detector, mesh = BlazeFaceDetector(threads=1), FaceMesh(threads=1)
    full_range = BlazeFaceDetector(threads=1, variant="full")
    faces = detector(frame)
    if not faces:
        raise SystemExit("BlazeFace found no face in the benchmark frame; nothing to run the mesh on")
    roi = roi_from_detection(faces[0])
    calls = {"BlazeFace short onnxruntime": lambda: detector(frame),
             "BlazeFace full onnxruntime": lambda: full_range(frame),
             "Face Mesh onnxruntime": lambda: mesh(frame, roi)}
    if args.mesh is not None:
        other = FaceMesh(args.mesh, threads=1)
        calls["Face Mesh onnxruntime, --mesh"] = lambda: other(frame, roi)
    if _tflite_runtime_available():
        tflite_detector, tflite_full = BlazeFaceDetector(threads=1), BlazeFaceDetector(threads=1, variant="full")
        tflite_mesh = FaceMesh(threads=1)
        tflite_detector._session = _TfliteSession(TFLITE / "face_detection_short_range.tflite")
        tflite_full._session = _TfliteSession(TFLITE / "face_detection_full_range.tflite")
        tflite_mesh._session = _TfliteSession(TFLITE / "face_landmark.tflite")
        calls["BlazeFace short TFLite runtime"] = lambda: tflite_detector(frame)
        calls["BlazeFace full TFLite runtime"] = lambda: tflite_full(frame)
        calls["Face Mesh TFLite runtime"] = lambda: tflite_mesh(frame, roi)
    # Haar apart: one call is ~100× longer, and the scheduler preempts whatever runs right after it.
    rows: List[Tuple[str, Optional[np.ndarray]]] = list(_times_ms(
        {"Haar full search (baseline)": lambda: haar(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))}, args.haar_runs).items())
    rows += list(_times_ms(calls, args.runs).items())
    if not _tflite_runtime_available():
        rows.append(("TFLite runtime rows", None))
    baseline = float(np.percentile(rows[0][1], 50))
    print(f"Face models at 640×480, 1 thread, {args.runs} calls each, Haar {args.haar_runs} (ms); "
          f"face score {faces[0].score:.2f}, "
          f"mesh presence {mesh(frame, roi).score:.2f}")
    print(f"{'model':<32}{'p50':>8}{'p95':>8}{'p50 / Haar':>12}")
    for name, times in rows:
        if times is None:
            print(f"{name:<32}  (ai-edge-litert not installed: pip install ai-edge-litert)")
            continue
        p50, p95 = np.percentile(times, 50), np.percentile(times, 95)
        print(f"{name:<32}{p50:>8.2f}{p95:>8.2f}{p50 / baseline:>12.3f}")
    if args.mesh is not None:
        times = {name: np.percentile(values, 50) for name, values in rows if values is not None}
        print(f"--mesh is {args.mesh}; the bundled Face Mesh's p50 / its p50: "
              f"{times['Face Mesh onnxruntime'] / times['Face Mesh onnxruntime, --mesh']:.2f}")


if __name__ == "__main__":
    main()
