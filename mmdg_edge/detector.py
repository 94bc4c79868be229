"""The product surface: `Detector.check(frameset) -> Verdict`, fail-closed, for kiosk integrators.

One straight line per frameset: validate (once) and check freshness → find the face and its landmarks,
cut it (aligner) → physical checks on the landmark regions → encode → engine → output check →
decision; a physical veto decides "attack" before the engine (``DetectorConfig.skip_engine_on_veto``).
`check` never raises and never answers "live" on anything unexpected: every failure becomes a
non-live Verdict with its reason. A stream the detector requires that is missing, blank or
malformed, a physical check that cannot be measured on it, or a frameset from another camera than
the device profile's makes the verdict "unreliable"; "error" is for failures of the SDK or engine.
Physical cues can veto "live" but never grant it. A score inside a band around the threshold is
"uncertain", not a coin flip.

`check` is stateless. A stream of framesets gets its own session (`open_session`, or `stream` which
opens one): the session alone holds what a stream builds up — the face track, the freshness guard
(frozen or replayed streams) and the session decisions — so streams never share state.

The work per frameset is two stages: prepare (validate, freshness, align, physics, encode) and
finish (engine, decision). ``check`` runs them one after the other; a stream of a real-time source
runs them pipelined (``mmdg_edge.session``): the engine scores one frameset while the next is aligned.

Thread safety: one Detector may be shared by threads and streams. The prepare stage holds one internal
lock, the engine another (the face models and engines need not be re-entrant), so shared use is
serialised per model: one call's aligner may run beside another call's engine, never two of either.
For parallel throughput give each thread its own Detector. A session is for one stream: do not share
one session between threads.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, Optional, Set, Tuple, Union

import numpy as np

from .assets import DEMO_MODEL, bundled
from .bundle import is_bundle, read_bundle
from .errors import BundleError, ProfileMismatch
from .frames import MAX_PIXELS, MODALITIES, FrameSet, Verdict
from .freshness import FreshnessConfig, check_frameset
from .physics import DEPTH_CHECKS, IR_CHECKS, OPTIONAL_CHECKS, PhysicsConfig, check_physics
from .preprocess import PreprocessConfig, encode
from .profile import DeviceProfile
from .session import StreamResult, StreamSession
from .temporal import SessionTracker, TemporalConfig
from .tracking import TrackConfig

if TYPE_CHECKING:
    from datetime import datetime

    from .align import FaceAligner
    from .engines.base import Engine

__all__ = ["Detector", "DetectorConfig", "StreamResult", "StreamSession", "resolve_model_path"]

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
_CHECKS_OF = {"depth": DEPTH_CHECKS, "ir": IR_CHECKS}


@dataclass(frozen=True)
class DetectorConfig:
    """Decision settings.

    Attributes:
        required: the streams a frameset must bring, each with its physical checks measurable
            (default all three, the kiosk rig). A rig without IR opts out explicitly with
            ``required=("rgb", "depth")``; its verdicts then name the checks that did not run.
        uncertainty_band: scores within ± band of the threshold are "uncertain" (a device
            profile's band wins).
        use_physics: run the depth/IR vetoes (off only to calibrate the model alone).
        skip_engine_on_veto: a physical veto decides "attack" without encoding or running the engine
            (the verdict's score is None): a print or a screen costs no model time. False runs the
            engine anyway and carries its score in the vetoed verdict (to log what the model made of
            the attack); the verdict is "attack" either way.
        pipeline_realtime: ``stream`` of a real-time source (``is_realtime``) aligns the next
            frameset while the engine scores the current one, on one worker thread; False scores
            one frameset at a time. Recordings and lists are always scored one at a time.
        max_yaw_deg, max_pitch_deg, max_roll_deg: a head turned further (pose from the landmarks)
            is "uncertain": the model and the face-shape check are not made for it. The pitch limit
            is wider: the landmarks' eye-mouth plane leans back about 10° on a face looking
            straight at the camera.
        physics, freshness, temporal, track: the vetoes' thresholds, the freshness limits, the
            session votes and when a stream's face counts as another one.
        max_pixels: the most pixels a frame of any stream may have; a larger one is an error
            before any work on it (``frames.MAX_PIXELS`` by default).
    """

    required: Tuple[str, ...] = MODALITIES
    uncertainty_band: float = 0.05
    use_physics: bool = True
    skip_engine_on_veto: bool = True
    pipeline_realtime: bool = True
    max_yaw_deg: float = 45.0
    max_pitch_deg: float = 40.0
    max_roll_deg: float = 30.0
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    freshness: FreshnessConfig = field(default_factory=FreshnessConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    max_pixels: int = MAX_PIXELS

    def __post_init__(self) -> None:
        if isinstance(self.required, str) or not self.required or not set(self.required) <= set(MODALITIES):
            raise ValueError(f"DetectorConfig.required: expected a non-empty tuple of {MODALITIES}, got "
                             f"{self.required!r}")
        if not 0.0 <= self.uncertainty_band < 0.5:
            raise ValueError(f"DetectorConfig.uncertainty_band: expected a value in [0, 0.5), got {self.uncertainty_band}")
        if not all(0.0 < limit <= 90.0 for limit in (self.max_yaw_deg, self.max_pitch_deg, self.max_roll_deg)):
            raise ValueError("DetectorConfig.max_yaw_deg/max_pitch_deg/max_roll_deg: expected degrees in (0, 90], got "
                             f"{self.max_yaw_deg}, {self.max_pitch_deg}, {self.max_roll_deg}")
        if isinstance(self.max_pixels, bool) or not isinstance(self.max_pixels, int) or self.max_pixels < 1:
            raise ValueError(f"DetectorConfig.max_pixels: expected a positive int, got {self.max_pixels!r}")
        for name in ("use_physics", "skip_engine_on_veto", "pipeline_realtime"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"DetectorConfig.{name}: expected True or False, got {getattr(self, name)!r}")


@dataclass
class _Prepared:
    """A frameset after the prepare stage: its verdict where that was decided without the engine, else
    the engine's inputs and what the decision needs."""

    frameset: Any
    common: Dict[str, Any]  # the verdict's fields known so far, timings_ms among them
    verdict: Optional[Verdict] = None
    inputs: Optional[Tuple[np.ndarray, np.ndarray]] = None
    vetoes: Tuple[str, ...] = ()
    new_track: bool = False  # the stream's face track changed at this frameset
    elapsed_ms: float = 0.0


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
        return bundled(DEMO_MODEL, "reinstall mmdg-edge, or pass a model path")
    path = Path(model)
    if path.is_file():
        return path
    if path.exists():
        raise FileNotFoundError(f"model: {path} is not a regular file")
    if path.is_symlink():
        raise FileNotFoundError(f"model: {path} is a symbolic link that leads to no file (dangling, or a loop)")
    raise FileNotFoundError(f"model: no such file {path}")


def _score(output: Any) -> float:
    """The one live probability an engine returned for one frameset, or ValueError saying what came instead.

    Checked here whatever the engine: a broken or foreign engine must not open a door by returning
    5.0, inf, NaN, two values, text or a list.
    """
    if not isinstance(output, np.ndarray):
        raise ValueError(f"engine output: expected a numpy array of one live probability, got {type(output).__name__}")
    if output.shape != (1,) or output.dtype.kind != "f":
        raise ValueError(f"engine output: expected shape (1,) floating point, got {output.shape} {output.dtype}")
    score = float(output[0])
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise ValueError(f"engine output: expected a live probability in [0, 1], got {score!r}")
    return score


class Detector:
    """Turns framesets into verdicts with one engine, one aligner and one operating point.

    Args:
        engine: an mmdg_edge engine (see ``mmdg_edge.engines.create_engine``).
        aligner: a FaceAligner; by default a new one.
        threshold: live threshold; default from ``profile``, else the model metadata. Fixed for the
            detector's life (read-only).
        profile: a calibrated DeviceProfile; it must match the model file the engine loaded
            (checked here) and the camera (checked per frameset).
        config: decision settings.

    Raises:
        ValueError: a threshold outside (0, 1) or a band outside [0, 0.5).
        ProfileMismatch: the profile belongs to another model file or precision.
    """

    def __init__(
        self, engine: "Engine", aligner: Optional["FaceAligner"] = None, *, threshold: Optional[float] = None,
        profile: Optional[DeviceProfile] = None, config: DetectorConfig = DetectorConfig(),
    ) -> None:
        metadata = engine.metadata
        if profile is not None:
            profile.check_model(engine)
            if not profile.report.target_shown:
                logger.warning("device profile for camera %r: %s", profile.camera_serial, profile.report.shortfall())
        if aligner is None:
            from .align import FaceAligner

            aligner = FaceAligner()
        if threshold is None:
            threshold = profile.threshold if profile is not None else metadata["threshold"]
        band = profile.uncertainty_band if profile is not None else config.uncertainty_band
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold: expected a number in (0, 1), got {threshold!r}")
        if isinstance(band, bool) or not isinstance(band, (int, float)) or not 0.0 <= band < 0.5:
            raise ValueError(f"uncertainty band: expected a value in [0, 0.5), got {band!r}")
        self.engine = engine
        self.aligner = aligner
        self.profile = profile
        self.config = config
        self._threshold, self._band = float(threshold), float(band)
        self._preprocess = PreprocessConfig.from_dict(metadata["preprocess"])
        self._align_lock, self._engine_lock, self._reported_lock = threading.Lock(), threading.Lock(), threading.Lock()
        self._reported: Set[Tuple[str, str]] = set()

    @property
    def threshold(self) -> float:
        """The live threshold in force (read-only: a changed threshold is a new Detector)."""
        return self._threshold

    @property
    def band(self) -> float:
        """Scores within ± band of the threshold are "uncertain" (read-only)."""
        return self._band

    @property
    def preprocess(self) -> PreprocessConfig:
        """The model's crop encoding, from its metadata: the only one this detector uses."""
        return self._preprocess

    @classmethod
    def load(
        cls, model: PathLike = "demo", engine: str = "auto", threshold: Optional[float] = None,
        profile: Optional[PathLike] = None, config: DetectorConfig = DetectorConfig(),
        trusted_key: Optional[PathLike] = None, precision: str = "fp32",
        min_created: Optional[Union[str, "datetime"]] = None, **engine_options: Any,
    ) -> "Detector":
        """Create a Detector from a model file or a bundle folder.

        Args:
            model: ``"demo"``, a ``.onnx`` file, a TensorRT ``.plan``, a ``.safetensors`` checkpoint,
                or a bundle folder (``mmdg-edge bundle``: model, profile and report for one camera).
            engine: engine name or ``"auto"`` (see ``mmdg_edge.engines.select_engine``).
            threshold: overrides the profile's and the model's threshold.
            profile: path of a device profile JSON written by ``mmdg-edge calibrate``.
            config: decision settings.
            trusted_key: an Ed25519 public key (PEM, ``mmdg-edge keygen``); every file read (the
                model file, a TensorRT plan's sidecar, the profile, a bundle's index) must then carry
                a signature by it (``mmdg-edge sign``, ``mmdg-edge bundle --key``), else it is refused
                before it is parsed.
            precision: a bundle's model to load: "fp32" or "int8" (its profile comes with it).
            min_created: the oldest profile or bundle accepted (ISO 8601 with UTC offset, or an aware
                datetime): give the current one's creation time, and an older one, even if signed by
                the trusted key, is refused as a rollback.
            **engine_options: passed to the engine (e.g. ``intra_op_num_threads``).

        Returns:
            A ready Detector.

        Raises:
            FileNotFoundError: the model file does not exist.
            MMDGEdgeError: the model or profile is refused (the message says why): e.g.
                ProfileMismatch, SignatureError, EngineMismatch.

        Example:
            >>> detector = Detector.load("demo")  # doctest: +SKIP
            >>> verdict = detector.check(frameset)  # doctest: +SKIP
        """
        from .engines import create_engine
        from .signing import parse_min_created

        minimum = parse_min_created(min_created)
        key = None
        if trusted_key is not None:
            from .signing import load_public_key

            key = load_public_key(trusted_key)
        expected_sha256 = profile_sha256 = None
        if isinstance(model, (str, os.PathLike)) and os.fspath(model) and model != "demo" and is_bundle(model):
            if profile is not None:
                raise ValueError("profile: a bundle brings its own device profile; pass the bundle alone")
            bundled_files = read_bundle(model, precision, key, minimum)
            model, profile = bundled_files.model, bundled_files.profile
            expected_sha256, profile_sha256 = bundled_files.model_sha256, bundled_files.profile_sha256
        loaded_profile = DeviceProfile.load(profile, key, profile_sha256, minimum) if profile is not None else None
        path = resolve_model_path(model)
        verified = {}
        if key is not None:  # every file the engine will read (a plan's sidecar too), before it is parsed
            from .engines import model_files
            from .signing import check_loaded, verify_files

            verified = verify_files(model_files(path), key, "model")
        created = create_engine(engine, path, **engine_options)
        if expected_sha256 is not None and created.model_sha256 != expected_sha256:
            raise BundleError(f"{path} changed while it was loaded (its SHA-256 differs from the bundle's)")
        if key is not None:
            check_loaded(created.files, verified)
        return cls(created, threshold=threshold, profile=loaded_profile, config=config)

    def check(self, frameset: Any) -> Verdict:
        """Score one frameset on its own. Never raises; never "live" on anything unexpected.

        The verdict does not depend on earlier calls (face tracking and the cross-frameset freshness
        checks belong to a stream's session), so framesets of different cameras can share one
        Detector. A single live verdict is not a door opening: open on a session's decision.

        Returns:
            A Verdict: live / attack / uncertain / no_face / unreliable / error, with the reason,
            score, threshold, modalities used, face box, quality, origin, skipped checks and
            per-stage timings.
        """
        return self._finish(self._prepare(frameset, None))

    def _prepare(self, frameset: Any, session: Optional[StreamSession]) -> _Prepared:
        """The prepare stage (validate, freshness, align, physics, encode); never raises."""
        with self._align_lock:
            start = time.perf_counter()
            timings: Dict[str, float] = {}
            prepared = _Prepared(frameset, dict(threshold=self._threshold, timings_ms=timings, origin="unknown"))
            try:
                prepared.verdict = self._until_engine(prepared, session)
            except Exception as exc:  # fail closed: any failure is a denial with its reason
                prepared.verdict = self._failure(exc, timings)
            prepared.elapsed_ms = (time.perf_counter() - start) * 1000.0
            return prepared

    def _finish(self, prepared: _Prepared) -> Verdict:
        """The finish stage (engine, output check, decision) of a prepared frameset; never raises."""
        verdict, engine_ms = prepared.verdict, 0.0
        if verdict is None:
            with self._engine_lock:
                start = time.perf_counter()
                try:
                    verdict = self._run_engine(prepared)
                except Exception as exc:  # fail closed, as in the prepare stage
                    verdict = self._failure(exc, prepared.common["timings_ms"])
                engine_ms = (time.perf_counter() - start) * 1000.0
        verdict.timings_ms["total"] = prepared.elapsed_ms + engine_ms
        return verdict

    def _failure(self, exc: Exception, timings: Dict[str, float]) -> Verdict:
        self._log_once(exc)
        return Verdict("error", f"{type(exc).__name__}: {exc}", threshold=self._threshold, origin="unknown",
                       timings_ms=timings)

    def _log_once(self, exc: Exception) -> None:
        """Log an unexpected failure with its traceback the first time; at most 64 distinct ones are
        remembered, so messages carrying per-frame values cannot grow the set without bound."""
        key = (type(exc).__name__, str(exc)[:200])
        with self._reported_lock:  # both stages report, from two threads in a pipelined stream
            if key in self._reported:
                return
            first = len(self._reported) < 64
            if first:
                self._reported.add(key)
        if first:
            logger.exception("unexpected failure while checking a frameset")
        else:
            logger.debug("unexpected failure while checking a frameset: %s", key)

    def _until_engine(self, prepared: _Prepared, session: Optional[StreamSession]) -> Optional[Verdict]:
        """Everything before the engine: the verdict where it is decided here, else None with the
        engine's inputs and the vetoes in ``prepared``."""
        frameset, common = prepared.frameset, prepared.common
        clock = _Clock(common["timings_ms"])
        if not isinstance(frameset, FrameSet):
            return Verdict("error", f"expected a FrameSet, got {type(frameset).__name__}", **common)
        try:
            frameset.validate(self.config.max_pixels)
        except ValueError as exc:  # a stream of the wrong shape or dtype: the input, not the SDK, is at fault
            return Verdict("unreliable", f"invalid frameset: {exc}", **common)
        common.update(origin=frameset.origin, frame_number=frameset.frame_number)  # validated from here on
        stale = check_frameset(frameset, self.config.freshness, time.monotonic())
        if stale is None and session is not None:
            stale = session.guard.check(frameset)
        if stale is not None:
            return Verdict("unreliable", stale, **common)
        if self.profile is not None:
            try:
                self.profile.check_camera(frameset.serial)
            except ProfileMismatch as exc:
                return Verdict("unreliable", str(exc), **common)
        missing = [name for name in self.config.required if getattr(frameset, name) is None]
        if missing:
            return Verdict("unreliable", f"required stream{'s' if len(missing) > 1 else ''} missing: "
                           f"{', '.join(missing)}", **common)
        blank = [name for name in self.config.required if _is_blank(getattr(frameset, name))]
        if blank:
            return Verdict("unreliable", f"required stream{'s' if len(blank) > 1 else ''} blank (every pixel one "
                           f"value: a dead or covered sensor): {', '.join(blank)}", **common)
        clock.lap("validate")
        result = self.aligner.align(frameset, session.face.prior() if session is not None else None)
        if session is not None:
            prepared.new_track = session.follow(result)
        clock.lap("align")
        if result.status != "ok" or result.crops is None:
            status = result.status if result.status in ("no_face", "unreliable") else "error"
            return Verdict(status, result.reason, **common)
        crops = result.crops
        common.update(modalities=crops.modalities, box=crops.box, quality=crops.quality)
        if not crops.quality.passed:
            return Verdict("unreliable", "face quality too low: " + "; ".join(crops.quality.failures), **common)
        off_pose = self._off_pose(crops.quality)
        if off_pose:
            return Verdict("uncertain", off_pose, **common)
        unusable = [name for name in self.config.required if getattr(crops, name) is None]
        if unusable:
            return Verdict("unreliable", f"required stream{'s' if len(unusable) > 1 else ''} unusable on the face: "
                           f"{', '.join(unusable)}", **common)
        vetoes, skipped, unmeasurable = self._physics(crops)
        clock.lap("physics")
        common["skipped_checks"] = skipped
        if unmeasurable:
            return Verdict("unreliable", "physical check cannot be measured on a required stream: " + unmeasurable,
                           **common)
        if vetoes and self.config.skip_engine_on_veto:
            return self._decide(None, vetoes, common)
        prepared.inputs, prepared.vetoes = encode([crops], self._preprocess), vetoes
        clock.lap("encode")
        return None

    def _run_engine(self, prepared: _Prepared) -> Verdict:
        clock = _Clock(prepared.common["timings_ms"])
        output = self.engine.run(*prepared.inputs)
        clock.lap("engine")
        try:
            score = _score(output)
        except ValueError as exc:
            return Verdict("error", str(exc), **prepared.common)
        return self._decide(score, prepared.vetoes, prepared.common)

    def _off_pose(self, quality: Any) -> str:
        """Why the head is turned too far to judge ("" when it is not, or its pose is unknown)."""
        cfg = self.config
        for name, value, limit in (("yaw", quality.yaw_deg, cfg.max_yaw_deg),
                                   ("pitch", quality.pitch_deg, cfg.max_pitch_deg),
                                   ("roll", quality.roll_deg, cfg.max_roll_deg)):
            if value is not None and abs(value) > limit:
                return f"head turned too far: {name} {value:+.0f}° beyond ±{limit:.0f}° (face the camera)"
        return ""

    def _physics(self, crops: Any) -> Tuple[Tuple[str, ...], Tuple[str, ...], str]:
        """(vetoes, checks skipped on streams that are not required, why a required one is unmeasurable)."""
        if not self.config.use_physics:
            return (), ("all physical checks (use_physics=False)",), ""
        report = check_physics(crops, self.config.physics)
        skipped, unmeasurable = [], []
        for stream, checks in _CHECKS_OF.items():
            for check in checks:
                if check not in report.unmeasured:
                    continue
                if stream in self.config.required and check not in OPTIONAL_CHECKS:
                    unmeasurable.append(f"{check} ({report.unmeasured[check]})")
                else:
                    skipped.append(check)
        return report.vetoes, tuple(skipped), "; ".join(unmeasurable)

    def _decide(self, score: Optional[float], vetoes: Tuple[str, ...], common: Dict[str, Any]) -> Verdict:
        """The verdict from the model's score and the vetoes; score None where a veto decided before the engine."""
        threshold, band = self._threshold, self._band
        if vetoes:
            return Verdict("attack", "physical veto: " + "; ".join(vetoes), score=score, **common)
        if abs(score - threshold) < band:
            return Verdict("uncertain", f"score {score:.3f} within ±{band} of threshold {threshold:.3f}",
                           score=score, **common)
        if score >= threshold:
            used = "+".join(common["modalities"])
            not_run = f"; not run: {', '.join(common['skipped_checks'])}" if common.get("skipped_checks") else ""
            return Verdict("live", f"model score {score:.3f} ≥ {threshold:.3f} ({used}){not_run}", score=score,
                           **common)
        return Verdict("attack", f"model score {score:.3f} < {threshold:.3f}", score=score, **common)

    def open_session(self, tracker: Optional[SessionTracker] = None, *, allow_recorded: bool = False) -> "StreamSession":
        """A session for one stream of framesets (one camera): its face track, freshness guard and
        session decisions. Sessions share nothing but this detector's (read-only) models.

        Args:
            tracker: the session tracker (default: a new one with ``config.temporal``).
            allow_recorded: let framesets that are not from a live camera (recordings, image
                folders, the synthetic camera) reach a live session: for demos and tests only.
        """
        if tracker is None:
            tracker = SessionTracker(self.config.temporal, allow_recorded)
        return StreamSession(self, tracker)

    def stream(self, framesets: Iterable[FrameSet], tracker: Optional[SessionTracker] = None, *,
               allow_recorded: bool = False) -> Iterator[StreamResult]:
        """Verdict per frameset plus the session decision of the current face, in a new session.

        Beyond ``check``: every stream's timestamps and frame numbers must move forward and no
        stream may repeat its pixels (a frozen or replayed feed is "unreliable"). A real-time
        source (``is_realtime``, e.g. a RealSense camera) is read on a background thread and only
        its newest frameset is scored, so a slow engine skips frames (``StreamResult.skipped``)
        instead of falling behind; its next frameset is aligned while the engine scores the current
        one (``DetectorConfig.pipeline_realtime``). Recordings and lists are scored frame by frame.

        Args:
            framesets: a source from ``open_source`` or any iterable of FrameSets.
            tracker: the session tracker (default: a new one with ``config.temporal``).
            allow_recorded: let framesets that are not from a live camera (recordings, image
                folders, the synthetic camera) reach a live session: for demos and tests only.

        Yields:
            StreamResult per scored frameset; open the door where ``result.session.opened``.
        """
        from .sensors.latest import LatestOnly

        session = self.open_session(tracker, allow_recorded=allow_recorded)
        if not getattr(framesets, "is_realtime", False):
            yield from session.run((frameset, 0) for frameset in framesets)
            return
        latest = LatestOnly(framesets)
        try:
            yield from session.run(((frameset, latest.skipped_before) for frameset in latest),
                                   pipelined=self.config.pipeline_realtime)
        finally:
            latest.close()


def _is_blank(image: np.ndarray) -> bool:
    """Every pixel the same value. No sensor delivers that on a scene: a dead IR sensor gives zeros,
    which the IR presence check would read as a screen (an attack) instead of a fault. A sparse
    sample decides a live frame in a fraction of the full pass: about a hundred pixels first (eight
    rows: a new frame is not in the cache yet, and each row sampled costs its memory reads), then
    every 64th, then all of them."""
    first = image.flat[0]
    if (image[::61, ::67] != first).any() or (image[::8, ::8] != first).any():
        return False
    return bool(image.min() == image.max())


class _Clock:
    """Per-stage wall time into a timings dict: each lap is the time since the previous one."""

    def __init__(self, timings: Dict[str, float]) -> None:
        self.timings, self.last = timings, time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = (now - self.last) * 1000.0
        self.last = now
