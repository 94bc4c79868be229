"""Newest-frameset-only reading of a real-time source, so a slow consumer never builds a queue.

A camera delivers 30 framesets/s whether or not the model keeps up. ``LatestOnly`` drains the
source on a background thread and hands the consumer the newest frameset each time it asks;
the ones it skipped are counted in ``dropped``. Errors of the source (FrameTimeout,
DeviceDisconnected, ...) reach the consumer on its next request.
"""
from __future__ import annotations

import threading
from typing import Any, Iterable, Iterator, Optional

from ..errors import FrameTimeout

__all__ = ["LatestOnly"]


class LatestOnly:
    """Iterate a real-time source at the consumer's pace, skipping the framesets it had no time for.

    Args:
        source: any iterable of framesets (typically a RealSenseSource, whose ``is_realtime`` is True);
            iterated on one thread.
        timeout_s: longest wait for a new frameset before FrameTimeout.

    Attributes:
        dropped: framesets read from the source and skipped because a newer one arrived first.
        skipped_before: how many were skipped just before the frameset last handed out.

    Example:
        >>> for frameset in LatestOnly(camera):  # doctest: +SKIP
        ...     slow_model(frameset)
    """

    def __init__(self, source: Iterable[Any], timeout_s: float = 5.0) -> None:
        self.source = source
        self.timeout_s = timeout_s
        self.dropped = 0
        self.skipped_before = 0
        self._condition = threading.Condition()
        self._slot: Optional[Any] = None
        self._has_item = False
        self._pending_drops = 0
        self._error: Optional[BaseException] = None
        self._finished = False
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _read(self) -> None:
        try:
            for item in self.source:
                with self._condition:
                    if self._has_item:
                        self.dropped += 1
                        self._pending_drops += 1
                    self._slot, self._has_item = item, True
                    self._condition.notify()
                if self._stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            with self._condition:
                self._error = exc
        finally:
            with self._condition:
                self._finished = True
                self._condition.notify()

    def __iter__(self) -> Iterator[Any]:
        if self._thread is not None:
            raise RuntimeError("LatestOnly: a real-time source can be iterated once")
        self._thread = threading.Thread(target=self._read, name="mmdg-edge-frames", daemon=True)
        self._thread.start()
        try:
            while True:
                with self._condition:
                    ready = self._condition.wait_for(
                        lambda: self._has_item or self._error is not None or self._finished, self.timeout_s)
                    if not ready:
                        raise FrameTimeout(f"no frameset from the real-time source within {self.timeout_s:g} s")
                    if self._has_item:
                        item, self._slot, self._has_item = self._slot, None, False
                        self.skipped_before, self._pending_drops = self._pending_drops, 0
                    elif self._error is not None:
                        raise self._error
                    else:
                        return
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Ask the reader thread to stop after the frameset it is waiting for (it is a daemon)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.timeout_s)
