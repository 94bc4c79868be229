"""The product surface: `Detector.check(frameset) -> Verdict`, fail-closed, for kiosk integrators.

sensors → align → physics vetoes → preprocess → engine → decision. `check` never raises and never
answers "live" on anything unexpected: every failure becomes a non-live Verdict with its reason.
Physical cues can veto "live" but never grant it. A score inside a band around the threshold is
"uncertain", not a coin flip. `stream` adds K-of-N session decisions per face track.

Thread safety: one Detector may be shared by threads; `check` holds an internal lock for the whole
call (the aligner keeps per-stream smoothing state and engines are not re-entrant), so shared use
is serialised. For parallel throughput give each thread its own Detector.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Set, Tuple, Union

from .calibration import DeviceProfile, ProfileMismatch
from .frames import FrameSet, Verdict
from .physics import PhysicsConfig, check_physics
from .preprocess import PreprocessConfig, crops_to_input
from .temporal import SessionDecision, SessionTracker, TemporalConfig

if TYPE_CHECKING:
    from .engines.base import Engine

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
ASSETS = Path(__file__).parent / "assets"


@dataclass(frozen=True)
class DetectorConfig:
    """Decision settings.

    ``uncertainty_band``: scores within ± band of the threshold are "uncertain" (a device profile's
    band wins). ``use_physics``: run the depth/IR vetoes. ``temporal``: K-of-N session voting.
    """

    uncertainty_band: float = 0.05
    use_physics: bool = True
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)

    def __post_init__(self) -> None:
        if not 0.0 <= self.uncertainty_band < 0.5:
            raise ValueError(f"DetectorConfig.uncertainty_band: expected a value in [0, 0.5), got {self.uncertainty_band}")


@dataclass(frozen=True)
class StreamResult:
    """One step of `Detector.stream`: the frameset, its verdict and the session decision after it."""

    frameset: Any
    verdict: Verdict
    session: SessionDecision
    skipped: int = 0  # live sources: framesets dropped just before this one because scoring was busy


def resolve_model_path(model: PathLike) -> Path:
    """``"demo"`` → the bundled demo ONNX model; anything else is a model file the caller chose.

    Only the exact name ``"demo"`` is looked up among the bundled assets and it is never joined to a
    directory, so no name can reach outside them. Every other argument is an explicit path (relative
    to the working directory), allowed wherever it points if it is a regular file; whether it is a
    model this SDK runs is for ``mmdg_edge.engines.create_engine`` to decide.

    Raises:
        TypeError, ValueError: ``model`` is not a path, or empty.
        FileNotFoundError: no regular file there (missing, a directory or device, a dangling link or a link loop).
    """
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model: expected 'demo' or the path of a model file, got {type(model).__name__}")
    if not os.fspath(model):
        raise ValueError("model: expected 'demo' or the path of a model file, got an empty string")
    if str(model) == "demo":
        path = ASSETS / "demo.onnx"
        if not path.is_file():
            raise FileNotFoundError(f"the bundled demo model is missing ({path}); pass a model path")
        return path
    path = Path(model)
    if path.is_file():
        return path
    if path.exists():
        raise FileNotFoundError(f"model: {path} is not a regular file")
    if path.is_symlink():
        raise FileNotFoundError(f"model: {path} is a symbolic link that leads to no file (dangling, or a loop)")
    raise FileNotFoundError(f"model: no such file {path}")


def _timestamp(frameset: Any) -> Optional[float]:
    """The capture time of a valid frameset, else None: an invalid one is reported by ``check``, and
    its timestamps (NaN, text) must neither crash a stream nor move its clock."""
    if not isinstance(frameset, FrameSet):
        return None
    try:
        frameset.validate()
    except ValueError:
        return None
    return frameset.timestamp_ms


class Detector:
    """Turns framesets into verdicts with one engine, one aligner and one operating point.

    Args:
        engine: an mmdg_edge engine (see ``mmdg_edge.engines.create_engine``).
        aligner: a FaceAligner; by default one built with the engine's preprocessing.
        threshold: live threshold; default from ``profile``, else the model metadata.
        profile: a calibrated DeviceProfile; it must match the model (checked here) and the
            camera (checked per frameset).
        config: decision settings.
    """

    def __init__(
        self, engine: "Engine", aligner: Any = None, *, threshold: Optional[float] = None,
        profile: Optional[DeviceProfile] = None, config: DetectorConfig = DetectorConfig(),
    ) -> None:
        metadata = engine.metadata
        if profile is not None:
            profile.check_model(metadata["sha256"])
        if aligner is None:
            from .align import FaceAligner

            aligner = FaceAligner(preprocess=PreprocessConfig.from_dict(metadata["preprocess"]))
        if threshold is None:
            threshold = profile.threshold if profile is not None else float(metadata["threshold"])
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold: expected a value in (0, 1), got {threshold}")
        self.engine = engine
        self.aligner = aligner
        self.threshold = float(threshold)
        self.band = profile.uncertainty_band if profile is not None else config.uncertainty_band
        self.profile = profile
        self.config = config
        self.preprocess = PreprocessConfig.from_dict(metadata["preprocess"])
        self._lock = threading.Lock()
        self._reported: Set[Tuple[str, str]] = set()

    @classmethod
    def load(
        cls, model: PathLike = "demo", engine: str = "auto", threshold: Optional[float] = None,
        profile: Optional[PathLike] = None, config: DetectorConfig = DetectorConfig(), **engine_options: Any,
    ) -> "Detector":
        """Create a Detector from a model file.

        Args:
            model: ``"demo"``, a ``.onnx`` file, a TensorRT ``.plan`` or a ``.safetensors`` checkpoint.
            engine: engine name or ``"auto"`` (see ``mmdg_edge.engines.select_engine``).
            threshold: overrides the profile's and the model's threshold.
            profile: path of a device profile JSON written by ``mmdg-edge calibrate``.
            config: decision settings.
            **engine_options: passed to the engine (e.g. ``intra_op_num_threads``).

        Returns:
            A ready Detector.

        Raises:
            FileNotFoundError: the model file does not exist.
            MMDGEdgeError: the model or profile is refused (the message says why).

        Example:
            >>> detector = Detector.load("demo")  # doctest: +SKIP
            >>> verdict = detector.check(frameset)  # doctest: +SKIP
        """
        from .engines import create_engine

        loaded_profile = DeviceProfile.load(profile) if profile is not None else None
        return cls(create_engine(engine, resolve_model_path(model), **engine_options), threshold=threshold,
                   profile=loaded_profile, config=config)

    def check(self, frameset: Any) -> Verdict:
        """Score one frameset on its own. Never raises; never "live" on anything unexpected.

        The verdict does not depend on earlier calls: the aligner's face tracking and smoothing
        serve ``stream`` only, so framesets of different cameras can share one Detector.

        Returns:
            A Verdict: live / attack / uncertain / no_face / unreliable / error, with the reason,
            score, threshold, modalities used, face box, quality and per-stage timings.
        """
        return self._guarded(frameset, track=False)

    def _guarded(self, frameset: Any, track: bool) -> Verdict:
        with self._lock:
            start = time.perf_counter()
            try:
                if not track:
                    reset = getattr(self.aligner, "reset", None)
                    if reset is not None:
                        reset()
                verdict = self._check(frameset, start)
            except Exception as exc:  # fail closed: any failure is a denial with its reason
                self._log_once(exc)
                verdict = Verdict("error", f"{type(exc).__name__}: {exc}", threshold=self.threshold)
            verdict.timings_ms["total"] = (time.perf_counter() - start) * 1000.0
            return verdict

    def _log_once(self, exc: Exception) -> None:
        """Log an unexpected failure with its traceback the first time; at most 64 distinct ones are
        remembered, so messages carrying per-frame values cannot grow the set without bound."""
        key = (type(exc).__name__, str(exc)[:200])
        if key in self._reported:
            return
        if len(self._reported) < 64:
            self._reported.add(key)
            logger.exception("unexpected failure while checking a frameset")
        else:
            logger.debug("unexpected failure while checking a frameset: %s", key)

    def _check(self, frameset: Any, start: float) -> Verdict:
        if not isinstance(frameset, FrameSet):
            return Verdict("error", f"expected a FrameSet, got {type(frameset).__name__}", threshold=self.threshold)
        try:
            frameset.validate()
        except ValueError as exc:
            return Verdict("error", f"invalid frameset: {exc}", threshold=self.threshold)
        frame_number = frameset.frame_number
        if self.profile is not None:
            try:
                self.profile.check_camera(frameset.serial)
            except ProfileMismatch as exc:
                return Verdict("error", str(exc), threshold=self.threshold, frame_number=frame_number)
        timings = {}
        result = self.aligner.align(frameset)
        timings["align"] = (time.perf_counter() - start) * 1000.0
        if result.status != "ok" or result.crops is None:
            status = result.status if result.status in ("no_face", "unreliable") else "error"
            return Verdict(status, result.reason, threshold=self.threshold, timings_ms=timings, frame_number=frame_number)
        crops = result.crops
        common = dict(threshold=self.threshold, modalities=crops.modalities, box=crops.box, quality=crops.quality,
                      timings_ms=timings, frame_number=frame_number)
        if not crops.quality.passed:
            return Verdict("unreliable", "face quality too low: " + "; ".join(crops.quality.failures), **common)
        vetoes: Tuple[str, ...] = ()
        if self.config.use_physics:
            depth_box = getattr(result, "depth_box", None) or crops.box
            vetoes = check_physics(frameset.depth, frameset.ir, depth_box, frameset.depth_scale_m,
                                   self.config.physics).vetoes
        t0 = time.perf_counter()
        inputs, mask = crops_to_input([crops], self.preprocess)
        timings["preprocess"] = (time.perf_counter() - t0) * 1000.0
        t0 = time.perf_counter()
        score = float(self.engine.run(inputs, mask)[0])
        timings["engine"] = (time.perf_counter() - t0) * 1000.0
        return self._decide(score, vetoes, common)

    def _decide(self, score: float, vetoes: Tuple[str, ...], common: dict) -> Verdict:
        if vetoes:
            return Verdict("attack", "physical veto: " + "; ".join(vetoes), score=score, **common)
        if abs(score - self.threshold) < self.band:
            return Verdict("uncertain", f"score {score:.3f} within ±{self.band} of threshold {self.threshold:.3f}",
                           score=score, **common)
        if score >= self.threshold:
            used = "+".join(common["modalities"])
            return Verdict("live", f"model score {score:.3f} ≥ {self.threshold:.3f} ({used})", score=score, **common)
        return Verdict("attack", f"model score {score:.3f} < {self.threshold:.3f}", score=score, **common)

    def stream(self, framesets: Iterable[FrameSet], tracker: Optional[SessionTracker] = None) -> Iterator[StreamResult]:
        """Verdict per frameset plus the session decision of the current face track.

        Timestamps that do not advance (a stale or replayed frame) give an "unreliable" verdict.
        A live source (``is_live``, e.g. a RealSense camera) is read on a background thread and
        only its newest frameset is scored, so a slow engine skips frames (``StreamResult.skipped``)
        instead of falling behind; recordings and lists are scored frame by frame.
        """
        from .sensors.latest import LatestOnly

        tracker = tracker if tracker is not None else SessionTracker(self.config.temporal)
        reset = getattr(self.aligner, "reset", None)
        if reset is not None:
            reset()
        latest = LatestOnly(framesets) if getattr(framesets, "is_live", False) else None
        try:
            yield from self._stream(latest if latest is not None else framesets, tracker, latest)
        finally:
            if latest is not None:
                latest.close()

    def _stream(self, framesets: Iterable[FrameSet], tracker: SessionTracker,
                latest: Optional[Any]) -> Iterator[StreamResult]:
        last_stamp: Optional[float] = None
        for index, frameset in enumerate(framesets):
            stamp = _timestamp(frameset)
            if stamp is not None and last_stamp is not None and stamp <= last_stamp:
                verdict = Verdict("unreliable", f"stale frame: timestamp {stamp} ms did not advance past {last_stamp} ms",
                                  threshold=self.threshold, frame_number=frameset.frame_number)
            else:
                verdict = self._guarded(frameset, track=True)
                last_stamp = stamp if stamp is not None else last_stamp
            skipped = latest.skipped_before if latest is not None else 0
            yield StreamResult(frameset, verdict, tracker.update(verdict, stamp if stamp is not None else float(index)),
                               skipped)

