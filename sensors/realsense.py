"""Live RealSense D4xx capture: depth z16 + left IR y8 + colour rgb8, colour aligned to depth.

Shaped like pyrealsense2's align-depth2color example inside a context manager: one explicit
enable_stream per stream, depth scale / intrinsics / extrinsics read once, `rs.align` built once
outside the frame loop, the pipeline stopped on exit. A frame timeout raises FrameTimeout.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np

from ..errors import FrameTimeout, SourceError, require
from ..frames import FrameSet
from .playback import _extrinsics, _intrinsics

logger = logging.getLogger(__name__)

EMITTER_MODES = ("on", "off")


@dataclass(frozen=True)
class RealSenseConfig:
    """Stream settings (the defaults every D4xx supports) and the frame timeout."""

    width: int = 640
    height: int = 480
    fps: int = 30
    emitter: str = "on"
    timeout_ms: int = 2000

    def __post_init__(self) -> None:
        if self.emitter not in EMITTER_MODES:
            raise ValueError(f"RealSenseConfig.emitter: expected one of {EMITTER_MODES}, got {self.emitter!r}")


class RealSenseSource:
    """Framesets from a connected camera (the first one, or the one with ``serial``)."""

    is_live = True

    def __init__(self, serial: Optional[str] = None, config: RealSenseConfig = RealSenseConfig()) -> None:
        self.serial = serial
        self.config = config
        self._pipeline: Any = None

    def __enter__(self) -> "RealSenseSource":
        self.open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def open(self) -> None:
        rs = require("pyrealsense2", "realsense")
        c = self.config
        rs_config = rs.config()
        if self.serial:
            rs_config.enable_device(self.serial)
        rs_config.enable_stream(rs.stream.depth, c.width, c.height, rs.format.z16, c.fps)
        rs_config.enable_stream(rs.stream.infrared, 1, c.width, c.height, rs.format.y8, c.fps)
        rs_config.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, c.fps)
        self._pipeline = rs.pipeline()
        if not rs_config.can_resolve(self._pipeline):
            raise SourceError(
                f"no connected RealSense camera{' ' + self.serial if self.serial else ''} supports depth z16 + "
                f"infrared y8 + colour rgb8 at {c.width}x{c.height}@{c.fps}; run `mmdg-edge doctor`"
            )
        try:
            profile = self._pipeline.start(rs_config)
        except RuntimeError as exc:
            raise SourceError(f"cannot start the RealSense camera ({exc})") from exc
        device = profile.get_device()
        depth_sensor = device.first_depth_sensor()
        if depth_sensor.supports(rs.option.emitter_enabled):
            depth_sensor.set_option(rs.option.emitter_enabled, 1.0 if c.emitter == "on" else 0.0)
        self._depth_scale = float(depth_sensor.get_depth_scale())
        self._serial = device.get_info(rs.camera_info.serial_number)
        self._firmware = device.get_info(rs.camera_info.firmware_version)
        streams = {name: profile.get_stream(kind) for name, kind in
                   (("depth", rs.stream.depth), ("ir", rs.stream.infrared), ("rgb", rs.stream.color))}
        self._intrinsics = {name: _intrinsics(p) for name, p in streams.items()}
        self._depth_to_color = _extrinsics(streams["depth"], streams["rgb"])
        self._align = rs.align(rs.stream.depth)
        self._rs = rs

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None

    def __iter__(self) -> Iterator[FrameSet]:
        if self._pipeline is None:
            self.open()
        while True:
            ok, frames = self._pipeline.try_wait_for_frames(self.config.timeout_ms)
            if not ok:
                raise FrameTimeout(f"no frameset from camera {self._serial} within {self.config.timeout_ms} ms")
            aligned = self._align.process(frames)
            depth, color, ir = aligned.get_depth_frame(), aligned.get_color_frame(), aligned.get_infrared_frame(1)
            if not (depth and color and ir):
                raise FrameTimeout(f"camera {self._serial} delivered an incomplete frameset")
            yield FrameSet(
                rgb=np.array(np.asanyarray(color.get_data()), copy=True),
                depth=np.array(np.asanyarray(depth.get_data()), copy=True),
                ir=np.array(np.asanyarray(ir.get_data()), copy=True),
                depth_scale_m=self._depth_scale,
                timestamps_ms={"depth": depth.get_timestamp(), "rgb": color.get_timestamp(), "ir": ir.get_timestamp()},
                frame_numbers={"depth": depth.get_frame_number(), "rgb": color.get_frame_number(),
                               "ir": ir.get_frame_number()},
                intrinsics=dict(self._intrinsics), depth_to_color=self._depth_to_color, color_aligned_to_depth=True,
                serial=self._serial, metadata={"source": "realsense", "firmware": self._firmware},
            )
