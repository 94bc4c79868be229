"""Session decisions over a stream: live only after K live verdicts in the last N of one face track.

A single frame can be lucky; a door should open on a consistent face. The tracker follows one face
by box overlap, resets when the face changes or leaves, and reports how long the decision took.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Optional, Tuple

from .frames import Verdict

SESSION_STATUSES = ("pending", "live", "attack", "no_face")


@dataclass(frozen=True)
class TemporalConfig:
    """K-of-N voting per face track.

    Defaults: live once 5 of the last 8 scored framesets of the track are live; attack once 3 of
    the last 8 are attack (a denial needs less evidence than an acceptance); a new track when the
    face box overlaps the last one by IoU < 0.3 or the face was missing for more than 5 framesets.
    """

    window: int = 8
    live_votes: int = 5
    attack_votes: int = 3
    min_track_iou: float = 0.3
    max_missing: int = 5

    def __post_init__(self) -> None:
        if not 1 <= self.live_votes <= self.window or not 1 <= self.attack_votes <= self.window:
            raise ValueError(
                f"TemporalConfig: live_votes ({self.live_votes}) and attack_votes ({self.attack_votes}) must be in "
                f"1..window ({self.window})"
            )


@dataclass(frozen=True)
class SessionDecision:
    """The decision for the current face track after one more frameset."""

    status: str
    track_id: int
    live_votes: int
    attack_votes: int
    window: int
    time_to_decision_ms: Optional[float]


def box_iou(a: Tuple[float, ...], b: Tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class SessionTracker:
    """Accumulates verdicts of one stream into session decisions (not thread-safe: one per stream)."""

    def __init__(self, config: TemporalConfig = TemporalConfig()) -> None:
        self.config = config
        self._votes: Deque[str] = deque(maxlen=config.window)
        self._track_id = 0
        self._last_box: Optional[Tuple[float, ...]] = None
        self._missing = 0
        self._track_start_ms: Optional[float] = None
        self._decided_ms: Optional[float] = None
        self._decided: Optional[str] = None

    def reset(self) -> None:
        """Forget the current track (the next face starts a new one)."""
        self._votes.clear()
        self._last_box = None
        self._track_start_ms = None
        self._decided_ms = None
        self._decided = None

    def _new_track(self, time_ms: float) -> None:
        self.reset()
        self._track_id += 1
        self._track_start_ms = time_ms

    def update(self, verdict: Verdict, time_ms: float) -> SessionDecision:
        """Add one verdict (with its capture time) and return the session decision."""
        if verdict.box is None:
            self._missing += 1
            if self._missing > self.config.max_missing:
                self.reset()
            return self._decision("no_face" if self._last_box is None else self._status(), time_ms)
        self._missing = 0
        if self._last_box is None or box_iou(self._last_box, verdict.box) < self.config.min_track_iou:
            self._new_track(time_ms)
        self._last_box = verdict.box
        if verdict.status in ("live", "attack"):
            self._votes.append(verdict.status)
        elif verdict.status in ("uncertain", "error"):
            self._votes.append("abstain")
        return self._decision(self._status(), time_ms)

    def _status(self) -> str:
        live = sum(v == "live" for v in self._votes)
        attack = sum(v == "attack" for v in self._votes)
        if attack >= self.config.attack_votes:
            return "attack"
        if live >= self.config.live_votes:
            return "live"
        return "pending"

    def _decision(self, status: str, time_ms: float) -> SessionDecision:
        if status in ("live", "attack") and self._decided != status:
            self._decided = status
            self._decided_ms = time_ms - (self._track_start_ms if self._track_start_ms is not None else time_ms)
        elif status not in ("live", "attack"):
            self._decided, self._decided_ms = None, None
        return SessionDecision(
            status=status,
            track_id=self._track_id,
            live_votes=sum(v == "live" for v in self._votes),
            attack_votes=sum(v == "attack" for v in self._votes),
            window=len(self._votes),
            time_to_decision_ms=self._decided_ms,
        )
