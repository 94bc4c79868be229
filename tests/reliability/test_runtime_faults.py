"""Faults at run time: an engine that raises mid-stream, a camera that stops delivering, an unplug
and replug, a camera that never comes back, and a consumer slower than the camera.

Cameras are the fake pyrealsense2 of tests/fake_rs.py behind the real RealSenseSource; the model
is the bundled demo model; the aligner finds a fixed face in every frameset so every frame is scored.
"""
import sys
import time

import numpy as np
import pytest
from faces import fixed_face_aligner
from fake_rs import HEIGHT, TIMEOUT, WIDTH, FakeCamera, Frame, Unplug

from mmdg_edge.align import AlignConfig
from mmdg_edge.detector import Detector, DetectorConfig
from mmdg_edge.errors import DeviceDisconnected, FrameTimeout
from mmdg_edge.sensors.realsense import RealSenseConfig, RealSenseSource

FAST = dict(width=WIDTH, height=HEIGHT, timeout_ms=10, backoff_s=(0.001, 0.004))


class _FlakyEngine:
    """The demo engine, raising on the calls listed in ``fail_on`` and sleeping ``delay_s`` per call."""

    def __init__(self, engine, fail_on=(), delay_s=0.0):
        self.engine, self.fail_on, self.delay_s, self.calls = engine, set(fail_on), delay_s, 0

    def run(self, crops, mask):
        self.calls += 1
        time.sleep(self.delay_s)
        if self.calls in self.fail_on:
            raise RuntimeError(f"CUDA error: an illegal memory access (call {self.calls})")
        return self.engine.run(crops, mask)

    def __getattr__(self, name):
        return getattr(self.engine, name)


@pytest.fixture(scope="module")
def demo_engine():
    from mmdg_edge.engines import create_engine
    from mmdg_edge.detector import resolve_model_path

    return create_engine("onnxruntime", resolve_model_path("demo"), intra_op_num_threads=1)


@pytest.fixture
def camera(monkeypatch):
    cam = FakeCamera(events=[], period_s=1 / 30)
    monkeypatch.setitem(sys.modules, "pyrealsense2", cam.module())
    return cam


@pytest.fixture(autouse=True)
def _landmarks(synthetic_landmarks):
    """The synthetic face scaled onto the fake camera's small frames."""
    global LANDMARKS
    LANDMARKS = synthetic_landmarks[0] * (WIDTH / 640)


def _detector(engine):
    """The demo engine behind an aligner that finds the same face in every frameset (the fake camera's
    pixels are flat: no quality limit applies), measured on that frameset's pixels. The flat depth is
    vetoed, so the engine is told to run on vetoed framesets too: these faults are the engine's."""
    anything = AlignConfig(min_face_px=1.0, min_blur=0.0, dark_rgb_level=0.0, min_face_level=0.0,
                           min_rgb_contrast=0.0, min_depth_coverage=0.0)
    return Detector(engine, fixed_face_aligner(LANDMARKS, anything), threshold=0.5,
                    config=DetectorConfig(skip_engine_on_veto=False))


def _until_the_camera_stops(detector, source):
    """Results of a stream until the scripted camera runs dry (FrameTimeout, as a stalled camera)."""
    results = []
    with pytest.raises(FrameTimeout):
        for result in detector.stream(source):
            results.append(result)
    return results


def test_engine_raising_mid_stream_denies_that_frame_and_the_stream_goes_on(demo_engine, camera):
    camera.events = [Frame(i) for i in range(1, 11)]
    engine = _FlakyEngine(demo_engine, fail_on={3, 4})
    with RealSenseSource(config=RealSenseConfig(**FAST)) as source:
        results = _until_the_camera_stops(_detector(engine), source)
    statuses = [r.verdict.status for r in results]
    assert statuses[2:4] == ["error", "error"] and "illegal memory access" in results[2].verdict.reason
    assert "error" not in statuses[:2] + statuses[4:] and len(statuses) > 4  # scoring resumed afterwards
    assert len(results) + sum(r.skipped for r in results) == 10


def test_camera_that_stops_delivering_raises_frame_timeout_through_the_stream(demo_engine, camera):
    camera.events = [Frame(1), Frame(2), TIMEOUT]
    got = []
    started = time.monotonic()
    with RealSenseSource(config=RealSenseConfig(**FAST)) as source:
        with pytest.raises(FrameTimeout, match="still connected"):
            for result in _detector(demo_engine).stream(source):
                got.append(result.verdict.frame_number)
    assert got and got[-1] == 2 and time.monotonic() - started < 10


def test_unplug_and_replug_mid_stream_keeps_scoring(demo_engine, camera):
    camera.events = [Frame(1), Frame(2), Unplug(queries=3), Frame(3), Frame(4)]
    with RealSenseSource(config=RealSenseConfig(**FAST)) as source:
        results = _until_the_camera_stops(_detector(demo_engine), source)
        assert source.stats["reconnects"] == 1
    numbers = [r.verdict.frame_number for r in results]
    assert numbers[-1] == 4 and numbers == sorted(numbers)
    # every frameset was scored after the replug: the fake camera's flat depth is vetoed, as a sheet would be
    assert all(r.verdict.score is not None for r in results)
    assert all(r.verdict.status == "attack" and r.verdict.reason.startswith("physical veto: the nose stands")
               for r in results), [r.verdict.reason for r in results]


def test_camera_that_never_comes_back_raises_device_disconnected(demo_engine, camera):
    camera.events = [Frame(1), Unplug(queries=None)]
    config = RealSenseConfig(**{**FAST, "reconnect_timeout_s": 0.2})
    started = time.monotonic()
    with RealSenseSource(config=config) as source:
        with pytest.raises(DeviceDisconnected):
            for _ in _detector(demo_engine).stream(source):
                pass
    assert time.monotonic() - started < 10


def test_slow_consumer_skips_frames_instead_of_queueing_them(demo_engine, camera):
    camera.events = [Frame(i) for i in range(1, 61)]  # 2 s of a 30 fps camera
    engine = _FlakyEngine(demo_engine, delay_s=0.15)  # a ~6 fps engine
    with RealSenseSource(config=RealSenseConfig(**FAST)) as source:
        results = _until_the_camera_stops(_detector(engine), source)
    assert len(results) < 30 and len(results) + sum(r.skipped for r in results) == 60
    assert results[-1].verdict.frame_number == 60  # the newest frame, not a stale one from a queue
    assert engine.calls == len(results)  # nothing scored behind the consumer's back
