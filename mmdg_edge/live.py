"""What `mmdg-edge live` does, as library functions: headless JSON lines, or an OpenCV window.

The window shows RGB, depth and IR side by side with the face box, a score bar and the verdict
colour. Headless mode prints one JSON line per frameset and returns a summary, for kiosks without
a screen and for `make demo`.
"""
from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Optional, TextIO

import numpy as np

from .detector import Detector, StreamResult
from .frames import FrameSet, Verdict

logger = logging.getLogger(__name__)

STATUS_COLOURS_BGR = {
    "live": (60, 180, 60), "attack": (40, 40, 220), "uncertain": (0, 190, 230),
    "no_face": (160, 160, 160), "unreliable": (0, 140, 255), "error": (200, 0, 200),
}
PANEL_HEIGHT = 240


@dataclass
class LiveSummary:
    """Counts of verdicts and session decisions, overall and per ground-truth label when known."""

    framesets: int = 0
    verdicts: Counter = field(default_factory=Counter)
    sessions: Counter = field(default_factory=Counter)
    by_truth: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, result: StreamResult) -> None:
        frameset = result.frameset
        self.framesets += 1
        self.verdicts[result.verdict.status] += 1
        self.sessions[result.session.status] += 1
        truth = frameset.metadata.get("truth") if isinstance(frameset, FrameSet) else None
        if isinstance(truth, dict):
            label = truth.get("attack") or truth.get("label") or "unknown"
            self.by_truth[str(label)][result.session.status] += 1

    def format_table(self) -> str:
        lines = [f"framesets: {self.framesets}", "verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(self.verdicts.items()))]
        if self.by_truth:
            statuses = ("pending", "live", "attack", "no_face")
            lines.append(f"{'ground truth':<14}" + "".join(f"{s:>9}" for s in statuses))
            for label, counts in sorted(self.by_truth.items()):
                lines.append(f"{label:<14}" + "".join(f"{counts.get(s, 0):>9}" for s in statuses))
        return "\n".join(lines)


def verdict_line(result: StreamResult) -> Dict[str, Any]:
    """One JSON-serialisable record per frameset (headless output)."""
    verdict = result.verdict
    return {
        "frame": verdict.frame_number, "status": verdict.status, "score": verdict.score,
        "threshold": verdict.threshold, "reason": verdict.reason, "modalities": list(verdict.modalities),
        "session": result.session.status, "timings_ms": {k: round(v, 2) for k, v in verdict.timings_ms.items()},
    }


def run_headless(detector: Detector, framesets: Iterable[FrameSet], out: TextIO, max_frames: Optional[int] = None) -> LiveSummary:
    """Print one JSON line per frameset to ``out``; return the summary."""
    summary = LiveSummary()
    for index, result in enumerate(detector.stream(framesets)):
        if max_frames is not None and index >= max_frames:
            break
        summary.add(result)
        out.write(json.dumps(verdict_line(result)) + "\n")
        out.flush()
    return summary


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
    banner = np.zeros((50, panel.shape[1], 3), np.uint8)
    banner[:] = colour
    score = verdict.score if verdict.score is not None else 0.0
    cv2.rectangle(banner, (10, 32), (10 + int(score * (panel.shape[1] - 20)), 44), (255, 255, 255), -1)
    if verdict.threshold is not None:
        tx = 10 + int(verdict.threshold * (panel.shape[1] - 20))
        cv2.line(banner, (tx, 28), (tx, 48), (0, 0, 0), 2)
    cv2.putText(banner, f"{verdict.status.upper()}  {verdict.reason[:80]}", (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (255, 255, 255), 1)
    return np.concatenate([banner, panel], axis=0)


def run_window(
    detector: Detector, framesets: Iterable[FrameSet], *, show: bool = True, save_video: Optional[str] = None,
    fps: float = 15.0, on_result: Optional[Callable[[StreamResult], None]] = None,
) -> LiveSummary:
    """Show (and/or save) the annotated stream; stops on q/Esc, a closed window or the stream's end."""
    cv2 = __import__("cv2")
    summary, writer, title = LiveSummary(), None, "mmdg-edge live"
    try:
        for result in detector.stream(framesets):
            summary.add(result)
            if on_result is not None:
                on_result(result)
            panel = render_panel(result.frameset, result.verdict)
            if save_video is not None:
                if writer is None:
                    writer = cv2.VideoWriter(save_video, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (panel.shape[1], panel.shape[0]))
                writer.write(panel)
            if show:
                cv2.imshow(title, panel)
                key = cv2.waitKey(1) & 0xFF
                if key in (ord("q"), 27) or cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) < 1:
                    break
    finally:
        if writer is not None:
            writer.release()
        if show:
            cv2.destroyAllWindows()
    return summary
