"""One session object per stream: streams share nothing, a face that stays opens the door once, a
different face at the same place starts a new track, and a source that restarts its counters is
followed instead of denied (issue 20, findings 4-7)."""
import dataclasses
import threading
import time

import numpy as np
import pytest

from faces import ConstantEngine

from mmdg_edge.detector import Detector, DetectorConfig
from mmdg_edge.freshness import StreamGuard
from mmdg_edge.sensors.synthetic import Segment, create_instrument, create_subject, render_sequence

CENTRE = (320.0, 240.0)


@pytest.fixture(scope="module")
def engine(tiny_onnx):
    from mmdg_edge.engines import create_engine

    return create_engine("onnxruntime", tiny_onnx)


@pytest.fixture(scope="module")
def always_live(engine):
    return Detector(ConstantEngine(engine, 0.9), threshold=0.5)


@pytest.fixture(scope="module")
def subject():
    return create_subject(3)


@pytest.mark.slow
def test_a_live_face_that_stays_opens_the_door_once(always_live, subject):
    frames = render_sequence([Segment("live", 90, distance_start_m=0.6, centre=CENTRE, subject=subject)], seed=4)
    results = list(always_live.stream(frames, allow_recorded=True))
    verdicts = [r.verdict.status for r in results]
    assert verdicts.count("live") >= 85, verdicts
    assert [i for i, r in enumerate(results) if r.session.opened] == [4]
    assert len({r.session.track_id for r in results}) == 1


def test_a_mask_put_on_where_a_live_face_was_starts_a_new_track_and_inherits_no_vote(always_live, subject,
                                                                                      new_subject_fields):
    # S003 as it looked before subjects had beards: the track ends on the infrared step (151 to 113,
    # 25.2 % against the 25 % limit). With its full beard the live face's infrared is lower and the
    # step 20 %: TrackConfig does not catch that mask (reported with the face-variety change).
    subject = dataclasses.replace(subject, **new_subject_fields)
    frames = render_sequence([Segment("live", 4, distance_start_m=0.6, centre=CENTRE, subject=subject),
                              Segment("mask", 8, distance_start_m=0.6, centre=CENTRE, subject=subject,
                                      instrument=create_instrument("mask", 2))], seed=5)
    results = list(always_live.stream(frames, allow_recorded=True))
    live, mask = results[:4], results[4:]
    assert {r.session.track_id for r in live} == {1} and mask[0].session.track_id == 2
    assert mask[0].session.live_votes <= 1 and not any(r.session.opened for r in results[:8])


def _lane(kind, seed, subject, instrument=None):
    return list(render_sequence([Segment(kind, 12, distance_start_m=0.6, subject=subject, instrument=instrument)],
                                seed=seed))


def _summary(results):
    return [(r.verdict.status, r.verdict.reason, r.verdict.score, r.verdict.box, r.session.status,
             r.session.track_id) for r in results]


def test_two_streams_through_one_detector_share_nothing_interleaved_or_in_threads(tiny_onnx, subject):
    detector = Detector.load(tiny_onnx, engine="onnxruntime")
    live, mask = _lane("live", 6, subject), _lane("mask", 7, create_subject(8), create_instrument("mask", 1))
    alone = _summary(detector.stream(mask, allow_recorded=True))
    a, b = detector.stream(live, allow_recorded=True), detector.stream(mask, allow_recorded=True)
    interleaved = []
    for _ in mask:
        next(a)
        interleaved.append(next(b))
    assert _summary(interleaved) == alone
    out = {}

    def run(name, frames):
        out[name] = _summary(detector.stream(frames, allow_recorded=True))

    threads = [threading.Thread(target=run, args=(name, frames)) for name, frames in (("live", live), ("mask", mask))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert out["mask"] == alone


def test_check_beside_a_stream_changes_neither(tiny_onnx, subject):
    detector = Detector.load(tiny_onnx, engine="onnxruntime")
    frames = _lane("live", 9, subject)
    alone = _summary(detector.stream(frames, allow_recorded=True))
    session = detector.open_session(allow_recorded=True)
    beside = []
    for frameset in frames:
        detector.check(_lane("print", 10, subject, create_instrument("print", 0))[0])
        beside.append(session.check(frameset))
    assert _summary(beside) == alone


def _camera_frames(count, start_number, start_ms, epoch, seed):
    """Synthetic framesets dressed as a live camera's, with its counters starting where it says (``_check``
    stamps their arrival)."""
    frames = []
    for i, frameset in enumerate(render_sequence([Segment("live", count, distance_start_m=0.6)], seed=seed)):
        frameset.origin, frameset.stream_epoch = "camera", epoch
        frameset.timestamps_ms = {name: start_ms + 33.0 * i for name in ("rgb", "depth", "ir")}
        frameset.frame_numbers = {name: start_number + i for name in ("rgb", "depth", "ir")}
        frames.append(frameset)
    return frames


def _check(session, frameset):
    frameset.received_s = time.monotonic()  # just arrived
    return session.check(frameset)


def test_a_source_that_restarts_its_counters_in_a_new_epoch_is_followed_not_denied(always_live):
    session = always_live.open_session()
    before = [_check(session, f) for f in _camera_frames(6, 5000, 900000.0, 0, 1)]
    assert before[-1].session.status == "live"
    restarted = [_check(session, f) for f in _camera_frames(6, 1, 10.0, 1, 2)]
    assert [r.verdict.status for r in restarted] == ["live"] * 6  # not "stale" until frame 5000 comes round
    assert restarted[0].session.track_id != before[-1].session.track_id  # old evidence never joins the new
    assert restarted[4].session.opened


def test_counters_that_go_back_without_a_new_epoch_stay_stale(always_live):
    session = always_live.open_session()
    for frameset in _camera_frames(3, 5000, 900000.0, 0, 1):
        _check(session, frameset)
    replayed = [_check(session, f) for f in _camera_frames(3, 1, 10.0, 0, 2)]
    assert all(r.verdict.status == "unreliable" and "stale frame" in r.verdict.reason for r in replayed)


def test_the_guard_refuses_an_older_epoch_and_keeps_its_pixel_memory_across_epochs():
    guard = StreamGuard()
    first, second = _camera_frames(2, 10, 100.0, 1, 3)
    assert guard.check(first) is None
    older = _camera_frames(1, 11, 200.0, 0, 4)[0]
    assert "epoch 0 is older" in guard.check(older)
    first.stream_epoch, first.frame_numbers = 2, {k: 1 for k in first.frame_numbers}
    assert "frozen stream" in guard.check(first)  # a restart is no licence to repeat a frame


def test_a_second_face_in_view_denies_by_default(engine):
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the astronaut photo")
    import cv2

    from mmdg_edge.frames import FrameSet

    square = cv2.resize(np.ascontiguousarray(skimage_data.astronaut()[20:250, 110:340]), (220, 220))
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[130:350, 40:260], frame[130:350, 380:600] = square, square
    fooled = Detector(ConstantEngine(engine, 0.9), threshold=0.5, config=DetectorConfig(required=("rgb",)))
    verdict = fooled.check(FrameSet(rgb=frame))
    assert verdict.status == "unreliable" and "2 faces in view > 1" in verdict.reason


class _Signalling:
    """An aligner that says, before aligning, that the detector has taken the frameset."""

    def __init__(self, aligner, taken):
        self.aligner, self.taken = aligner, taken

    def align(self, frameset, prior=None):
        self.taken.release()
        return self.aligner.align(frameset, prior)


class _RealTimeList:
    """A list dressed as a real-time source that hands out its next frameset only once the detector has
    taken the one before (``taken``), so however the work is scheduled nothing is dropped."""

    is_realtime = True

    def __init__(self, frames, taken):
        self.frames, self.taken = frames, taken

    def __iter__(self):
        for index, frameset in enumerate(self.frames):
            if index and not self.taken.acquire(timeout=30):
                raise AssertionError("the detector never took the frameset before")
            yield frameset


class _Engine:
    """A wrapped engine that may raise on some calls, sleeps a varying time per call and notes its threads."""

    def __init__(self, engine, fail_on=(), delays_s=(0.0,)):
        self.engine, self.fail_on, self.delays_s = engine, set(fail_on), delays_s
        self.calls, self.threads = 0, set()

    def run(self, crops, mask):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delays_s[self.calls % len(self.delays_s)])
        if self.calls in self.fail_on:
            raise RuntimeError(f"engine fault on call {self.calls}")
        return self.engine.run(crops, mask)

    def __getattr__(self, name):
        return getattr(self.engine, name)


def _pipelined_or_not(engine, frames, pipelined):
    """Results of ``frames`` through ``Detector.stream`` as a real-time source, pipelined or not."""
    taken = threading.Semaphore(0)
    detector = Detector(engine, threshold=0.5, config=DetectorConfig(pipeline_realtime=pipelined))
    detector.aligner = _Signalling(detector.aligner, taken)
    return list(detector.stream(_RealTimeList(frames, taken), allow_recorded=True))


def _steps(results):
    return [(r.frameset.frame_number, r.verdict.status, r.verdict.reason, r.verdict.score, r.session.status,
             r.session.track_id, r.session.opened, r.skipped) for r in results]


def test_pipelining_a_real_time_source_changes_no_result(engine, subject):
    """Live, then a print held up at the same place (a new face track, vetoed: no engine), then live again."""
    frames = list(render_sequence([Segment("live", 7, distance_start_m=0.6, centre=CENTRE, subject=subject),
                                   Segment("print", 5, distance_start_m=0.6, centre=CENTRE, subject=subject,
                                           instrument=create_instrument("print", 1)),
                                   Segment("live", 6, distance_start_m=0.6, centre=CENTRE, subject=subject)], seed=5))
    fooled = ConstantEngine(engine, 0.9)
    in_turn = _steps(Detector(fooled, threshold=0.5).stream(frames, allow_recorded=True))  # a list: one at a time
    plain, pipelined = _Engine(fooled), _Engine(fooled)
    assert _steps(_pipelined_or_not(plain, frames, False)) == in_turn
    assert _steps(_pipelined_or_not(pipelined, frames, True)) == in_turn
    assert [s[6] for s in in_turn].count(True) == 2 and len({s[5] for s in in_turn}) == 3  # two doors, three tracks
    assert [s[4] for s in in_turn][7:12] == ["pending", "pending", "attack", "attack", "attack"]
    assert plain.threads == {threading.current_thread().name} and pipelined.threads == {"mmdg-edge-engine_0"}


def test_an_engine_that_raises_in_a_pipelined_stream_denies_that_frameset_and_the_stream_goes_on(engine):
    frames = _lane("live", 11, create_subject(5))
    faulty = _Engine(ConstantEngine(engine, 0.9), fail_on={3})
    results = _pipelined_or_not(faulty, frames, True)
    statuses = [r.verdict.status for r in results]
    assert len(results) == 12 and statuses[2] == "error" and "engine fault on call 3" in results[2].verdict.reason
    assert statuses[:2] + statuses[3:] == ["live"] * 11
    assert [r.session.opened for r in results].index(True) == 7  # five live verdicts in a row after the error


def _camera(count, interval_s=0.005):
    """A real-time camera: a frameset every ``interval_s`` whether or not anyone keeps up."""
    class Camera:
        is_realtime = True

        def __iter__(self):
            for frameset in _camera_frames(count, 1, 1000.0, 0, 11):
                time.sleep(interval_s)
                frameset.received_s = time.monotonic()
                yield frameset

    return Camera()


def _threads_left():
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("mmdg-edge"))


def test_a_pipelined_stream_keeps_order_under_varying_engine_latency_and_leaves_no_thread(engine):
    varying = _Engine(engine, delays_s=(0.0, 0.03, 0.005, 0.02, 0.0, 0.045))
    detector = Detector(varying, threshold=0.5)
    results = list(detector.stream(_camera(60, 0.01)))
    numbers = [r.frameset.frame_number for r in results]
    assert numbers == sorted(set(numbers)) and numbers[-1] == 60 and len(results) >= 6
    assert len(results) + sum(r.skipped for r in results) == 60
    in_turn = Detector(engine, threshold=0.5).open_session()  # the framesets scored, one at a time in their order
    for result in results:  # each verdict is its own frameset's, whatever the order the work finished in
        result.frameset.received_s = time.monotonic()  # as fresh as when the stream took it
        assert _steps([result]) == _steps([in_turn.check(result.frameset, result.skipped)])
    assert varying.threads == {"mmdg-edge-engine_0"} and _threads_left() == []
    stream = detector.stream(_camera(30, 0.01))
    next(stream), next(stream)
    stream.close()  # a kiosk loop that stops mid-stream
    assert _threads_left() == []


def test_a_slow_engine_scores_a_frameset_taken_when_it_is_almost_free_not_one_that_waited_in_a_queue(engine):
    """Taken at once, the next frameset would wait a whole engine run before its own: verdicts twice as old."""
    slow = _Engine(engine, delays_s=(0.6,))
    ages = []
    for result in Detector(slow, threshold=0.5).stream(_camera(400, 0.01)):
        ages.append(time.monotonic() - result.frameset.received_s)  # from its arrival to its verdict
    steady = sorted(ages[2:])  # from the third on, the engine's time is known
    # One run (0.6 s) and a preparation, against two runs (1.2 s) and a preparation when taken at once:
    # the bound lies midway, so a loaded machine's slower preparations (0.1-0.2 s) stay within it.
    assert len(steady) >= 3 and steady[len(steady) // 2] < 0.9, ages
