"""Freshness of one frameset (age, skew) and of a stream (replayed pixels), at the edges of each limit."""
import numpy as np

from mmdg_edge.frames import FrameSet
from mmdg_edge.freshness import FreshnessConfig, StreamGuard, check_frameset


def _frame(seed, stamp, origin="recording", received_s=None, ir_stamp=None):
    depth = np.random.default_rng(seed).integers(500, 700, (8, 8), dtype=np.uint16)
    ir = np.random.default_rng(seed + 100).integers(0, 255, (8, 8), dtype=np.uint8)
    return FrameSet(depth=depth, ir=ir, timestamps_ms={"depth": stamp, "ir": stamp if ir_stamp is None else ir_stamp},
                    frame_numbers={"depth": int(stamp), "ir": int(stamp)}, origin=origin, received_s=received_s)


def test_a_replay_that_alternates_two_earlier_frames_is_a_frozen_stream():
    """Issue 21 item 12: a repeat memory of 1 instead of 8 went unnoticed (no A, B, A, B replay was tested)."""
    guard = StreamGuard()
    assert FreshnessConfig().repeat_memory == 8
    reasons = [guard.check(_frame(seed, stamp)) for stamp, seed in enumerate((1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1))]
    assert reasons[:2] == [None, None] and reasons[4:11] == [None] * 7
    assert all(r.startswith("frozen stream: the depth pixels repeat an earlier frameset") for r in reasons[2:4])
    assert reasons[11] is None  # frame 1 is nine frames back: beyond the memory of 8


def test_a_camera_frameset_received_in_the_future_is_forged_and_an_old_one_stale():
    """Issue 21 item 12: with abs() around the age the "forged frame" branch never ran in a test."""
    config = FreshnessConfig()
    assert check_frameset(_frame(1, 0.0, "camera", received_s=100.0), config, 100.2) is None
    assert check_frameset(_frame(1, 0.0, "camera", received_s=105.0), config, 100.0) == \
        "forged frame: received_s lies 5000 ms in the future"
    assert check_frameset(_frame(1, 0.0, "camera", received_s=100.0), config, 100.6) == \
        "stale frame: received 600 ms ago > 500 ms"


def test_streams_further_apart_than_the_skew_limit_are_not_one_moment():
    """Issue 21 item 12: the stream-skew limit was tested only by the shared D435 recording."""
    config = FreshnessConfig()
    assert check_frameset(_frame(1, 100.0, ir_stamp=170.0), config, 0.0) is None
    assert check_frameset(_frame(1, 100.0, ir_stamp=170.5), config, 0.0) == \
        "streams out of step: their timestamps spread 70 ms > 70 ms, not one moment"
