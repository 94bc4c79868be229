"""Live RealSense D4xx capture: depth z16 + left IR y8 + colour rgb8, colour aligned to depth.

Shaped like pyrealsense2's align-depth2color example inside a context manager: the requested
profiles checked against what the camera offers, one explicit enable_stream per stream, depth
scale / intrinsics / extrinsics read once, ``rs.align`` built once outside the frame loop, the
pipeline stopped on exit.

Run-time faults, none of which hangs the caller:
- no frameset within ``timeout_ms`` while the camera is still connected: ``FrameTimeout``, also
  when frames keep coming but none completes a frameset (all skewed, or no emitter-off frame);
- the camera unplugged (it leaves the device list, or librealsense raises): the pipeline is
  restarted with exponential backoff until ``reconnect_timeout_s`` has passed, then
  ``DeviceDisconnected``;
- streams whose timestamps differ by more than ``max_skew_ms``: the frameset is dropped and
  counted in ``stats``.

Emitter modes: "on" (dotted IR, best depth), "off" (clean IR, depth from texture only) and
"interleaved": the camera switches its projector on and off every frame (``emitter_on_off``) and
each FrameSet combines the depth and colour of the latest emitter-on frame with the IR of the
following emitter-off frame, so the model sees dotted depth and clean IR (at half the frame rate).
Telling the two apart needs the frames' emitter metadata: a camera whose frames carry none (firmware
older than 5.12, or a Linux kernel without the RealSense metadata patch) is refused at its first
frameset.

Every FrameSet has origin "camera" and ``received_s``, the host's ``time.monotonic()`` when the
pipeline handed it over (for an interleaved one, when its emitter-on half arrived).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..errors import DeviceDisconnected, FrameTimeout, SourceError, require
from ..frames import FrameSet
from .playback import _extrinsics, _intrinsics

logger = logging.getLogger(__name__)

EMITTER_MODES = ("on", "off", "interleaved")
# FrameSet name → (librealsense stream, stream index, format name)
_STREAMS = {"depth": ("depth", 0, "z16"), "ir": ("infrared", 1, "y8"), "rgb": ("color", 0, "rgb8")}


@dataclass(frozen=True)
class RealSenseConfig:
    """Stream settings (the defaults every D4xx supports), timeouts and reconnect policy.

    Attributes:
        width, height, fps: the profile of all three streams.
        emitter: "on", "off" or "interleaved" (see the module docstring).
        timeout_ms: longest wait for one frameset before ``FrameTimeout``.
        max_skew_ms: framesets whose stream timestamps spread wider are dropped (None: half a
            frame period; one more frame period in interleaved mode, whose IR is a frame later).
        reconnect_timeout_s: how long to keep trying to reopen an unplugged camera.
        backoff_s: first and longest wait between reconnect attempts (doubling in between).
    """

    width: int = 640
    height: int = 480
    fps: int = 30
    emitter: str = "on"
    timeout_ms: int = 2000
    max_skew_ms: Optional[float] = None
    reconnect_timeout_s: float = 30.0
    backoff_s: Tuple[float, float] = (0.5, 4.0)

    def __post_init__(self) -> None:
        if self.emitter not in EMITTER_MODES:
            raise ValueError(f"RealSenseConfig.emitter: expected one of {EMITTER_MODES}, got {self.emitter!r}")
        for name in ("width", "height", "fps", "timeout_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"RealSenseConfig.{name}: expected a positive int, got {value!r}")
        if self.max_skew_ms is not None and not self.max_skew_ms >= 0:
            raise ValueError(f"RealSenseConfig.max_skew_ms: expected None or ≥ 0 ms, got {self.max_skew_ms!r}")
        if not self.reconnect_timeout_s >= 0:
            raise ValueError(f"RealSenseConfig.reconnect_timeout_s: expected ≥ 0 s, got {self.reconnect_timeout_s!r}")
        if len(self.backoff_s) != 2 or not 0 < self.backoff_s[0] <= self.backoff_s[1]:
            raise ValueError(f"RealSenseConfig.backoff_s: expected (first, longest) with 0 < first ≤ longest, "
                             f"got {self.backoff_s!r}")

    @property
    def skew_limit_ms(self) -> float:
        """The timestamp spread above which a frameset is dropped."""
        if self.max_skew_ms is not None:
            return float(self.max_skew_ms)
        period = 1000.0 / self.fps
        return period / 2 + (period if self.emitter == "interleaved" else 0.0)


def _serial_of(rs: Any, device: Any) -> str:
    return device.get_info(rs.camera_info.serial_number)


def _find_device(rs: Any, serial: Optional[str]) -> Optional[Any]:
    """The connected device with ``serial`` (or the first one), None when there is none."""
    for device in rs.context().query_devices():
        if serial is None or _serial_of(rs, device) == serial:
            return device
    return None


def _offered_profiles(rs: Any, device: Any) -> Dict[str, List[Tuple[int, int, int]]]:
    """(width, height, fps) per FrameSet stream the device offers in the format the SDK reads."""
    offered: Dict[str, List[Tuple[int, int, int]]] = {name: [] for name in _STREAMS}
    for sensor in device.query_sensors():
        for profile in sensor.get_stream_profiles():
            for name, (stream, index, fmt) in _STREAMS.items():
                if (profile.stream_type() == getattr(rs.stream, stream) and profile.format() == getattr(rs.format, fmt)
                        and (stream != "infrared" or profile.stream_index() == index)):
                    video = profile.as_video_stream_profile()
                    offered[name].append((video.width(), video.height(), profile.fps()))
    return {name: sorted(set(modes)) for name, modes in offered.items()}


def check_profiles(rs: Any, device: Any, config: RealSenseConfig) -> None:
    """Raise SourceError naming what the camera offers when it lacks the requested profile."""
    wanted = (config.width, config.height, config.fps)
    offered = _offered_profiles(rs, device)
    missing = [name for name, modes in offered.items() if wanted not in modes]
    if missing:
        lines = [f"{name} ({_STREAMS[name][2]}): " + (", ".join(f"{w}x{h}@{f}" for w, h, f in offered[name]) or "none")
                 for name in missing]
        raise SourceError(f"camera {_serial_of(rs, device)} cannot stream {config.width}x{config.height}@{config.fps} "
                          f"for {', '.join(missing)}; it offers " + "; ".join(lines))


class RealSenseSource:
    """Framesets from a connected camera (the first one, or the one with ``serial``).

    Attributes:
        is_realtime: True; framesets come at the camera's pace (read them through LatestOnly when the
            consumer is slower).
        stats: counters since open: ``delivered``, ``dropped_skew``, ``reconnects``.

    Example:
        >>> with RealSenseSource(config=RealSenseConfig(emitter="interleaved")) as camera:  # doctest: +SKIP
        ...     frameset = next(iter(camera))
    """

    is_realtime = True

    def __init__(self, serial: Optional[str] = None, config: RealSenseConfig = RealSenseConfig()) -> None:
        self.serial = serial
        self.config = config
        self.stats = {"delivered": 0, "dropped_skew": 0, "reconnects": 0}
        # FrameSet.stream_epoch: bumped when the camera is reopened or its frame counter starts again,
        # so a stream session follows the new counters instead of denying until the old maximum is passed.
        self._epoch = 0
        self._last_number: Optional[int] = None
        self._pipeline: Any = None
        self._rs: Any = None

    def __enter__(self) -> "RealSenseSource":
        self.open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def open(self) -> None:
        """Find the camera, check its profiles, start the pipeline (SourceError when it cannot)."""
        rs = self._rs = require("pyrealsense2", "realsense")
        device = _find_device(rs, self.serial)
        if device is None:
            raise SourceError(f"no RealSense camera{' with serial ' + self.serial if self.serial else ''} is connected;"
                              " run `mmdg-edge doctor`")
        check_profiles(rs, device, self.config)
        self._start(rs, _serial_of(rs, device))

    def _start(self, rs: Any, serial: str) -> None:
        c = self.config
        rs_config = rs.config()
        rs_config.enable_device(serial)
        for stream, index, fmt in _STREAMS.values():
            if stream == "infrared":
                rs_config.enable_stream(rs.stream.infrared, index, c.width, c.height, rs.format.y8, c.fps)
            else:
                rs_config.enable_stream(getattr(rs.stream, stream), c.width, c.height, getattr(rs.format, fmt), c.fps)
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(rs_config)
        except RuntimeError as exc:
            raise SourceError(f"cannot start RealSense camera {serial} ({exc})") from exc
        self._pipeline = pipeline
        self._serial = serial
        device = profile.get_device()
        depth_sensor = device.first_depth_sensor()
        self._set_emitter(rs, depth_sensor)
        self._depth_scale = float(depth_sensor.get_depth_scale())
        self._firmware = device.get_info(rs.camera_info.firmware_version)
        streams = {name: profile.get_stream(kind) for name, kind in
                   (("depth", rs.stream.depth), ("ir", rs.stream.infrared), ("rgb", rs.stream.color))}
        self._intrinsics = {name: _intrinsics(p) for name, p in streams.items()}
        # Colour is resampled onto the depth grid: after alignment it has the depth intrinsics.
        self._intrinsics["rgb"] = self._intrinsics["depth"]
        self._depth_to_color = _extrinsics(streams["depth"], streams["rgb"])
        self._align = rs.align(rs.stream.depth)
        # interleaved: the last emitter-on frame's depth and colour, and its arrival time
        self._pending: Optional[Tuple[Dict[str, Any], float]] = None

    def _set_emitter(self, rs: Any, depth_sensor: Any) -> None:
        mode = self.config.emitter
        if mode == "interleaved":
            if not depth_sensor.supports(rs.option.emitter_on_off):
                self.close()
                raise SourceError(f"camera {self._serial} has no emitter_on_off option (interleaved needs a D4xx "
                                  "with firmware 5.12+); use emitter 'on' or 'off'")
            depth_sensor.set_option(rs.option.emitter_enabled, 1.0)
            depth_sensor.set_option(rs.option.emitter_on_off, 1.0)
        elif depth_sensor.supports(rs.option.emitter_enabled):
            if depth_sensor.supports(rs.option.emitter_on_off):
                depth_sensor.set_option(rs.option.emitter_on_off, 0.0)
            depth_sensor.set_option(rs.option.emitter_enabled, 1.0 if mode == "on" else 0.0)

    def close(self) -> None:
        """Stop the pipeline (safe to call twice)."""
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError as exc:  # already gone with an unplugged camera
                logger.debug("pipeline stop: %s", exc)
            self._pipeline = None

    def __iter__(self) -> Iterator[FrameSet]:
        if self._pipeline is None:
            self.open()
        timeout_s = self.config.timeout_ms / 1000.0
        deadline = time.monotonic() + timeout_s
        while True:
            reconnects = self.stats["reconnects"]
            frames, received_s = self._wait()
            if self.stats["reconnects"] != reconnects:  # a reopened camera starts a new wait
                deadline = time.monotonic() + timeout_s
            split = self._split(frames, received_s)
            if split is None or self._skewed(split[0]):
                if time.monotonic() > deadline:
                    raise FrameTimeout(f"no complete frameset from camera {self._serial} within "
                                       f"{self.config.timeout_ms} ms (emitter {self.config.emitter!r}; "
                                       f"{self.stats['dropped_skew']} dropped for timestamp skew so far)")
                continue
            self.stats["delivered"] += 1
            yield self._frameset(*split)
            deadline = time.monotonic() + timeout_s

    def _skewed(self, parts: Dict[str, Any]) -> bool:
        """Count and report a frameset whose stream timestamps spread too wide (checked before copying pixels)."""
        stamps = [p["timestamp"] if isinstance(p, dict) else float(p.get_timestamp()) for p in parts.values()]
        skew = max(stamps) - min(stamps)
        if skew <= self.config.skew_limit_ms:
            return False
        self.stats["dropped_skew"] += 1
        logger.debug("dropped a frameset whose timestamps spread %.1f ms > %.1f ms", skew, self.config.skew_limit_ms)
        return True

    def _wait(self) -> Tuple[Any, float]:
        """The next frameset from the pipeline and its host arrival time, reconnecting through an unplug."""
        while True:
            try:
                ok, frames = self._pipeline.try_wait_for_frames(self.config.timeout_ms)
            except RuntimeError as exc:
                logger.warning("camera %s: %s", self._serial, exc)
                ok, frames = False, None
            if ok:
                return frames, time.monotonic()
            if _find_device(self._rs, self._serial) is not None:
                raise FrameTimeout(f"no frameset from camera {self._serial} within {self.config.timeout_ms} ms "
                                   "(the camera is still connected)")
            self._reconnect()

    def _reconnect(self) -> None:
        """Reopen the camera with exponential backoff, or raise DeviceDisconnected."""
        self.close()
        deadline = time.monotonic() + self.config.reconnect_timeout_s
        delay, longest = self.config.backoff_s
        attempts = 0
        while True:
            attempts += 1
            if _find_device(self._rs, self._serial) is not None:
                try:
                    self._start(self._rs, self._serial)
                except SourceError as exc:
                    logger.warning("camera %s: reconnect attempt %d failed (%s)", self._serial, attempts, exc)
                else:
                    self.stats["reconnects"] += 1
                    self._epoch, self._last_number = self._epoch + 1, None
                    logger.warning("camera %s reconnected after %d attempts", self._serial, attempts)
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceDisconnected(f"camera {self._serial} was disconnected and did not come back within "
                                         f"{self.config.reconnect_timeout_s:g} s ({attempts} attempts)")
            time.sleep(min(delay, remaining))
            delay = min(2 * delay, longest)

    def _split(self, frames: Any, received_s: float) -> Optional[Tuple[Dict[str, Any], float]]:
        """The depth, colour and IR frames to combine into one FrameSet and its arrival time (None: wait for more).

        An interleaved frameset is as old as its emitter-on half, which arrived a frame earlier.
        """
        aligned = self._align.process(frames)
        depth, color, ir = aligned.get_depth_frame(), aligned.get_color_frame(), aligned.get_infrared_frame(1)
        if not (depth and color and ir):
            logger.debug("camera %s delivered an incomplete frameset", self._serial)
            return None
        if self.config.emitter != "interleaved":
            return {"depth": depth, "rgb": color, "ir": ir}, received_s
        emitter_on = _emitter_on(self._rs, depth)
        if emitter_on is None:
            raise SourceError(f"camera {self._serial} (firmware {self._firmware}) sends no emitter metadata with "
                              "its frames, so interleaved mode cannot tell dotted frames from clean ones; update "
                              "the firmware (5.12+; on Linux also the RealSense metadata kernel patch), or use "
                              "emitter 'on' or 'off'")
        if emitter_on:
            # Keep this frame's depth and colour; its IR shows the projector's dots.
            self._pending = {"depth": _copy_frame(depth), "rgb": _copy_frame(color)}, received_s
            return None
        if self._pending is None:
            return None
        (parts, pending_received_s), self._pending = self._pending, None
        return {**parts, "ir": _copy_frame(ir)}, pending_received_s

    def _frameset(self, parts: Dict[str, Any], received_s: float) -> FrameSet:
        frames = {name: _copy_frame(frame) for name, frame in parts.items()}
        number = frames["depth"]["number"]
        if self._last_number is not None and number <= self._last_number:
            self._epoch += 1
            logger.warning("camera %s: frame counter restarted (%d after %d): a new stream epoch", self._serial,
                           number, self._last_number)
        self._last_number = number
        return FrameSet(
            rgb=frames["rgb"]["data"], depth=frames["depth"]["data"], ir=frames["ir"]["data"],
            depth_scale_m=self._depth_scale,
            timestamps_ms={name: f["timestamp"] for name, f in frames.items()},
            frame_numbers={name: f["number"] for name, f in frames.items()},
            intrinsics=dict(self._intrinsics), depth_to_color=self._depth_to_color, color_aligned_to_depth=True,
            serial=self._serial, origin="camera", received_s=received_s,
            metadata={"source": "realsense", "firmware": self._firmware, "emitter": self.config.emitter},
            stream_epoch=self._epoch,
        )


def _copy_frame(frame: Any) -> Dict[str, Any]:
    """Pixels, timestamp and number out of a librealsense frame (held frames starve its pool)."""
    if isinstance(frame, dict):
        return frame
    return {"data": np.array(np.asanyarray(frame.get_data()), copy=True), "timestamp": float(frame.get_timestamp()),
            "number": int(frame.get_frame_number())}


def _emitter_on(rs: Any, frame: Any) -> Optional[bool]:
    """Whether the projector lit this frame, from frame metadata; None when the frame carries none."""
    for key in (rs.frame_metadata_value.frame_emitter_mode, rs.frame_metadata_value.frame_laser_power_mode):
        if frame.supports_frame_metadata(key):
            return frame.get_frame_metadata(key) != 0
    return None
