"""LatestOnly: a slow consumer of a real-time source gets the newest frameset and a count of the rest."""
import threading
import time

import pytest

from mmdg_edge.errors import DeviceDisconnected, FrameTimeout
from mmdg_edge.sensors.latest import LatestOnly


def _producer(count, interval_s, error=None, stall_s=0.0):
    for i in range(count):
        time.sleep(interval_s)
        yield i
    if stall_s:
        time.sleep(stall_s)
    if error is not None:
        raise error


def test_slow_consumer_gets_the_newest_items_and_the_rest_are_counted():
    latest = LatestOnly(_producer(60, 0.002))
    seen, skipped = [], 0
    for item in latest:
        seen.append(item)
        skipped += latest.skipped_before
        time.sleep(0.02)  # ten times slower than the source
    assert seen == sorted(seen) and seen[-1] == 59  # in order, and the last one is never lost
    assert len(seen) < 30 and len(seen) + latest.dropped == 60 and skipped == latest.dropped


def test_fast_consumer_drops_nothing():
    latest = LatestOnly(_producer(20, 0.005))
    assert list(latest) == list(range(20)) and latest.dropped == 0


def test_source_errors_reach_the_consumer_after_the_items_before_them():
    latest = LatestOnly(_producer(3, 0.001, error=DeviceDisconnected("camera gone")))
    got = []
    with pytest.raises(DeviceDisconnected, match="camera gone"):
        for item in latest:
            got.append(item)
            time.sleep(0.01)
    assert got[-1] == 2


def test_a_stalled_source_times_out_and_the_reader_thread_ends():
    latest = LatestOnly(_producer(1, 0.0, stall_s=0.5), timeout_s=0.1)
    items = iter(latest)
    assert next(items) == 0
    with pytest.raises(FrameTimeout, match="within 0.1 s"):
        next(items)
    time.sleep(0.6)
    assert not any(t.name == "mmdg-edge-frames" for t in threading.enumerate())
