"""Playback of RealSense recordings (.bag ROS1, .db3 ROS2) through pyrealsense2.

Frames are read from the recording's sensors directly, not through `rs.pipeline`, whose syncer
drops the first frameset of a file. Playback is not real-time (deterministic: every recorded frame
is delivered, however slow the consumer). A frameset is emitted once every stream of the file has
delivered a new frame; colour is then resampled onto the depth viewpoint.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

import numpy as np

from ..errors import FrameTimeout, SourceError, require
from ..frames import Extrinsics, FrameSet, Intrinsics
from .registration import align_color_to_depth, is_registered

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
RECORDING_SUFFIXES = (".bag", ".db3")
_STREAM_NAMES = {"depth": "depth", "color": "rgb", "infrared": "ir"}


def _intrinsics(profile: Any) -> Intrinsics:
    intr = profile.as_video_stream_profile().get_intrinsics()
    return Intrinsics(intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy, str(intr.model).split(".")[-1],
                      tuple(float(c) for c in intr.coeffs))


def _extrinsics(source_profile: Any, target_profile: Any) -> Extrinsics:
    ext = source_profile.get_extrinsics_to(target_profile)
    # librealsense stores the rotation column-major; ours is row-major.
    rotation = np.asarray(ext.rotation, np.float64).reshape(3, 3).T
    return Extrinsics(tuple(rotation.ravel().tolist()), tuple(float(t) for t in ext.translation))


def _pixels(frame: Any, stream: str) -> np.ndarray:
    """Copy the pixels out now: held librealsense frames starve its frame pool."""
    data = np.asanyarray(frame.get_data())
    if stream == "color" and data.ndim == 3 and str(frame.get_profile().format()).endswith("bgr8"):
        data = data[..., ::-1]
    return np.array(data, copy=True)


class PlaybackSource:
    """Iterate the framesets of a recording. Use as a context manager.

    Args:
        path: a ``.bag`` or ``.db3`` RealSense recording.
        align: resample colour onto the depth viewpoint when both streams exist.
        timeout_ms: how long to wait for the next frame before deciding the file has ended.

    Raises:
        SourceError: missing file, directory, empty, truncated, corrupt or non-RealSense file.
    """

    is_live = False

    def __init__(self, path: PathLike, align: bool = True, timeout_ms: int = 200, max_stall_ms: int = 20000) -> None:
        self.path = Path(path)
        self.align = align
        self.timeout_ms = timeout_ms
        self.max_stall_ms = max_stall_ms
        self.stats = {"framesets": 0, "incomplete_dropped": 0}
        self._device = None
        self._sensors: list = []
        self._syncer = None

    def __enter__(self) -> "PlaybackSource":
        self.open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def open(self) -> None:
        if self.path.is_symlink() and not self.path.exists():
            raise SourceError(f"{self.path}: a symbolic link that leads to no file (dangling, or a loop)")
        if not self.path.exists():
            raise SourceError(f"{self.path}: no such recording")
        if not self.path.is_file():
            raise SourceError(f"{self.path}: is not a file")
        if self.path.stat().st_size == 0:
            raise SourceError(f"{self.path}: the recording is empty")
        rs = require("pyrealsense2", "realsense")
        try:
            self._device = rs.context().load_device(str(self.path))
            self._playback = self._device.as_playback()
            self._playback.set_real_time(False)
            # Paused until every sensor is started: otherwise the first sensor's start plays the file
            # and the frames of a sensor started a moment later are lost.
            self._playback.pause()
            self._sensors = list(self._device.query_sensors())
            self._syncer = rs.syncer()
            self._profiles: Dict[str, Any] = {}
            for sensor in self._sensors:
                profiles = [p for p in sensor.get_stream_profiles()
                            if p.stream_name().split(" ")[0].lower() in _STREAM_NAMES and p.stream_index() <= 1]
                if not profiles:
                    continue
                for profile in profiles:
                    self._profiles.setdefault(profile.stream_name().split(" ")[0].lower(), profile)
                sensor.open(profiles)
                sensor.start(self._syncer)
            self._playback.resume()
        except RuntimeError as exc:
            self.close()
            raise SourceError(f"{self.path}: not a readable RealSense recording ({exc})") from exc
        if not self._profiles:
            self.close()
            raise SourceError(f"{self.path}: the recording holds no depth, colour or infrared stream")
        self._depth_scale = 0.001
        for sensor in self._sensors:
            if sensor.is_depth_sensor():
                self._depth_scale = float(sensor.as_depth_sensor().get_depth_scale())
        self._serial = self._device.get_info(rs.camera_info.serial_number) if self._device.supports(
            rs.camera_info.serial_number) else ""
        self._firmware = self._device.get_info(rs.camera_info.firmware_version) if self._device.supports(
            rs.camera_info.firmware_version) else ""
        self._intrinsics = {_STREAM_NAMES[s]: _intrinsics(p) for s, p in self._profiles.items()}
        self._depth_to_color = (_extrinsics(self._profiles["depth"], self._profiles["color"])
                                if {"depth", "color"} <= set(self._profiles) else None)

    def close(self) -> None:
        """Stop playback, also midway through the file.

        Non-real-time playback blocks while the syncer's queue is full, and a sensor's stop() waits
        for that blocked reader: the sensors are stopped on a helper thread while this one keeps
        draining the syncer, so stopping early never deadlocks.
        """
        stopped = threading.Event()

        def stop_sensors() -> None:
            for sensor in self._sensors:
                try:
                    sensor.stop()
                    sensor.close()
                except RuntimeError:  # a sensor that never started cannot be stopped; nothing to release
                    logger.debug("sensor of %s was not streaming", self.path)
            stopped.set()

        if self._sensors:
            threading.Thread(target=stop_sensors, name="mmdg-edge-playback-stop", daemon=True).start()
            deadline = time.monotonic() + 10.0
            while not stopped.is_set() and time.monotonic() < deadline:
                if self._syncer is not None:
                    self._syncer.try_wait_for_frames(10)
                else:
                    stopped.wait(0.01)
            if not stopped.is_set():
                logger.error("%s: playback did not stop within 10 s; leaving its thread behind", self.path)
        self._sensors, self._device, self._syncer = [], None, None

    def __iter__(self) -> Iterator[FrameSet]:
        if self._syncer is None:
            self.open()
        rs = require("pyrealsense2", "realsense")
        pending: Dict[str, tuple] = {}
        stalled_ms, draining = 0, False
        while True:
            ok, frames = self._syncer.try_wait_for_frames(self.timeout_ms)
            if not ok:
                # A wait that times out is the end only once playback says so (on a loaded machine the
                # first frames can take longer than one wait), and after one more wait that drains
                # frames the syncer still holds.
                if draining:
                    break
                if self._playback.current_status() == rs.playback_status.stopped:
                    draining = True
                    continue
                stalled_ms += self.timeout_ms
                if stalled_ms >= self.max_stall_ms:
                    raise FrameTimeout(f"{self.path}: playback delivered no frame for {stalled_ms} ms")
                continue
            stalled_ms = 0
            for frame in frames:
                stream = frame.get_profile().stream_name().split(" ")[0].lower()
                if stream in self._profiles:
                    pending[stream] = (_pixels(frame, stream), frame.get_frame_number(), frame.get_timestamp())
            if set(pending) == set(self._profiles):
                yield self._frameset(pending)
                pending = {}
        if pending:
            self.stats["incomplete_dropped"] += 1

    def _frameset(self, frames: Dict[str, tuple]) -> FrameSet:
        images = {_STREAM_NAMES[s]: f[0] for s, f in frames.items()}
        aligned = False
        if self.align and "rgb" in images and "depth" in images:
            if not is_registered(self._intrinsics["depth"], self._intrinsics["rgb"], self._depth_to_color):
                images["rgb"] = align_color_to_depth(images["rgb"], images["depth"], self._depth_scale,
                                                     self._intrinsics["depth"], self._intrinsics["rgb"],
                                                     self._depth_to_color)
            aligned = True
        self.stats["framesets"] += 1
        return FrameSet(
            rgb=images.get("rgb"), depth=images.get("depth"), ir=images.get("ir"), depth_scale_m=self._depth_scale,
            timestamps_ms={_STREAM_NAMES[s]: float(f[2]) for s, f in frames.items()},
            frame_numbers={_STREAM_NAMES[s]: int(f[1]) for s, f in frames.items()},
            intrinsics=dict(self._intrinsics), depth_to_color=self._depth_to_color, color_aligned_to_depth=aligned,
            serial=self._serial, metadata={"source": str(self.path), "firmware": self._firmware},
        )
