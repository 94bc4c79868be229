"""A fake ``pyrealsense2`` at the boundary RealSenseSource uses, for paths only hardware exercises.

``FakeCamera`` scripts what a D4xx does, one event per ``try_wait_for_frames``:
- ``Frame(number, emitter=True, skew_ms=0)``: a frameset; every pixel of depth and IR holds the frame
  number, so a test can tell which frames a FrameSet combines;
- ``TIMEOUT``: nothing within the timeout, camera still connected;
- ``Unplug(queries)``: librealsense raises, and the camera is missing from the next ``queries``
  device-list queries (``None``: for good).
After the last event the camera delivers nothing (a timeout while connected), unless ``repeat`` is
set: then the events play again, for ever, as a streaming camera does.
``has_metadata=False`` makes frames carry no metadata (firmware or kernel without it).
``camera.module()`` is the fake module to put in ``sys.modules["pyrealsense2"]``.
"""
from __future__ import annotations

import time
import types
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

SERIAL, FIRMWARE = "123456789012", "5.16.0.1"
WIDTH, HEIGHT = 64, 48


@dataclass(frozen=True)
class Frame:
    number: int
    emitter: bool = True
    skew_ms: float = 0.0  # colour timestamp offset


@dataclass(frozen=True)
class Unplug:
    queries: Optional[int]


TIMEOUT = "timeout"


class _Profile:
    def __init__(self, stream: str, index: int, fmt: str, size: Tuple[int, int, int]) -> None:
        self._stream, self._index, self._fmt = stream, index, fmt
        self._w, self._h, self._fps = size

    def stream_type(self) -> str:
        return self._stream

    def stream_index(self) -> int:
        return self._index

    def format(self) -> str:
        return self._fmt

    def fps(self) -> int:
        return self._fps

    def width(self) -> int:
        return self._w

    def height(self) -> int:
        return self._h

    def as_video_stream_profile(self) -> "_Profile":
        return self

    def get_intrinsics(self) -> Any:
        f = 60.0 if self._stream == "color" else 50.0
        return types.SimpleNamespace(width=self._w, height=self._h, fx=f, fy=f, ppx=self._w / 2, ppy=self._h / 2,
                                     model="distortion.brown_conrady", coeffs=[0.0] * 5)

    def get_extrinsics_to(self, other: "_Profile") -> Any:
        return types.SimpleNamespace(rotation=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], translation=[0.015, 0.0, 0.0])


class _Sensor:
    def __init__(self, camera: "FakeCamera", profiles: List[_Profile], depth: bool) -> None:
        self._camera, self._profiles, self._depth = camera, profiles, depth

    def get_stream_profiles(self) -> List[_Profile]:
        return self._profiles

    def supports(self, option: str) -> bool:
        return self._depth and (option != "emitter_on_off" or self._camera.has_on_off)

    def set_option(self, option: str, value: float) -> None:
        self._camera.options[option] = value

    def get_depth_scale(self) -> float:
        return 0.001


class _Device:
    def __init__(self, camera: "FakeCamera") -> None:
        modes = camera.modes
        self._depth = _Sensor(camera, [_Profile("depth", 0, "z16", m) for m in modes]
                              + [_Profile("infrared", i, "y8", m) for i in (1, 2) for m in modes], depth=True)
        self._color = _Sensor(camera, [_Profile("color", 0, f, m) for f in ("rgb8", "bgr8") for m in modes],
                              depth=False)

    def get_info(self, key: str) -> str:
        return {"serial_number": SERIAL, "firmware_version": FIRMWARE}[key]

    def query_sensors(self) -> List[_Sensor]:
        return [self._depth, self._color]

    def first_depth_sensor(self) -> _Sensor:
        return self._depth


class _Frame:
    def __init__(self, data: np.ndarray, timestamp: float, number: int, emitter: bool, metadata: bool) -> None:
        self._data, self._timestamp, self._number, self._emitter = data, timestamp, number, emitter
        self._metadata = metadata

    def __bool__(self) -> bool:
        return True

    def get_data(self) -> np.ndarray:
        return self._data

    def get_timestamp(self) -> float:
        return self._timestamp

    def get_frame_number(self) -> int:
        return self._number

    def supports_frame_metadata(self, key: str) -> bool:
        return self._metadata and key == "frame_emitter_mode"

    def get_frame_metadata(self, key: str) -> int:
        return int(self._emitter)


class _Frames:
    def __init__(self, event: Frame, size: Tuple[int, int, int], metadata: bool) -> None:
        w, h, fps = size
        stamp = event.number * 1000.0 / fps
        # The frame number at pixel (0, 0), a one-unit checkerboard around it: a sensor's frame is never
        # one value throughout (the detector refuses such a stream as blank), yet depth stays flat.
        value = event.number + np.indices((h, w)).sum(axis=0) % 2
        self.depth = _Frame(value.astype(np.uint16), stamp, event.number, event.emitter, metadata)
        self.ir = _Frame((value % 256).astype(np.uint8), stamp, event.number, event.emitter, metadata)
        self.color = _Frame(np.repeat((value % 256).astype(np.uint8)[:, :, None], 3, axis=2), stamp + event.skew_ms,
                            event.number, event.emitter, metadata)

    def get_depth_frame(self) -> _Frame:
        return self.depth

    def get_color_frame(self) -> _Frame:
        return self.color

    def get_infrared_frame(self, index: int) -> _Frame:
        return self.ir


@dataclass
class FakeCamera:
    """The scripted camera and what the SDK did to it (``options``, ``starts``, ``stops``)."""

    events: List[Any]
    period_s: float = 0.0  # time each frame takes to arrive (0: at once)
    modes: Tuple[Tuple[int, int, int], ...] = ((WIDTH, HEIGHT, 30), (WIDTH, HEIGHT, 15))
    has_on_off: bool = True
    has_metadata: bool = True
    repeat: bool = False
    options: Dict[str, float] = field(default_factory=dict)
    starts: int = 0
    stops: int = 0
    enabled: List[Tuple[Any, ...]] = field(default_factory=list)
    _absent: Optional[int] = 0  # device-list queries left during which the camera is unplugged
    _size: Tuple[int, int, int] = (WIDTH, HEIGHT, 30)

    def present(self) -> bool:
        if self._absent is None:
            return False
        if self._absent > 0:
            self._absent -= 1
            return False
        return True

    def module(self) -> types.ModuleType:
        camera = self
        rs = types.ModuleType("pyrealsense2")
        rs.stream = types.SimpleNamespace(depth="depth", infrared="infrared", color="color")
        rs.format = types.SimpleNamespace(z16="z16", y8="y8", rgb8="rgb8")
        rs.option = types.SimpleNamespace(emitter_enabled="emitter_enabled", emitter_on_off="emitter_on_off")
        rs.camera_info = types.SimpleNamespace(serial_number="serial_number", firmware_version="firmware_version")
        rs.frame_metadata_value = types.SimpleNamespace(frame_emitter_mode="frame_emitter_mode",
                                                        frame_laser_power_mode="frame_laser_power_mode")

        class context:
            def query_devices(self) -> List[_Device]:
                return [_Device(camera)] if camera.present() else []

        class config:
            def enable_device(self, serial: str) -> None:
                camera.enabled.append(("device", serial))

            def enable_stream(self, *args: Any) -> None:
                camera.enabled.append(args)
                camera._size = args[-4], args[-3], args[-1]  # (..., width, height, format, fps)

        class pipeline:
            def start(self, cfg: config) -> Any:
                if camera._absent != 0:
                    raise RuntimeError("No device connected")
                camera.starts += 1
                device = _Device(camera)
                streams = {"depth": _Profile("depth", 0, "z16", camera._size),
                           "infrared": _Profile("infrared", 1, "y8", camera._size),
                           "color": _Profile("color", 0, "rgb8", camera._size)}
                return types.SimpleNamespace(get_device=lambda: device, get_stream=lambda kind: streams[kind])

            def try_wait_for_frames(self, timeout_ms: int) -> Tuple[bool, Any]:
                if not camera.events:
                    return False, None
                event = camera.events.pop(0)
                if camera.repeat:
                    camera.events.append(event)
                if isinstance(event, Frame):
                    time.sleep(camera.period_s)
                    return True, _Frames(event, camera._size, camera.has_metadata)
                if isinstance(event, Unplug):
                    camera._absent = event.queries
                    raise RuntimeError("Frame didn't arrive within 5000")
                return False, None

            def stop(self) -> None:
                camera.stops += 1

        class align:
            def __init__(self, stream: str) -> None:
                pass

            def process(self, frames: _Frames) -> _Frames:
                return frames

        rs.context, rs.config, rs.pipeline, rs.align = context, config, pipeline, align
        return rs
