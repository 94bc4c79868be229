"""Is a frameset fresh: one moment, captured just now by a live sensor, and not a copy of an earlier one?

Two layers. ``check_frameset`` looks at one frameset alone (``Detector.check``): a live camera's
frameset must carry a timestamp for every stream and its host arrival time, must not be older than
``max_age_ms``, and its streams must have been captured within ``max_skew_ms`` of each other.
``StreamGuard`` follows one stream of framesets (a ``Detector`` stream session): every stream's timestamp
and frame number must move forward, and no stream may show pixels it showed before, since a real
sensor's noise changes every frame: an identical depth, IR or colour frame is a frozen or replayed
feed. A source whose counters restart (a camera reopened after an unplug) says so with a higher
``FrameSet.stream_epoch``: timestamps and frame numbers are then followed afresh, while the memory
of earlier pixels stays (a restart is no licence to repeat a frame).
"""
from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, Optional

import numpy as np

from .frames import MODALITIES, FrameSet

# Every 8th row is hashed to spot a repeated frame: a live sensor's noise changes every row, and
# hashing every row would be eight times the work for no more evidence.
_DIGEST_ROW_STEP = 8


@dataclass(frozen=True)
class FreshnessConfig:
    """Limits of what counts as fresh.

    ``max_age_ms``: a camera frameset received longer ago than this is stale (a kiosk loop that
    stalled, a queue that grew). ``max_skew_ms``: streams of one frameset further apart than this
    are not one moment (two frame periods at 30 fps: an interleaved-emitter frameset pairs IR one
    frame later). ``repeat_memory``: how many earlier framesets of a stream are remembered to spot
    repeated pixels.
    """

    max_age_ms: float = 500.0
    max_skew_ms: float = 70.0
    repeat_memory: int = 8

    def __post_init__(self) -> None:
        if not (self.max_age_ms > 0 and self.max_skew_ms > 0 and self.repeat_memory >= 1):
            raise ValueError(f"FreshnessConfig: expected max_age_ms > 0, max_skew_ms > 0 and repeat_memory ≥ 1, got "
                             f"{self.max_age_ms}, {self.max_skew_ms}, {self.repeat_memory}")


def _present(frameset: FrameSet):
    return [name for name in MODALITIES if getattr(frameset, name) is not None]


def check_frameset(frameset: FrameSet, config: FreshnessConfig, now_s: float) -> Optional[str]:
    """Why a (validated) frameset is not fresh, or None.

    Args:
        frameset: the frameset.
        config: the limits.
        now_s: ``time.monotonic()`` now, the clock ``FrameSet.received_s`` is on.
    """
    present = _present(frameset)
    if frameset.origin == "camera":
        missing = [name for name in present if name not in frameset.timestamps_ms]
        if missing:
            return f"stale or forged frame: a live camera's frameset without timestamps for {', '.join(missing)}"
        if frameset.received_s is None:
            return "stale or forged frame: a live camera's frameset without received_s, so its age is unknown"
        age_ms = (now_s - frameset.received_s) * 1000.0
        if age_ms > config.max_age_ms:
            return f"stale frame: received {age_ms:.0f} ms ago > {config.max_age_ms:.0f} ms"
        if age_ms < -1.0:
            return f"forged frame: received_s lies {-age_ms:.0f} ms in the future"
    stamps = [frameset.timestamps_ms[name] for name in present if name in frameset.timestamps_ms]
    if len(stamps) > 1 and max(stamps) - min(stamps) > config.max_skew_ms:
        return (f"streams out of step: their timestamps spread {max(stamps) - min(stamps):.0f} ms > "
                f"{config.max_skew_ms:.0f} ms, not one moment")
    return None


class StreamGuard:
    """Cross-frameset checks of one stream (not thread-safe: one per stream).

    Only framesets that pass update the guard, so a replay that jumps back stays stale until the
    stream has really moved past what it had shown, or the source declares a new epoch.
    """

    def __init__(self, config: FreshnessConfig = FreshnessConfig()) -> None:
        self.config = config
        self._stamps: Dict[str, float] = {}
        self._numbers: Dict[str, int] = {}
        self._digests: Dict[str, Deque[int]] = {}
        self._epoch = 0

    def check(self, frameset: FrameSet) -> Optional[str]:
        """Why this (validated) frameset does not follow the earlier ones, or None (and remember it)."""
        if frameset.stream_epoch < self._epoch:
            return f"stale frame: stream epoch {frameset.stream_epoch} is older than the stream's {self._epoch}"
        if frameset.stream_epoch > self._epoch:
            self._stamps.clear()
            self._numbers.clear()
        digests = {}
        for name in _present(frameset):
            stamp, number = frameset.timestamps_ms.get(name), frameset.frame_numbers.get(name)
            if stamp is not None and name in self._stamps and stamp <= self._stamps[name]:
                return f"stale frame: {name} timestamp {stamp} ms did not advance past {self._stamps[name]} ms"
            if number is not None and name in self._numbers and number <= self._numbers[name]:
                return f"stale frame: {name} frame number {number} did not advance past {self._numbers[name]}"
            digests[name] = zlib.crc32(np.ascontiguousarray(getattr(frameset, name)[::_DIGEST_ROW_STEP]))
            if digests[name] in self._digests.get(name, ()):
                return (f"frozen stream: the {name} pixels repeat an earlier frameset exactly (a real sensor's noise "
                        "changes every frame)")
        for name, digest in digests.items():
            if name in frameset.timestamps_ms:
                self._stamps[name] = frameset.timestamps_ms[name]
            if name in frameset.frame_numbers:
                self._numbers[name] = int(frameset.frame_numbers[name])
            self._digests.setdefault(name, deque(maxlen=self.config.repeat_memory)).append(digest)
        self._epoch = frameset.stream_epoch
        return None
