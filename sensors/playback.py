"""Playback of RealSense recordings (.bag ROS1, .db3 ROS2) through pyrealsense2.

Each stream of the file is read through a playback device of its own, not through `rs.pipeline`
(whose syncer drops the first frameset of a file) nor through one device for all streams: starting
the first sensor of a playback device plays the file at once (``pause()`` does nothing on a freshly
loaded device), so the frames of a sensor started a moment later were lost (colour, in 5 % of opens
of the bundled D435 recording and 75–90 % when another thread kept the CPU busy).

Playback is not real-time (deterministic: every recorded frame is delivered, however slow the
consumer). The streams' frames are paired into framesets: by the frameset index our recorder writes
into every frame, else by timestamp (see ``PlaybackSource``). Colour is then resampled onto the
depth viewpoint.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, NamedTuple, Optional, Union

import numpy as np

from ..errors import FrameTimeout, SourceError, require
from ..frames import MAX_PIXELS, Extrinsics, FrameSet, Intrinsics, check_pixel_count
from .recorder import FRAMESET_INDEX_METADATA, RECORDER_NAME
from .registration import align_color_to_depth, is_registered

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
_STREAM_NAMES = {"depth": "depth", "color": "rgb", "infrared": "ir"}
# Frames decoded ahead per stream: enough to smooth out decoding jitter, small enough to bound memory
# (four 640×480 colour frames are 3.7 MB); playback waits while the queue is full.
_QUEUE_FRAMES = 4
_POLL_S = 0.02


def _intrinsics(profile: Any) -> Intrinsics:
    intr = profile.as_video_stream_profile().get_intrinsics()
    return Intrinsics(intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy, str(intr.model).split(".")[-1],
                      tuple(float(c) for c in intr.coeffs))


def _extrinsics(source_profile: Any, target_profile: Any) -> Extrinsics:
    ext = source_profile.get_extrinsics_to(target_profile)
    # librealsense stores the rotation column-major; ours is row-major.
    rotation = np.asarray(ext.rotation, np.float64).reshape(3, 3).T
    return Extrinsics(tuple(rotation.ravel().tolist()), tuple(float(t) for t in ext.translation))


def _pixels(frame: Any, stream: str, max_pixels: int) -> np.ndarray:
    """Copy the pixels out now: held librealsense frames starve its frame pool.

    pyrealsense2 shapes the array from the stream's declared size, not from the buffer it holds: a
    recording that declares a larger image than its frames carry would have the copy read past the
    buffer (other heap memory, or a crash). The declared size is checked against the limit and the
    buffer's actual size first.
    """
    video = frame.as_video_frame()
    width, height, bpp, stride = (video.get_width(), video.get_height(), video.get_bytes_per_pixel(),
                                  video.get_stride_in_bytes())
    try:
        check_pixel_count(width, height, max_pixels, f"{stream} frame {frame.get_frame_number()}")
    except ValueError as exc:
        raise SourceError(str(exc)) from exc
    if bpp < 1 or stride < width * bpp or frame.get_data_size() < stride * height:
        raise SourceError(f"{stream} frame {frame.get_frame_number()}: declares {width}×{height} at {bpp} bytes per "
                          f"pixel (row stride {stride}), {stride * height} bytes, but holds {frame.get_data_size()}")
    data = np.asanyarray(frame.get_data())
    if stream == "color" and data.ndim == 3 and str(frame.get_profile().format()).endswith("bgr8"):
        data = data[..., ::-1]
    return np.array(data, copy=True)


def _stream_profiles(device: Any) -> Dict[str, Any]:
    """librealsense stream name ("depth", "color", "infrared") → the first recorded profile of it."""
    profiles: Dict[str, Any] = {}
    for sensor in device.query_sensors():
        for profile in sensor.get_stream_profiles():
            stream = profile.stream_name().split(" ")[0].lower()
            if stream in _STREAM_NAMES and profile.stream_index() <= 1:
                profiles.setdefault(stream, (sensor, profile))
    return profiles


class _Frame(NamedTuple):
    pixels: np.ndarray
    number: int
    timestamp_ms: float
    frameset_index: Optional[int]  # written by our recorder; None in other recordings


def _spread_ms(frames: Iterable[_Frame]) -> float:
    stamps = [frame.timestamp_ms for frame in frames]
    return max(stamps) - min(stamps)


class _StreamReader:
    """One stream of a recording, played by a playback device that plays nothing else.

    Frames reach ``_on_frame`` on a librealsense thread and wait in a bounded ``queue.Queue``; while
    it is full the callback waits, and non-real-time playback waits for the callback, so the file is
    read at the consumer's pace without losing a frame. ``queue.Queue.put`` releases the GIL while it
    waits; an ``rs.frame_queue`` cannot be used here: pyrealsense2 2.59 calls it through Python, and
    its blocking enqueue of playback frames holds the GIL, so a full queue froze every thread.

    The end of the stream is the playback's "stopped" report, which comes after every frame callback
    has returned (polling the status cannot tell a device that has not started yet from one that has
    finished).
    """

    def __init__(self, rs: Any, device: Any, stream: str, path: Path, tagged: bool, max_stall_ms: int,
                 max_pixels: int) -> None:
        self.stream = stream
        self._rs, self._path, self._max_stall_ms, self._max_pixels = rs, path, max_stall_ms, max_pixels
        self._playback = device.as_playback()
        self._playback.set_real_time(False)
        self._sensor, self.profile = _stream_profiles(device)[stream]
        self._index_key = getattr(rs.frame_metadata_value, FRAMESET_INDEX_METADATA) if tagged else None
        self._queue: "queue.Queue[_Frame]" = queue.Queue(_QUEUE_FRAMES)
        self._closing, self._finished = threading.Event(), threading.Event()
        self._error: Optional[Exception] = None
        self._ended = self._streaming = False
        self._ahead: Optional[_Frame] = None
        self._playback.set_status_changed_callback(self._on_status)
        self._sensor.open(self.profile)

    def start(self) -> None:
        self._sensor.start(self._on_frame)
        self._streaming = True

    def _on_status(self, status: Any) -> None:
        if status == self._rs.playback_status.stopped:
            self._finished.set()

    def _on_frame(self, frame: Any) -> None:
        try:
            index = None
            if self._index_key is not None and frame.supports_frame_metadata(self._index_key):
                index = int(frame.get_frame_metadata(self._index_key))
            item = _Frame(_pixels(frame, self.stream, self._max_pixels), int(frame.get_frame_number()), float(frame.get_timestamp()),
                          index)
        except Exception as exc:  # a librealsense thread: handed to the consumer, raised there
            self._error = exc
            return
        # Once closing, nobody reads the queue: a frame that waited for room would hold up sensor.stop().
        while not self._closing.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def peek(self) -> Optional[_Frame]:
        """The next frame without taking it; None once the stream has ended."""
        if self._ahead is None and not self._ended:
            self._ahead = self._wait()
            self._ended = self._ahead is None
        return self._ahead

    def take(self) -> Optional[_Frame]:
        """The next frame; None once the stream has ended."""
        frame, self._ahead = self.peek(), None
        return frame

    def _wait(self) -> Optional[_Frame]:
        deadline = time.monotonic() + self._max_stall_ms / 1000.0
        while True:
            if self._error is not None:
                raise SourceError(f"{self._path}: reading its {self.stream} stream failed ({self._error})") \
                    from self._error
            finished = self._finished.is_set()  # before the queue: once finished, the queue holds the rest
            try:
                return self._queue.get(block=not finished, timeout=_POLL_S)
            except queue.Empty:
                if finished:
                    return None
                if time.monotonic() > deadline:
                    raise FrameTimeout(f"{self._path}: playback delivered no {self.stream} frame for "
                                       f"{self._max_stall_ms} ms") from None

    def stop(self) -> None:
        """Stop and close the sensor, also midway through the file (safe to call twice)."""
        self._closing.set()
        if self._streaming:
            self._streaming = False
            self._sensor.stop()
            # Released before it reports "stopped", the device would report it from its destructor,
            # which runs holding the GIL that the report's Python callback waits for: a deadlock.
            if not self._finished.wait(10.0):
                logger.warning("%s: the %s playback did not report stopping within 10 s", self._path, self.stream)
        if self._sensor is not None:
            self._sensor.close()
            self._sensor = None


class PlaybackSource:
    """Iterate the framesets of a recording. Use as a context manager.

    Framesets are rebuilt from a frame of each stream. Recordings made by ``sensors/recorder.py``
    carry each frame's frameset index and come back exactly as recorded. Other recordings are paired
    by timestamp: the earliest frame of a candidate set is dropped when the next frame of its stream
    is closer to the others (a stream that lost a frame, or runs at a lower rate), and counted in
    ``stats["unpaired_frames"]``; a set whose timestamps still spread wider than ``max_skew_ms`` is
    dropped (its earliest frame) and counted in ``stats["dropped_skew"]``, as RealSenseSource does.

    Args:
        path: a ``.bag`` or ``.db3`` RealSense recording.
        align: resample colour onto the depth viewpoint when both streams exist.
        max_skew_ms: widest timestamp spread of a frameset paired by timestamp. None: one frame period
            of the slowest stream, at least 1 ms. Not half a period as for a live camera: unsynchronised
            sensors can leave the file with frames further apart (the bundled D435 recording holds one
            colour frame 101.6 ms before its depth frame, at 6 fps), and pairing prefers the nearest
            frame anyway.
        max_stall_ms: how long to wait for a stream's next frame, while playback has not reported the
            stream's end, before ``FrameTimeout``.
        max_pixels: the most pixels a stream's frame may have, checked on the declared stream sizes
            when the file opens and on every frame before its pixels are copied.

    Attributes:
        is_realtime: False; a recording is read at the consumer's pace.
        skew_limit_ms: the skew limit in force, once open.
        stats: ``framesets``, ``dropped_skew`` and ``unpaired_frames`` (frames left out because a nearer
            frame of their stream was paired instead, or left over when another stream ended first).

    Raises:
        SourceError: missing file, directory, empty, truncated, corrupt or non-RealSense file, or one
            whose streams or frames are larger than ``max_pixels`` or than the data they hold, or
            whose depth units are not a scale in (0, 1) metres.
    """

    is_realtime = False

    def __init__(self, path: PathLike, align: bool = True, max_skew_ms: Optional[float] = None,
                 max_stall_ms: int = 20000, max_pixels: int = MAX_PIXELS) -> None:
        self._readers: Dict[str, _StreamReader] = {}
        if max_skew_ms is not None and not max_skew_ms >= 0:
            raise ValueError(f"PlaybackSource.max_skew_ms: expected None or ≥ 0 ms, got {max_skew_ms!r}")
        if isinstance(max_stall_ms, bool) or not isinstance(max_stall_ms, int) or max_stall_ms <= 0:
            raise ValueError(f"PlaybackSource.max_stall_ms: expected a positive int, got {max_stall_ms!r}")
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
            raise ValueError(f"PlaybackSource.max_pixels: expected a positive int, got {max_pixels!r}")
        self.path = Path(path)
        self.align = align
        self.max_skew_ms = max_skew_ms
        self.max_stall_ms = max_stall_ms
        self.max_pixels = max_pixels
        self.stats = {"framesets": 0, "dropped_skew": 0, "unpaired_frames": 0}
        self.skew_limit_ms: Optional[float] = None

    def __enter__(self) -> "PlaybackSource":
        self.open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # A source dropped without close() would keep playing into Python callbacks (librealsense holds
        # them, so the streams outlive it) until the interpreter exits, when they crash it.
        self.close()

    def _check_file(self) -> None:
        if self.path.is_symlink() and not self.path.exists():
            raise SourceError(f"{self.path}: a symbolic link that leads to no file (dangling, or a loop)")
        if not self.path.exists():
            raise SourceError(f"{self.path}: no such recording")
        if not self.path.is_file():
            raise SourceError(f"{self.path}: is not a file")
        if self.path.stat().st_size == 0:
            raise SourceError(f"{self.path}: the recording is empty")

    def open(self) -> None:
        """Load the file once per stream and start every stream from the beginning (SourceError when it cannot)."""
        self.close()
        self._check_file()
        rs = require("pyrealsense2", "realsense")
        try:
            first = rs.context().load_device(str(self.path))
            profiles = {stream: profile for stream, (_, profile) in _stream_profiles(first).items()}
            if not profiles:
                raise SourceError(f"{self.path}: the recording holds no depth, colour or infrared stream")
            tagged = first.supports(rs.camera_info.name) and first.get_info(rs.camera_info.name) == RECORDER_NAME
            for stream in profiles:
                device = first if not self._readers else rs.context().load_device(str(self.path))
                self._readers[stream] = _StreamReader(rs, device, stream, self.path, tagged, self.max_stall_ms,
                                                      self.max_pixels)
            self._read_calibration(rs, first, profiles)
            for reader in self._readers.values():
                reader.start()
        except SourceError:
            self.close()
            raise
        except (RuntimeError, ValueError) as exc:  # librealsense's refusals; impossible intrinsics
            self.close()
            raise SourceError(f"{self.path}: not a readable RealSense recording ({exc})") from exc

    def _read_calibration(self, rs: Any, device: Any, profiles: Dict[str, Any]) -> None:
        """Depth scale, identity, intrinsics, extrinsics (profiles of one device) and the skew limit."""
        self._depth_scale = 0.001
        for sensor in device.query_sensors():
            if sensor.is_depth_sensor():
                self._depth_scale = float(sensor.as_depth_sensor().get_depth_scale())
        if not (math.isfinite(self._depth_scale) and 0.0 < self._depth_scale < 1.0):
            raise SourceError(f"{self.path}: its depth units (Depth_Units) are {self._depth_scale!r} m, expected a "
                              "scale in (0, 1) metres")
        for stream, profile in profiles.items():
            video = profile.as_video_stream_profile()
            try:
                check_pixel_count(video.width(), video.height(), self.max_pixels, f"{self.path}: its {stream} stream")
            except ValueError as exc:
                raise SourceError(str(exc)) from exc
        self._serial, self._firmware = (device.get_info(key) if device.supports(key) else ""
                                        for key in (rs.camera_info.serial_number, rs.camera_info.firmware_version))
        self._intrinsics = {_STREAM_NAMES[s]: _intrinsics(p) for s, p in profiles.items()}
        self._depth_to_color = (_extrinsics(profiles["depth"], profiles["color"])
                                if {"depth", "color"} <= set(profiles) else None)
        slowest_fps = min(p.fps() for p in profiles.values())
        period_ms = 1000.0 / slowest_fps if slowest_fps > 0 else math.inf
        self.skew_limit_ms = float(self.max_skew_ms) if self.max_skew_ms is not None else max(period_ms, 1.0)

    def close(self) -> None:
        """Stop playback, also midway through the file (safe to call twice)."""
        readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            reader.stop()

    def __iter__(self) -> Iterator[FrameSet]:
        if not self._readers:
            self.open()
        heads: Dict[str, _Frame] = {}
        while True:
            for stream, reader in self._readers.items():
                if stream not in heads:
                    frame = reader.take()
                    if frame is None:
                        self._count_leftovers(heads)
                        return
                    heads[stream] = frame
            stale = self._stale_stream(heads)
            if stale is not None:
                del heads[stale]
                self.stats["unpaired_frames"] += 1
                continue
            tagged = all(frame.frameset_index is not None for frame in heads.values())
            skew = _spread_ms(heads.values())
            if not tagged and skew > self.skew_limit_ms:
                earliest = min(heads, key=lambda s: heads[s].timestamp_ms)
                logger.debug("%s: dropped a frameset whose timestamps spread %.1f ms > %.1f ms", self.path, skew,
                             self.skew_limit_ms)
                del heads[earliest]
                self.stats["dropped_skew"] += 1
                continue
            yield self._frameset(heads)
            heads = {}

    def _stale_stream(self, heads: Dict[str, _Frame]) -> Optional[str]:
        """The stream whose head frame belongs to no frameset with the other heads, or None."""
        indices = {frame.frameset_index for frame in heads.values()}
        if None not in indices:
            return None if len(indices) == 1 else min(heads, key=lambda s: heads[s].frameset_index)
        spread = _spread_ms(heads.values())
        if spread == 0:
            return None
        earliest = min(heads, key=lambda s: heads[s].timestamp_ms)
        following = self._readers[earliest].peek()
        if following is None:
            return None
        others = [frame for stream, frame in heads.items() if stream != earliest]
        return earliest if _spread_ms([following, *others]) < spread else None

    def _count_leftovers(self, heads: Dict[str, _Frame]) -> None:
        """Count what the other streams still hold once one has ended (read to the end of the file)."""
        self.stats["unpaired_frames"] += len(heads)
        for reader in self._readers.values():
            while reader.take() is not None:
                self.stats["unpaired_frames"] += 1

    def _frameset(self, frames: Dict[str, _Frame]) -> FrameSet:
        images = {_STREAM_NAMES[s]: f.pixels for s, f in frames.items()}
        aligned = False
        if self.align and "rgb" in images and "depth" in images:
            if not is_registered(self._intrinsics["depth"], self._intrinsics["rgb"], self._depth_to_color):
                images["rgb"] = align_color_to_depth(images["rgb"], images["depth"], self._depth_scale,
                                                     self._intrinsics["depth"], self._intrinsics["rgb"],
                                                     self._depth_to_color)
            aligned = True
        try:
            frameset = FrameSet(
                rgb=images.get("rgb"), depth=images.get("depth"), ir=images.get("ir"), depth_scale_m=self._depth_scale,
                timestamps_ms={_STREAM_NAMES[s]: f.timestamp_ms for s, f in frames.items()},
                frame_numbers={_STREAM_NAMES[s]: f.number for s, f in frames.items()},
                intrinsics=dict(self._intrinsics), depth_to_color=self._depth_to_color, color_aligned_to_depth=aligned,
                serial=self._serial, origin="recording",
                metadata={"source": str(self.path), "firmware": self._firmware},
            )
        except ValueError as exc:
            raise SourceError(f"{self.path}: frameset {self.stats['framesets']} is not valid ({exc})") from exc
        self.stats["framesets"] += 1
        return frameset
