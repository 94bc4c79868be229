"""Following one face through a stream: where to look next, and when the face is no longer the same.

A stream session owns one ``FaceTrack``. It tells the aligner where the face was (``prior``) so a
tracked face costs one landmark pass instead of a full search, and asks for a full search (which
also counts the faces in view) every ``full_search_every`` framesets. It ends the face — and with
it the session's votes — when the content changes, not only when a box jumps: a rigid mask held up
where a live face was, or a print swapped in at the same place, keeps the box but changes
- the face's appearance (a small normalised thumbnail of the colour crop, or of the IR crop where
  colour is absent),
- its near-infrared level (skin versus paper, resin or a screen), or
- its 3-D landmark geometry (ratios of landmark distances, which a pose change leaves alone).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from .align import AlignResult, TrackPrior
from .face_mesh import CHIN, FOREHEAD, LEFT_EYE_OUTER, MOUTH_LEFT, MOUTH_RIGHT, NOSE_TIP, RIGHT_EYE_OUTER
from .frames import FaceCrops

__all__ = ["FaceSignature", "FaceTrack", "TrackConfig", "face_signature"]

_THUMB = 16
# Distances (landmark pairs) that, over the eye-corner distance, describe a face's proportions.
_PROPORTIONS = ((NOSE_TIP, CHIN), (NOSE_TIP, FOREHEAD), (MOUTH_RIGHT, MOUTH_LEFT), (FOREHEAD, CHIN))


@dataclass(frozen=True)
class TrackConfig:
    """When a tracked face counts as another one, and how often the whole frame is searched.

    The limits are far outside what one person does between framesets (30 per second): the
    thumbnail of a live face correlates above 0.9 with the previous one, its IR level moves by a
    few per cent, its proportions by a few per cent.
    """

    full_search_every: int = 5
    min_appearance: float = 0.8  # thumbnail correlation with the previous frameset
    max_ir_change: float = 0.25  # relative change of the face's median IR level
    max_geometry_change: float = 0.12  # largest relative change of a landmark proportion

    def __post_init__(self) -> None:
        if self.full_search_every < 1:
            raise ValueError(f"TrackConfig.full_search_every: expected ≥ 1 frameset, got {self.full_search_every}")
        if not (-1.0 < self.min_appearance < 1.0 and self.max_ir_change > 0 and self.max_geometry_change > 0):
            raise ValueError("TrackConfig: expected -1 < min_appearance < 1, max_ir_change > 0 and "
                             f"max_geometry_change > 0, got {self.min_appearance}, {self.max_ir_change}, "
                             f"{self.max_geometry_change}")


@dataclass(frozen=True)
class FaceSignature:
    """What a face looks like in one frameset: a zero-mean unit-norm thumbnail (None when neither colour
    nor IR crop exists), the median IR level of the face region (None without IR) and the face's proportions."""

    thumbnail: Optional[np.ndarray]
    ir_level: Optional[float]
    proportions: np.ndarray


def face_signature(crops: FaceCrops, landmarks: np.ndarray) -> FaceSignature:
    """The signature of one face: its crops and its landmarks (any pixel grid: only ratios are kept)."""
    picture = crops.rgb if crops.rgb is not None else crops.ir
    thumbnail = None
    if picture is not None:
        # Shrunk first, then grey: the thumbnail's 256 pixels are all that is converted.
        small = cv2.resize(picture, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        small = small.astype(np.float32).ravel()
        small -= small.mean()
        norm = float(np.linalg.norm(small))
        thumbnail = small / norm if norm > 0 else None
    ir_level = crops.ir_median
    eye = max(float(np.linalg.norm(landmarks[LEFT_EYE_OUTER] - landmarks[RIGHT_EYE_OUTER])), 1e-6)
    proportions = np.array([np.linalg.norm(landmarks[a] - landmarks[b]) / eye for a, b in _PROPORTIONS])
    return FaceSignature(thumbnail, ir_level, proportions)


class FaceTrack:
    """One stream's face from frameset to frameset (not thread-safe: one per stream session).

    Args:
        config: the search cadence and the content-change limits.
    """

    def __init__(self, config: TrackConfig = TrackConfig()) -> None:
        self.config = config
        self.clear()

    def clear(self) -> None:
        """Forget the face: the next frameset gets a full search and starts a new face."""
        self._landmarks: Optional[np.ndarray] = None
        self._source = ""
        self._since_search = 0
        self._num_faces = 0
        self._signature: Optional[FaceSignature] = None

    def prior(self) -> Optional[TrackPrior]:
        """Where to look for the face this frameset; None when a full search is due."""
        if self._landmarks is None or self._since_search + 1 >= self.config.full_search_every:
            return None
        return TrackPrior(self._landmarks, self._source, self._num_faces)

    def follow(self, result: AlignResult) -> Optional[str]:
        """Take this frameset's alignment; return why the face is another one than before, or None.

        A frameset without a face forgets the face (``clear``) and returns None: the session's own
        rules handle a face that is gone.
        """
        if result.landmarks is None or result.crops is None:
            self.clear()
            return None
        self._since_search = 0 if result.searched else self._since_search + 1
        if result.searched:
            self._num_faces = result.num_faces
        changed = None
        signature = face_signature(result.crops, result.landmarks)
        if self._signature is not None and self._source == result.source:
            changed = self._changed(self._signature, signature)
        self._landmarks, self._source, self._signature = result.landmarks, result.source, signature
        return changed

    def _changed(self, before: FaceSignature, now: FaceSignature) -> Optional[str]:
        cfg = self.config
        if before.thumbnail is not None and now.thumbnail is not None:
            correlation = float(before.thumbnail @ now.thumbnail)
            if correlation < cfg.min_appearance:
                return f"the face's appearance changed (correlation {correlation:.2f} < {cfg.min_appearance})"
        if before.ir_level is not None and now.ir_level is not None:
            change = abs(now.ir_level - before.ir_level) / max(before.ir_level, 1.0)
            if change > cfg.max_ir_change:
                return f"the face's infrared level changed by {change:.0%} > {cfg.max_ir_change:.0%}"
        change = float(np.max(np.abs(now.proportions / np.maximum(before.proportions, 1e-6) - 1.0)))
        if change > cfg.max_geometry_change:
            return f"the face's proportions changed by {change:.0%} > {cfg.max_geometry_change:.0%}"
        return None
