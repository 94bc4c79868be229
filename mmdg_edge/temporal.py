"""Session decisions over a stream: when may a kiosk open its door for the face in front of it.

A single frame can be lucky; a door should open on a consistent face, and close its session the
moment the evidence stops supporting it. Per face track:
- the session is live only at a frameset whose own verdict is live and while the last K verdicts
  of the track are all live; any non-live verdict (attack, uncertain, unreliable, error, no face)
  ends it at once;
- a door opens once per track: ``SessionDecision.opened`` is True at the one frameset where the
  track first turned live;
- attack once A of the last N verdicts of the track are attacks;
- a new track starts when the face box jumps (low overlap with, or a size change from, the track's
  smoothed box: a detector's frame-to-frame jitter is not a new face) or the face distance jumps
  (a depth discontinuity: something else now stands at that place), when the face has been gone
  for more than ``max_missing`` framesets, or when the stream's face track says the face's content
  changed (``mmdg_edge.tracking``: appearance, infrared level, proportions; it calls ``reset``);
- a new track also starts when the capture times stop following each other (a gap over
  ``max_gap_ms``, time going back, no time at all) or the framesets' origin changes: old evidence
  never joins new;
- framesets that do not come from a live camera (recordings, image folders, the synthetic camera,
  hand-built framesets) never make a live session unless the caller says they are a test.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Deque, Optional

from .frames import Verdict
from .geometry import Box, box_iou


@dataclass(frozen=True)
class TemporalConfig:
    """Votes per face track and what starts a new track.

    Defaults: live at the 5th live verdict in a row; attack once 3 of the last 8 verdicts are
    attacks (a denial needs less evidence than an acceptance); a new track when the box overlaps
    the last one by IoU < 0.3, changes its side by more than 30 %, or the face distance jumps by
    more than 15 cm, or after more than 5 framesets without the face, or when consecutive
    framesets are more than 2 s apart (keep ``max_gap_ms`` above the engine's time per frameset:
    a live source's scored framesets are that far apart).
    """

    live_votes: int = 5
    window: int = 8
    attack_votes: int = 3
    min_track_iou: float = 0.3
    max_size_change: float = 0.3
    max_depth_jump_m: float = 0.15
    max_missing: int = 5
    max_gap_ms: float = 2000.0
    box_smoothing: float = 0.5  # EMA weight of the track's box against the new one before the jump test

    def __post_init__(self) -> None:
        if not 1 <= self.live_votes <= self.window or not 1 <= self.attack_votes <= self.window:
            raise ValueError(
                f"TemporalConfig: live_votes ({self.live_votes}) and attack_votes ({self.attack_votes}) must be in "
                f"1..window ({self.window})"
            )
        if not self.max_gap_ms > 0:
            raise ValueError(f"TemporalConfig: expected max_gap_ms > 0, got {self.max_gap_ms}")
        if not 0.0 <= self.box_smoothing < 1.0:
            raise ValueError(f"TemporalConfig: expected 0 ≤ box_smoothing < 1, got {self.box_smoothing}")
        if not (self.max_size_change > 0 and self.max_depth_jump_m > 0 and 0 <= self.min_track_iou < 1):
            raise ValueError("TemporalConfig: expected max_size_change > 0, max_depth_jump_m > 0 and "
                             f"0 ≤ min_track_iou < 1, got {self.max_size_change}, {self.max_depth_jump_m}, "
                             f"{self.min_track_iou}")


@dataclass(frozen=True)
class SessionDecision:
    """The decision for the current face track after one more frameset.

    Attributes:
        status: "pending", "live", "attack" or "no_face" (no face track).
        opened: True at the one frameset of the track where the session first turned live: the
            moment to open the door (once per track).
        track_id: counts face tracks since the stream started.
        live_votes: live verdicts in a row at the end of the track.
        attack_votes: attack verdicts among the last ``window``.
        window: verdicts remembered for the track (at most ``TemporalConfig.window``).
        time_to_decision_ms: from the track's first frameset to its live/attack decision.
        reason: why the session is not live although the votes are (a recorded source), or why there
            is no face track although a face may be there (frozen, stale or broken framesets), else "".
    """

    status: str
    track_id: int
    live_votes: int
    attack_votes: int
    window: int
    time_to_decision_ms: Optional[float]
    opened: bool = False
    reason: str = ""


class SessionTracker:
    """Accumulates verdicts of one stream into session decisions (not thread-safe: one per stream).

    Args:
        config: votes and track rules.
        allow_recorded: let framesets that do not come from a live camera (see ``FrameSet.origin``)
            make live sessions: for demos, tests and evaluation on recordings, never for a kiosk.
    """

    def __init__(self, config: TemporalConfig = TemporalConfig(), allow_recorded: bool = False) -> None:
        self.config = config
        self.allow_recorded = allow_recorded
        self._votes: Deque[str] = deque(maxlen=config.window)
        self._track_id = 0
        self._last_box: Optional[Box] = None
        self._last_distance: Optional[float] = None
        self._missing = 0
        self._in_a_row = 0
        self._track_start_ms: Optional[float] = None
        self._decided_ms: Optional[float] = None
        self._opened = False
        self._last_time_ms: Optional[float] = None
        self._last_origin: Optional[str] = None

    def reset(self) -> None:
        """End the current track (the next face starts a new one)."""
        self._votes.clear()
        self._last_box = self._last_distance = None
        self._in_a_row = 0
        self._track_start_ms = self._decided_ms = None
        self._opened = False

    def _is_new_face(self, box: Box, distance: Optional[float]) -> bool:
        if self._last_box is None:
            return True
        cfg = self.config
        side, last_side = max(box[2] - box[0], box[3] - box[1]), max(self._last_box[2] - self._last_box[0],
                                                                      self._last_box[3] - self._last_box[1])
        if box_iou(self._last_box, box) < cfg.min_track_iou or abs(side / last_side - 1.0) > cfg.max_size_change:
            return True
        return distance is not None and self._last_distance is not None and \
            abs(distance - self._last_distance) > cfg.max_depth_jump_m

    def _continues(self, time_ms: Optional[float], origin: str) -> bool:
        """Whether this frameset follows the previous one in time and comes from the same kind of source."""
        last = self._last_time_ms
        return (time_ms is not None and math.isfinite(time_ms) and last is not None and origin == self._last_origin
                and 0.0 <= time_ms - last <= self.config.max_gap_ms)

    def update(self, verdict: Verdict, time_ms: Optional[float]) -> SessionDecision:
        """Add one verdict (with its capture time, None where unknown) and return the session decision."""
        if not self._continues(time_ms, verdict.origin):
            self.reset()
        self._last_time_ms, self._last_origin = time_ms, verdict.origin
        self._in_a_row = self._in_a_row + 1 if verdict.status == "live" else 0
        if verdict.box is None:
            self._missing += 1
            if self._missing > self.config.max_missing:
                self.reset()
            if self._last_box is not None:
                return self._decision(self._votes_status(), time_ms, "")
            if verdict.status == "no_face":
                return self._decision("no_face", time_ms, "")
            # A frozen, stale or broken frameset was never searched for a face: not "no_face".
            return self._decision("pending", time_ms, f"no face track: the framesets are {verdict.status} "
                                                      f"({verdict.reason})")
        self._missing = 0
        distance = verdict.quality.distance_m if verdict.quality is not None else None
        if self._is_new_face(verdict.box, distance):
            self.reset()
            self._in_a_row = int(verdict.status == "live")
            self._track_id += 1
            self._track_start_ms = time_ms
        weight = self.config.box_smoothing if self._last_box is not None else 0.0
        self._last_box = tuple(weight * last + (1.0 - weight) * now for last, now in zip(self._last_box or verdict.box,
                                                                                          verdict.box))
        self._last_distance = distance
        self._votes.append(verdict.status)
        status, reason = self._votes_status(), ""
        if status == "pending" and verdict.status == "live" and self._in_a_row >= self.config.live_votes:
            if verdict.origin == "camera" or self.allow_recorded:
                status = "live"
            else:
                reason = (f"the frames come from {verdict.origin!r}, not a live camera: such a session never turns "
                          "live (allow_recorded=True is for tests and demos)")
        return self._decision(status, time_ms, reason)

    def _votes_status(self) -> str:
        attack = sum(v == "attack" for v in self._votes)
        return "attack" if attack >= self.config.attack_votes else "pending"

    def _decision(self, status: str, time_ms: float, reason: str) -> SessionDecision:
        if status in ("live", "attack") and self._decided_ms is None and time_ms is not None:
            self._decided_ms = time_ms - (self._track_start_ms if self._track_start_ms is not None else time_ms)
        opened = status == "live" and not self._opened
        self._opened = self._opened or opened
        return SessionDecision(
            status=status, track_id=self._track_id, live_votes=self._in_a_row,
            attack_votes=sum(v == "attack" for v in self._votes), window=len(self._votes),
            time_to_decision_ms=self._decided_ms, opened=opened, reason=reason,
        )
