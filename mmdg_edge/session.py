"""One stream's session, and the two ways a stream's framesets go through it: in turn, or pipelined.

A session holds what a stream builds up (the face track, the freshness guard, the session tracker)
and nothing else; ``Detector.open_session`` makes one, ``Detector.stream`` runs one. Each frameset
goes through the detector's two stages, prepare (validate, freshness, align, physics, encode) and
finish (engine, decision), and its verdict is then counted by the session tracker.

Pipelined (``StreamSession.run(..., pipelined=True)``, what ``Detector.stream`` does with a real-time
source): the engine scores frameset N on one worker thread while the caller's thread prepares N+1,
taken from the source as late as lets its preparation end when the engine is free (``_Pace``);
onnxruntime and torch release the GIL, so the aligner and the engine really run at once. The
results are those of the framesets in turn: one worker scores in the order framesets were prepared,
and the session's state is touched on the caller's thread only, in frameset order (the face track
and freshness guard while preparing, the tracker's votes when a result is handed out). A face track
that changes at N+1 resets the tracker only when N+1's verdict is counted, after N's.
"""
from __future__ import annotations

import logging
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Tuple

from .frames import FrameSet, Verdict
from .freshness import StreamGuard
from .temporal import SessionDecision, SessionTracker
from .tracking import FaceTrack

if TYPE_CHECKING:
    from .detector import Detector, _Prepared

__all__ = ["StreamResult", "StreamSession"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamResult:
    """One step of `Detector.stream`: the frameset, its verdict and the session decision after it."""

    frameset: Any
    verdict: Verdict
    session: SessionDecision
    skipped: int = 0  # live sources: framesets dropped just before this one because scoring was busy


class StreamSession:
    """One stream's state, kept apart from every other stream's: the face track (where the face is,
    and when it becomes another one), the freshness guard and the session decisions.

    Create it with ``Detector.open_session()``; feed it the stream's framesets in order. Not
    thread-safe: one session per stream.
    """

    def __init__(self, detector: "Detector", tracker: SessionTracker) -> None:
        self._detector = detector
        self.tracker = tracker
        self.guard = StreamGuard(detector.config.freshness)
        self.face = FaceTrack(detector.config.track)
        self._epoch: Optional[int] = None

    def check(self, frameset: Any, skipped: int = 0) -> StreamResult:
        """The verdict of one frameset of this stream and the session decision after it.

        Args:
            frameset: the stream's next frameset.
            skipped: framesets the caller dropped just before this one (reported back).
        """
        prepared = self._prepare(frameset)
        return self._count(prepared, self._detector._finish(prepared), skipped)

    def run(self, framesets: Iterable[Tuple[Any, int]], pipelined: bool = False) -> Iterator[StreamResult]:
        """Check a stream's framesets in order, one at a time or pipelined; results in the same order.

        Args:
            framesets: ``(frameset, skipped)`` pairs, skipped counting the framesets the reader
                dropped just before this one (0 for recordings).
            pipelined: score each frameset on a worker thread while the next one is prepared
                (see the module's docstring). The worker ends when the framesets do, when the
                source raises (after the frameset read before is answered) or when the iterator
                is closed.

        Yields:
            StreamResult per frameset, the same with and without ``pipelined``.
        """
        if not pipelined:
            for frameset, skipped in framesets:
                yield self.check(frameset, skipped)
        else:
            yield from self._pipelined(iter(framesets))

    def _pipelined(self, framesets: Iterator[Tuple[Any, int]]) -> Iterator[StreamResult]:
        scorer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmdg-edge-engine")
        pace, pending, failure = _Pace(), None, None
        try:
            while True:
                if pending is not None and pace.answer_first(pending):
                    yield self._result(pending, pace)
                    pending = None
                try:
                    frameset, skipped = next(framesets)
                except StopIteration:
                    break
                except Exception as exc:  # the source failed: answer what it gave before, then raise
                    failure = exc
                    break
                prepared = self._prepare(frameset)  # while the worker scores the frameset before
                pace.prepared(prepared)
                step = _Step(prepared, skipped, scorer.submit(self._detector._finish, prepared), time.perf_counter())
                if pending is not None:
                    yield self._result(pending, pace)
                pending = step
            if pending is not None:
                yield self._result(pending, pace)
        finally:
            scorer.shutdown(wait=True, cancel_futures=True)
        if failure is not None:
            raise failure

    def follow(self, result: Any) -> bool:
        """Take the aligner's result for this stream's frameset; True where a different face started a
        new track (the session's votes start afresh when that frameset's verdict is counted)."""
        changed = self.face.follow(result)
        if changed:
            logger.debug("a new face track: %s", changed)
        return bool(changed)

    def _prepare(self, frameset: Any) -> "_Prepared":
        epoch = frameset.stream_epoch if isinstance(frameset, FrameSet) else None
        if epoch != self._epoch:  # the source restarted (or this is its first frameset): no face carries over
            self.face.clear()
            self._epoch = epoch
        return self._detector._prepare(frameset, self)

    def _result(self, step: "_Step", pace: "_Pace") -> StreamResult:
        verdict = step.verdict.result()
        pace.scored(verdict)
        return self._count(step.prepared, verdict, step.skipped)

    def _count(self, prepared: "_Prepared", verdict: Verdict, skipped: int) -> StreamResult:
        """The verdict into the session's votes, in frameset order."""
        if prepared.new_track:
            self.tracker.reset()
        frameset = prepared.frameset
        return StreamResult(frameset, verdict, self.tracker.update(verdict, _capture_time_ms(frameset)), skipped)


@dataclass(frozen=True)
class _Step:
    """A prepared frameset of a pipelined stream, handed to the scoring worker at ``submitted_s``."""

    prepared: "_Prepared"
    skipped: int
    verdict: "Future[Verdict]"
    submitted_s: float


class _Pace:
    """When a pipelined stream takes its next frameset, from running estimates of the two stages' times.

    Taken at once, a frameset prepared while a slow engine still scores the one before waits in the
    queue for that run to end, so the camera picture it shows is a whole engine run older than it had
    to be (a slow engine's verdicts come about twice as late). So the next frameset is taken when the
    engine run under way has about a preparation's time left; and where it has less than that, its
    verdict is awaited and handed out first, rather than kept waiting behind the next preparation.
    """

    _WEIGHT = 0.3  # of the newest measurement in each running estimate (the first one sets it)

    def __init__(self) -> None:
        self.prepare_s: Optional[float] = None
        self.engine_s: Optional[float] = None  # until the engine has run once: wait for its verdicts

    def prepared(self, prepared: "_Prepared") -> None:
        self.prepare_s = self._update(self.prepare_s, prepared.elapsed_ms / 1000.0)

    def scored(self, verdict: Verdict) -> None:
        if "engine" in verdict.timings_ms:  # decided before the engine: nothing learnt about it
            self.engine_s = self._update(self.engine_s, verdict.timings_ms["engine"] / 1000.0)

    def answer_first(self, step: _Step) -> bool:
        """Wait until the next frameset is due; True where ``step`` was scored by then (hand it out first)."""
        engine_s = self.engine_s if step.prepared.verdict is None and self.engine_s is not None else 0.0
        lead_s = step.submitted_s + engine_s - (self.prepare_s or 0.0) - time.perf_counter()
        wait([step.verdict], timeout=lead_s if lead_s > 0 else None)
        return step.verdict.done()

    def _update(self, estimate: Optional[float], seconds: float) -> float:
        return seconds if estimate is None else estimate + self._WEIGHT * (seconds - estimate)


def _capture_time_ms(frameset: Any) -> Optional[float]:
    """The frameset's capture time for the session tracker; None (a track break) where it has none or
    its timestamps are not numbers (an invalid frameset, already denied)."""
    try:
        stamp = frameset.timestamp_ms if isinstance(frameset, FrameSet) else None
    except (TypeError, ValueError):
        return None
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
        return None
    return float(stamp)
