"""Live RealSense capture through a fake pyrealsense2 (tests/fake_rs.py): profile checks,
emitter modes, timestamp skew, timeouts, unplug/replug with backoff, origin and arrival time."""
import itertools
import sys
import threading
import time

import numpy as np
import pytest
from fake_rs import FIRMWARE, HEIGHT, SERIAL, TIMEOUT, WIDTH, FakeCamera, Frame, Unplug

from mmdg_edge.errors import DeviceDisconnected, FrameTimeout, SourceError
from mmdg_edge.sensors import open_source
from mmdg_edge.sensors.realsense import RealSenseConfig, RealSenseSource

FAST = dict(width=WIDTH, height=HEIGHT, timeout_ms=10, backoff_s=(0.001, 0.004))


@pytest.fixture
def camera(monkeypatch):
    """Install a fake pyrealsense2 driven by ``camera.events``."""
    cam = FakeCamera(events=[])
    monkeypatch.setitem(sys.modules, "pyrealsense2", cam.module())
    return cam


def _take(source, count):
    return list(itertools.islice(iter(source), count))


def _first_error_within(source, camera, seconds):
    """The exception that iterating ``source`` raises, run on a thread so that a source that spins for
    ever fails the test instead of hanging it (the camera then stops streaming, which ends the spin)."""
    outcome = {}

    def iterate():
        try:
            next(iter(source))
        except Exception as exc:  # the outcome under test
            outcome["error"] = exc

    thread = threading.Thread(target=iterate, daemon=True)
    thread.start()
    thread.join(seconds)
    spinning = thread.is_alive()
    camera.repeat, camera.events = False, []
    thread.join(seconds)
    assert not spinning, f"the source was still iterating after {seconds} s"
    return outcome.get("error")


def test_framesets_carry_pixels_calibration_and_camera_identity(camera):
    camera.events = [Frame(1), Frame(2), Frame(3)]
    with open_source(f"realsense:{SERIAL}", config=RealSenseConfig(**FAST)) as source:
        framesets = _take(source, 3)
        assert source.stats == {"delivered": 3, "dropped_skew": 0, "reconnects": 0}
    assert [int(fs.depth[0, 0]) for fs in framesets] == [1, 2, 3]
    fs = framesets[0]
    fs.validate()
    assert fs.rgb.shape == (HEIGHT, WIDTH, 3) and fs.ir.dtype == np.uint8 and fs.depth_scale_m == 0.001
    assert fs.serial == SERIAL and fs.metadata["firmware"] == FIRMWARE and fs.color_aligned_to_depth
    assert fs.origin == "camera" and source.is_realtime and not hasattr(source, "is_live")
    assert fs.intrinsics["rgb"] == fs.intrinsics["depth"]  # colour resampled onto the depth grid
    assert fs.depth_to_color.translation == (0.015, 0.0, 0.0)
    assert camera.options == {"emitter_on_off": 0.0, "emitter_enabled": 1.0}
    assert ("device", SERIAL) in camera.enabled and camera.stops == 1


def test_unsupported_profile_names_what_the_camera_offers(camera):
    with pytest.raises(SourceError, match=r"cannot stream 1280x720@90 .*offers depth \(z16\): 64x48@15, 64x48@30"):
        RealSenseSource(config=RealSenseConfig(width=1280, height=720, fps=90)).open()
    assert camera.starts == 0


def test_missing_camera_and_other_serial_are_refused(camera, monkeypatch):
    with pytest.raises(SourceError, match="no RealSense camera with serial 999 is connected"):
        open_source("realsense:999", config=RealSenseConfig(**FAST)).open()
    camera._absent = None
    with pytest.raises(SourceError, match="no RealSense camera is connected"):
        RealSenseSource(config=RealSenseConfig(**FAST)).open()


def test_framesets_with_skewed_timestamps_are_dropped_and_counted(camera):
    # half a frame period (16.7 ms at 30 fps) is the default tolerance
    camera.events = [Frame(1, skew_ms=40.0), Frame(2, skew_ms=10.0), Frame(3, skew_ms=-25.0), Frame(4)]
    with RealSenseSource(config=RealSenseConfig(**FAST)) as source:
        framesets = _take(source, 2)
        assert source.stats["dropped_skew"] == 2
    assert [int(fs.depth[0, 0]) for fs in framesets] == [2, 4]


def test_timeout_with_the_camera_connected_raises_frame_timeout(camera):
    camera.events = [Frame(1), TIMEOUT]
    with RealSenseSource(config=RealSenseConfig(**FAST)) as source:
        frames = iter(source)
        next(frames)
        with pytest.raises(FrameTimeout, match="within 10 ms .*still connected"):
            next(frames)


def test_unplug_and_replug_reconnects_with_backoff(camera):
    camera.events = [Frame(1), Unplug(queries=4), Frame(2), Frame(3)]
    with RealSenseSource(config=RealSenseConfig(**FAST)) as source:
        framesets = _take(source, 3)
        assert source.stats["reconnects"] == 1
    assert [int(fs.depth[0, 0]) for fs in framesets] == [1, 2, 3]
    assert camera.starts == 2 and camera.stops == 2  # the dead pipeline was stopped before the new one


def test_a_reopened_camera_or_a_restarted_frame_counter_starts_a_new_stream_epoch(camera):
    camera.events = [Frame(7), Frame(8), Unplug(queries=2), Frame(1), Frame(2), Frame(1), Frame(2)]
    with RealSenseSource(config=RealSenseConfig(**FAST)) as source:
        framesets = _take(source, 6)
    assert [fs.frame_number for fs in framesets] == [7, 8, 1, 2, 1, 2]
    # the replug reopens the pipeline (epoch 1); the counter starting again without one is a restart too
    assert [fs.stream_epoch for fs in framesets] == [0, 0, 1, 1, 2, 2]


def test_camera_that_stays_away_raises_device_disconnected_in_time(camera):
    camera.events = [Unplug(queries=None)]
    config = RealSenseConfig(**{**FAST, "reconnect_timeout_s": 0.2})
    with RealSenseSource(config=config) as source:
        started = time.monotonic()
        with pytest.raises(DeviceDisconnected, match=r"did not come back within 0.2 s"):
            next(iter(source))
        assert time.monotonic() - started < 2.0


def test_interleaved_emitter_pairs_dotted_depth_with_the_next_clean_ir(camera):
    # a clean frame first has no dotted depth before it: skipped
    camera.events = [Frame(1, emitter=False), Frame(2), Frame(3, emitter=False), Frame(4), Frame(5, emitter=False)]
    with RealSenseSource(config=RealSenseConfig(emitter="interleaved", **FAST)) as source:
        framesets = _take(source, 2)
    assert [(int(fs.depth[0, 0]), int(fs.rgb[0, 0, 0]), int(fs.ir[0, 0])) for fs in framesets] == [(2, 2, 3), (4, 4, 5)]
    assert framesets[0].frame_numbers == {"depth": 2, "rgb": 2, "ir": 3}
    assert camera.options == {"emitter_enabled": 1.0, "emitter_on_off": 1.0}
    assert framesets[0].metadata["emitter"] == "interleaved"


def test_framesets_carry_the_host_time_they_arrived(camera):
    camera.period_s = 0.05
    camera.events = [Frame(1), Frame(2), Frame(3, emitter=False)]
    with RealSenseSource(config=RealSenseConfig(**{**FAST, "timeout_ms": 500})) as source:
        before = time.monotonic()
        fs = next(iter(source))
        after = time.monotonic()
    assert before + 0.05 <= fs.received_s <= after  # after the frame's 50 ms transit, before next() returned
    with RealSenseSource(config=RealSenseConfig(emitter="interleaved", **{**FAST, "timeout_ms": 500})) as source:
        fs = next(iter(source))
        after = time.monotonic()
    # an interleaved frameset is as old as its dotted half, one 50 ms frame before its clean IR
    assert fs.frame_numbers == {"depth": 2, "rgb": 2, "ir": 3} and fs.received_s <= after - 0.05


def test_interleaved_without_emitter_metadata_is_refused_instead_of_spinning(camera):
    camera.has_metadata, camera.repeat = False, True
    camera.events = [Frame(1), Frame(2, emitter=False)]
    with RealSenseSource(config=RealSenseConfig(emitter="interleaved", **FAST)) as source:
        error = _first_error_within(source, camera, 3.0)
    assert isinstance(error, SourceError), error
    assert "no emitter metadata" in str(error) and "update the firmware" in str(error)
    assert "emitter 'on' or 'off'" in str(error)


@pytest.mark.parametrize("emitter,event", [("interleaved", Frame(1)), ("on", Frame(1, skew_ms=40.0))],
                         ids=["projector-never-off", "always-skewed"])
def test_a_camera_that_never_completes_a_frameset_times_out(camera, emitter, event):
    camera.repeat, camera.period_s = True, 0.002
    camera.events = [event]
    config = RealSenseConfig(emitter=emitter, **{**FAST, "timeout_ms": 100})
    with RealSenseSource(config=config) as source:
        started = time.monotonic()
        error = _first_error_within(source, camera, 3.0)
        assert isinstance(error, FrameTimeout) and "no complete frameset" in str(error) and "100 ms" in str(error)
        assert time.monotonic() - started < 2.0
        assert source.stats["delivered"] == 0 and (source.stats["dropped_skew"] > 0) == (emitter == "on")


def test_interleaved_needs_the_emitter_on_off_option(camera):
    camera.has_on_off = False
    with pytest.raises(SourceError, match="no emitter_on_off option"):
        RealSenseSource(config=RealSenseConfig(emitter="interleaved", **FAST)).open()
    assert camera.stops == 1


@pytest.mark.parametrize("field,value", [("emitter", "strobe"), ("fps", 0), ("max_skew_ms", -1.0),
                                         ("backoff_s", (2.0, 1.0))])
def test_bad_config_is_refused_with_the_field_named(field, value):
    with pytest.raises(ValueError, match=f"RealSenseConfig.{field}"):
        RealSenseConfig(**{field: value})
