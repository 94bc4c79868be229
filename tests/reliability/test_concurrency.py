"""Detectors under threads: one Detector per thread, one Detector shared, streams side by side.

What the SDK promises (mmdg_edge/detector.py, tracking.py, temporal.py):
- ``Detector.check`` holds the Detector's lock for the whole call, so a shared Detector serialises
  its callers: no call ever sees another half done.
- ``Detector.check`` is stateless: a verdict never depends on the framesets checked before it or
  on what other threads checked in between.
- ``Detector.stream`` opens a session of its own (face track, stale-frame guard, session tracker):
  streams, one after another or side by side, on one Detector or on several, are independent
  (tests/test_session.py runs two at once through one Detector).

Every comparison covers all verdict fields but the timings (status, reason, score and box to 1e-6,
threshold, modalities, quality, frame number), so a race that only nudges a box shows.
"""
from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import pytest

from mmdg_edge.align import FaceAligner
from mmdg_edge.detector import Detector
from mmdg_edge.frames import FrameSet, Verdict
from mmdg_edge.sensors.synthetic import Segment, render_frameset, render_sequence
from mmdg_edge.temporal import SessionDecision

THREADS = 4
KINDS = ("live", "print", "live", "replay", "live", "mask") * 2
TOLERANCE = 1e-6


def _load() -> Detector:
    """The demo model on CPU onnxruntime, one intra-op thread (deterministic, fair to 2 cores)."""
    return Detector.load("demo", engine="onnxruntime", providers=["CPUExecutionProvider"], intra_op_num_threads=1)


def _fields(verdict: Verdict) -> Dict[str, Any]:
    quality = None if verdict.quality is None else dataclasses.astuple(verdict.quality)
    return {"status": verdict.status, "reason": verdict.reason, "score": verdict.score,
            "threshold": verdict.threshold, "modalities": tuple(verdict.modalities), "box": verdict.box,
            "quality": quality, "frame_number": verdict.frame_number}


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= TOLERANCE
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


def _differences(got: Sequence[Verdict], want: Sequence[Verdict], label: str) -> List[str]:
    """One line per differing field of per-position verdicts (empty: all the same)."""
    if len(got) != len(want):
        return [f"{label}: {len(got)} verdicts, expected {len(want)}"]
    lines = []
    for i, (a, b) in enumerate(zip(got, want)):
        fa, fb = _fields(a), _fields(b)
        lines += [f"{label}[{i}].{key}: {fa[key]!r} != {fb[key]!r}" for key in fb if not _close(fa[key], fb[key])]
    return lines


def _run_together(workers: Sequence[Callable[[threading.Barrier], Any]]) -> List[Any]:
    """Run the workers on their own threads, released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(workers), timeout=60)
    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        futures = [pool.submit(worker, barrier) for worker in workers]
        return [future.result(timeout=120) for future in futures]


@pytest.fixture(scope="module")
def framesets() -> List[FrameSet]:
    """12 framesets, half live, half print/replay/mask, over the four domains, one fresh scene each."""
    rng = np.random.default_rng(20240611)
    return [render_frameset(kind, i % 4, rng, i) for i, kind in enumerate(KINDS)]


@pytest.fixture(scope="module")
def reference(framesets) -> List[Verdict]:
    """The single-threaded run: a fresh Detector checking the list in order."""
    detector = _load()
    return [detector.check(frameset) for frameset in framesets]


def test_the_framesets_exercise_live_attack_and_the_model(framesets, reference):
    labels = [frameset.metadata["truth"]["label"] for frameset in framesets]
    assert labels.count("live") == 6 and labels.count("attack") == 6
    statuses = {verdict.status for verdict in reference}
    assert {"live", "attack"} <= statuses and "error" not in statuses
    unscored = [verdict for verdict in reference if verdict.score is None]
    assert len(reference) - len(unscored) >= 6  # the engine ran, not only vetoes
    assert all(verdict.reason.startswith("physical veto") for verdict in unscored)  # it runs on all but those


def test_threads_with_their_own_detector_match_the_single_threaded_run(framesets, reference):
    def worker(barrier):
        detector = _load()
        barrier.wait()
        return [detector.check(frameset) for frameset in framesets]

    runs = _run_together([worker] * THREADS)
    differences = [line for k, run in enumerate(runs) for line in _differences(run, reference, f"thread {k}")]
    assert not differences, "\n".join(differences)


def test_shared_detector_matches_the_single_threaded_run_whatever_the_interleaving(framesets):
    alone = _load()
    expected = [alone.check(frameset) for frameset in framesets]
    shared = _load()

    def worker_from(offset):
        order = list(range(offset, len(framesets))) + list(range(offset))  # each thread its own order

        def worker(barrier):
            barrier.wait()
            return {i: shared.check(framesets[i]) for i in order}
        return worker

    runs = _run_together([worker_from(3 * k) for k in range(THREADS)])
    differences = [line for k, run in enumerate(runs)
                   for line in _differences([run[i] for i in range(len(framesets))], expected, f"thread {k}")]
    assert not differences, "\n".join(differences)


class _OrderRecorder:
    """Wraps the Detector's aligner and logs who asked to align which frameset.

    ``align`` runs inside ``Detector.check``'s lock, so the log is the order in which the shared
    Detector really served its callers.
    """

    def __init__(self, aligner: FaceAligner) -> None:
        self.aligner = aligner
        self.order: List[Tuple[int, int]] = []  # (thread ident, frame number)

    def align(self, frameset: FrameSet, prior: Any = None) -> Any:
        self.order.append((threading.get_ident(), frameset.frame_number))
        return self.aligner.align(frameset, prior)


def test_shared_detector_serves_each_call_as_the_same_calls_made_in_its_order(framesets):
    shared = _load()
    recorder = _OrderRecorder(shared.aligner)
    shared.aligner = recorder

    def worker(barrier):
        barrier.wait()
        return threading.get_ident(), [shared.check(frameset) for frameset in framesets]

    runs = dict(_run_together([worker] * THREADS))
    assert len(runs) == THREADS and len(recorder.order) == THREADS * len(framesets)
    # Replay the served order on one thread: each call must give what it gives alone.
    # The n-th entry of a thread in the log is that thread's n-th check (its calls are sequential).
    replay = _load()
    by_number = {frameset.frame_number: frameset for frameset in framesets}
    calls_so_far = {ident: 0 for ident in runs}
    threaded, replayed = [], []
    for ident, number in recorder.order:
        assert runs[ident][calls_so_far[ident]].frame_number == number
        threaded.append(runs[ident][calls_so_far[ident]])
        calls_so_far[ident] += 1
        replayed.append(replay.check(by_number[number]))
    differences = _differences(threaded, replayed, "served call")
    assert not differences, "\n".join(differences)


def test_a_check_does_not_depend_on_the_framesets_checked_before(framesets, reference):
    detector = _load()
    for frameset in reversed(framesets):
        detector.check(frameset)
    again = [detector.check(frameset) for frameset in framesets]
    differences = _differences(again, reference, "after other checks")
    assert not differences, "\n".join(differences)


STREAMS = {
    "walk-up": ([Segment("empty", 2), Segment("live", 14, distance_start_m=0.7, distance_end_m=0.5)], 1),
    "live then replay": ([Segment("live", 8, domain=2), Segment("replay", 8, domain=2)], 3),
}


def _stream_steps(detector: Detector, frames: Sequence[FrameSet]) -> List[Tuple[Verdict, SessionDecision]]:
    return [(result.verdict, result.session) for result in detector.stream(frames, allow_recorded=True)]


def _step_differences(got: Sequence[Tuple[Verdict, SessionDecision]], want: Sequence[Tuple[Verdict, SessionDecision]],
                      label: str) -> List[str]:
    lines = _differences([v for v, _ in got], [v for v, _ in want], label + " verdict")
    lines += [f"{label} session[{i}]: {a} != {b}" for i, ((_, a), (_, b)) in enumerate(zip(got, want)) if a != b]
    return lines


def test_two_streams_on_two_detectors_in_two_threads_decide_as_when_run_one_after_another():
    sequences = {name: list(render_sequence(segments, seed=seed)) for name, (segments, seed) in STREAMS.items()}
    one = _load()
    sequential = {name: _stream_steps(one, frames) for name, frames in sequences.items()}  # reset per stream
    finals = {name: steps[-1][1].status for name, steps in sequential.items()}
    assert finals == {"walk-up": "live", "live then replay": "attack"}  # the sessions reach decisions

    def worker_for(frames):
        def worker(barrier):
            detector = _load()
            barrier.wait()
            return _stream_steps(detector, frames)
        return worker

    threaded = dict(zip(sequences, _run_together([worker_for(frames) for frames in sequences.values()])))
    differences = [line for name in sequences for line in _step_differences(threaded[name], sequential[name], name)]
    assert not differences, "\n".join(differences)
