"""What `mmdg-edge live` does, as library functions: headless JSON lines, or an OpenCV window.

The window shows RGB, depth and IR side by side with the face box, a score bar and the verdict
colour. Headless mode prints one JSON line per frameset and returns a summary, for kiosks without
a screen and for `make demo`.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, TextIO

import numpy as np

from .detector import Detector, StreamResult
from .frames import FrameSet, Verdict
from .outputs import PendingOutput, replacing
from .records import verdict_record

logger = logging.getLogger(__name__)

STATUS_COLOURS_BGR = {
    "live": (60, 180, 60), "attack": (40, 40, 220), "uncertain": (0, 190, 230),
    "no_face": (160, 160, 160), "unreliable": (0, 140, 255), "error": (200, 0, 200),
}
PANEL_HEIGHT = 240
BANNER_LINES = 3  # of verdict text: the longest reasons (several vetoes) need three at the panel's width
BANNER_HEIGHT = 8 + 18 * BANNER_LINES + 24  # text lines, then the score bar
_FONT_SCALE = 0.5


@dataclass
class SegmentTally:
    """Verdicts of one ground-truth segment of a recording (e.g. the demo's demo_segments.json).

    ``session`` is the session decision at the segment's last frameset seen; ``decided_after`` the
    number of its framesets until the session first left "pending"/"no_face".
    """

    kind: str
    label: str
    first_frame: int
    last_frame: int
    framesets: int = 0
    verdicts: Counter = field(default_factory=Counter)
    session: str = "unseen"
    decided_after: Optional[int] = None

    @property
    def correct(self) -> bool:
        """Live segments end in a live session, attack segments in anything but live."""
        return self.framesets > 0 and (self.session == "live") == (self.label == "live")


@dataclass
class LiveSummary:
    """Counts of verdicts and session decisions: overall, per ground-truth label carried in the
    framesets' metadata (synthetic camera), and per segment when the recording's segments are known."""

    framesets: int = 0
    verdicts: Counter = field(default_factory=Counter)
    sessions: Counter = field(default_factory=Counter)
    by_truth: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    segments: List[SegmentTally] = field(default_factory=list)

    @classmethod
    def for_segments(cls, segments: Sequence[Dict[str, Any]]) -> "LiveSummary":
        """A summary that tallies each ``{"kind", "label", "first_frame", "last_frame"}`` segment."""
        return cls(segments=[SegmentTally(str(s["kind"]), str(s["label"]), int(s["first_frame"]), int(s["last_frame"]))
                             for s in segments])

    def add(self, result: StreamResult) -> None:
        frameset = result.frameset
        self.framesets += 1
        self.verdicts[result.verdict.status] += 1
        self.sessions[result.session.status] += 1
        truth = frameset.metadata.get("truth") if isinstance(frameset, FrameSet) else None
        if isinstance(truth, dict):
            label = truth.get("attack") or truth.get("label") or "unknown"
            self.by_truth[str(label)][result.session.status] += 1
        segment = self.segment_of(result.verdict.frame_number)
        if segment is not None:
            segment.framesets += 1
            segment.verdicts[result.verdict.status] += 1
            segment.session = result.session.status
            if segment.decided_after is None and result.session.status not in ("pending", "no_face"):
                segment.decided_after = segment.framesets

    def segment_of(self, frame_number: Optional[int]) -> Optional[SegmentTally]:
        """The segment holding ``frame_number``, if any."""
        for segment in self.segments:
            if frame_number is not None and segment.first_frame <= frame_number <= segment.last_frame:
                return segment
        return None

    def format_table(self) -> str:
        lines = [f"framesets: {self.framesets}", "verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(self.verdicts.items()))]
        if self.by_truth:
            statuses = ("pending", "live", "attack", "no_face")
            lines.append(f"{'ground truth':<14}" + "".join(f"{s:>9}" for s in statuses))
            for label, counts in sorted(self.by_truth.items()):
                lines.append(f"{label:<14}" + "".join(f"{counts.get(s, 0):>9}" for s in statuses))
        if self.segments:
            lines.append(f"{'segment':<9}{'frames':>8}{'live':>6}{'attack':>8}{'other':>7}{'session':>10}"
                         f"{'decided at':>12}{'expected':>10}{'ok':>5}")
            for seg in self.segments:
                other = seg.framesets - seg.verdicts["live"] - seg.verdicts["attack"]
                decided = "-" if seg.decided_after is None else f"frame {seg.decided_after}"
                expected = "live" if seg.label == "live" else "not live"
                lines.append(f"{seg.kind:<9}{f'{seg.first_frame}-{seg.last_frame}':>8}{seg.verdicts['live']:>6}"
                             f"{seg.verdicts['attack']:>8}{other:>7}{seg.session:>10}{decided:>12}{expected:>10}"
                             f"{'yes' if seg.correct else 'NO':>5}")
        return "\n".join(lines)


class VideoFile:
    """Annotated panels into a video file, opened on the first panel.

    The video is written beside ``path`` and renamed onto it at ``close`` only if it got a frame, so a
    run that showed nothing (a mistyped source) leaves an existing file as it was.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is False (checked when created, before any work).
        OSError: OpenCV cannot encode this file type here (the message says which to try).
    """

    def __init__(self, path: str, fps: float = 15.0, force: bool = False) -> None:
        self.path, self.fps, self.frames = path, fps, 0
        self._output = PendingOutput(path, force)
        self._writer: Any = None

    def write(self, panel: np.ndarray) -> None:
        cv2 = __import__("cv2")
        if self._writer is None:
            codec = "MJPG" if self.path.lower().endswith(".avi") else "mp4v"
            self._writer = cv2.VideoWriter(str(self._output.temporary), cv2.VideoWriter_fourcc(*codec), self.fps,
                                           (panel.shape[1], panel.shape[0]))
            if not self._writer.isOpened():
                raise OSError(f"video: OpenCV cannot write {self.path} here (no {codec} encoder); try a .avi file")
        self._writer.write(panel)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        try:
            if self.frames:
                self._output.commit()
            else:
                logger.warning("video %s: no frameset was shown, so no file was written", self.path)
        finally:
            self._output.discard()


def run_headless(detector: Detector, framesets: Iterable[FrameSet], out: TextIO, max_frames: Optional[int] = None,
                 summary: Optional[LiveSummary] = None, contact_sheet: Optional[str] = None,
                 allow_recorded: bool = False, video: Optional[VideoFile] = None, force: bool = False) -> LiveSummary:
    """Print one JSON verdict record per frameset to ``out`` (``records.verdict_record``); return the summary.

    Args:
        summary: the summary to fill as framesets come (e.g. ``LiveSummary.for_segments``; the
            caller keeps it, so an interrupted run still has its counts); default a new one.
        contact_sheet: write a PNG of annotated panels here: the last frameset of each segment
            when the summary has segments, else every 10th frameset (at most 24 panels).
        allow_recorded: let a recording or the synthetic camera reach live sessions (a demo).
        video: also write every annotated panel to this video.
        force: replace an existing ``contact_sheet`` (else FileExistsError, before the sheet is written).
    """
    summary = summary if summary is not None else LiveSummary()
    panels: Dict[Any, np.ndarray] = {}
    for index, result in enumerate(detector.stream(framesets, allow_recorded=allow_recorded)):
        summary.add(result)
        record = verdict_record(result.verdict, result.frameset, result.session, result.skipped)
        out.write(json.dumps(record) + "\n")
        out.flush()
        if video is not None:
            video.write(render_panel(result.frameset, result.verdict))
        if contact_sheet is not None:
            key = id(summary.segment_of(result.verdict.frame_number)) if summary.segments else index // 10
            if summary.segments or (index % 10 == 0 and len(panels) < 24):
                panels[key] = render_panel(result.frameset, result.verdict)
        if max_frames is not None and index + 1 >= max_frames:
            break
    if contact_sheet is not None:
        write_contact_sheet(list(panels.values()), contact_sheet, force=force)
    return summary


def write_contact_sheet(panels: Sequence[np.ndarray], path: str, columns: int = 2, force: bool = False) -> None:
    """Tile annotated panels (half size) into one PNG; an empty list writes nothing and says so.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is False (``outputs.check_output``).
    """
    cv2 = __import__("cv2")

    if not panels:
        logger.warning("contact sheet %s: no framesets to show", path)
        return
    small = [cv2.resize(p, (p.shape[1] // 2, p.shape[0] // 2), interpolation=cv2.INTER_AREA) for p in panels]
    height, width = max(p.shape[0] for p in small), max(p.shape[1] for p in small)
    rows = -(-len(small) // columns)
    sheet = np.zeros((rows * height, columns * width, 3), np.uint8)
    for i, tile in enumerate(small):
        y, x = (i // columns) * height, (i % columns) * width
        sheet[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    with replacing(path, force) as temporary:
        if not cv2.imwrite(str(temporary), sheet):
            raise OSError(f"contact sheet: cannot write {path}")


def _to_bgr(image: Optional[np.ndarray], kind: str) -> np.ndarray:
    cv2 = __import__("cv2")
    if image is None:
        blank = np.zeros((PANEL_HEIGHT, PANEL_HEIGHT * 4 // 3, 3), np.uint8)
        cv2.putText(blank, f"no {kind}", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (200, 200, 200), 2)
        return blank
    if kind == "rgb":
        bgr = image[..., ::-1]
    elif kind == "depth":
        valid = image[image > 0]
        near, far = (np.percentile(valid, (2, 98)) if valid.size else (0, 1))
        scaled = np.clip((far - image.astype(np.float32)) / max(far - near, 1.0) * 255, 0, 255).astype(np.uint8)
        bgr = cv2.applyColorMap(np.where(image > 0, scaled, 0).astype(np.uint8), cv2.COLORMAP_JET)
    else:
        ir8 = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else image
        bgr = cv2.cvtColor(ir8, cv2.COLOR_GRAY2BGR)
    scale = PANEL_HEIGHT / bgr.shape[0]
    return cv2.resize(np.ascontiguousarray(bgr), (int(round(bgr.shape[1] * scale)), PANEL_HEIGHT))


_ASCII = str.maketrans({"≥": ">=", "≤": "<=", "×": "x", "–": "-", "—": "-", "·": "*", "²": "2", "µ": "u"})


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only: spell the reasons' symbols out."""
    return text.translate(_ASCII).encode("ascii", "replace").decode("ascii")


def render_panel(frameset: FrameSet, verdict: Verdict) -> np.ndarray:
    """RGB | depth | IR side by side, face box, score bar and verdict banner (BGR uint8)."""
    cv2 = __import__("cv2")
    colour = STATUS_COLOURS_BGR[verdict.status]
    tiles = []
    for kind in ("rgb", "depth", "ir"):
        image = getattr(frameset, kind)
        tile = _to_bgr(image, kind)
        if verdict.box is not None and image is not None:
            s = PANEL_HEIGHT / image.shape[0]
            x0, y0, x1, y1 = (int(round(v * s)) for v in verdict.box)
            cv2.rectangle(tile, (x0, y0), (x1, y1), colour, 2)
        tiles.append(tile)
    panel = np.concatenate(tiles, axis=1)
    banner = np.zeros((BANNER_HEIGHT, panel.shape[1], 3), np.uint8)  # one height: video frames keep their size
    banner[:] = colour
    score = verdict.score if verdict.score is not None else 0.0
    bar = BANNER_HEIGHT - 18
    cv2.rectangle(banner, (10, bar), (10 + int(score * (panel.shape[1] - 20)), bar + 12), (255, 255, 255), -1)
    if verdict.threshold is not None:
        tx = 10 + int(verdict.threshold * (panel.shape[1] - 20))
        cv2.line(banner, (tx, bar - 4), (tx, bar + 16), (0, 0, 0), 2)
    text = _ascii(f"{verdict.status.upper()}  {verdict.reason}")
    for number, line in enumerate(banner_lines(text, panel.shape[1] - 20)):
        cv2.putText(banner, line, (10, 22 + 18 * number), cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, (255, 255, 255), 1)
    return np.concatenate([banner, panel], axis=0)


def banner_lines(text: str, width_px: int) -> List[str]:
    """``text`` broken at spaces into at most ``BANNER_LINES`` lines of at most ``width_px`` drawn; a
    text longer than that ends its last line with "..." (never cut mid-line without saying so)."""
    cv2 = __import__("cv2")

    def fits(line: str) -> bool:
        return cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, 1)[0][0] <= width_px

    lines: List[str] = []
    for word in text.split():
        if lines and fits(f"{lines[-1]} {word}"):
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > BANNER_LINES:
        last = lines[BANNER_LINES - 1]
        while last and not fits(last + " ..."):
            last = last[:-1]
        lines = lines[:BANNER_LINES - 1] + [last + " ..."]
    return lines


def has_display() -> bool:
    """Whether a window can open here (Linux needs an X or Wayland display; OpenCV's Qt aborts without one)."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_window(
    detector: Detector, framesets: Iterable[FrameSet], *, summary: Optional[LiveSummary] = None,
    video: Optional[VideoFile] = None, on_result: Optional[Callable[[StreamResult], None]] = None,
    allow_recorded: bool = False,
) -> LiveSummary:
    """Show (and/or save) the annotated stream; stops on q/Esc, a closed window or the stream's end.

    Raises:
        OSError: no display to open a window on (use ``run_headless``).
    """
    cv2 = __import__("cv2")
    if not has_display():
        raise OSError("no display to open a window on (DISPLAY is not set): use --headless")
    summary, title = summary if summary is not None else LiveSummary(), "mmdg-edge live"
    try:
        for result in detector.stream(framesets, allow_recorded=allow_recorded):
            summary.add(result)
            if on_result is not None:
                on_result(result)
            panel = render_panel(result.frameset, result.verdict)
            if video is not None:
                video.write(panel)
            cv2.imshow(title, panel)
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27) or cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) < 1:
                break
    finally:
        cv2.destroyAllWindows()
    return summary
