"""Write FrameSets to a RealSense recording (.db3, ROS2 bag) that PlaybackSource and the RealSense Viewer read.

The frames go through an `rs.software_device` with an `rs.recorder` attached, so the file holds real
RealSense streams: depth z16, colour rgb8 and infrared y8/y16, each with its intrinsics, the depth
units and the depth→colour extrinsics. Colour that is already on the depth grid is written with the
depth intrinsics and identity extrinsics, so playback recognises it as registered and leaves it alone.
Each frame carries its frameset's index as frame metadata, so playback pairs the streams back into
the recorded framesets.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple, Union

import numpy as np

from ..errors import SourceError, require
from ..frames import Extrinsics, FrameSet, Intrinsics

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
RECORDER_SUFFIXES = (".db3",)
RECORDER_NAME = "mmdg-edge recorder"
# Every frame carries the index of its frameset in this frame-metadata field (an
# rs.frame_metadata_value name), so playback rebuilds the recorded framesets exactly, whatever their
# timestamps (a D435's colour and depth of one frameset can be over half a frame period apart).
FRAMESET_INDEX_METADATA = "frame_counter"
_DEFAULT_FPS = 30
# FrameSet name → (librealsense stream name, stream index, sensor that owns it).
_STREAMS = {"depth": ("depth", 0, "Stereo Module"), "ir": ("infrared", 1, "Stereo Module"),
            "rgb": ("color", 0, "RGB Camera")}


@dataclass(frozen=True)
class _Layout:
    """What the first frameset fixes for the whole file: streams, sizes, dtypes, calibration."""

    shapes: Dict[str, Tuple[int, ...]]
    dtypes: Dict[str, np.dtype]
    intrinsics: Dict[str, Intrinsics]
    depth_to_color: Extrinsics
    depth_scale_m: float
    serial: str


def _layout(first: FrameSet) -> _Layout:
    images = {name: getattr(first, name) for name in _STREAMS if getattr(first, name) is not None}
    if not images:
        raise ValueError("record: the first frameset holds no rgb, depth or ir image")
    intrinsics = {}
    for name, image in images.items():
        intr = first.intrinsics.get(name)
        if intr is None and name == "ir":
            intr = first.intrinsics.get("depth")  # IR comes from the depth sensor, registered to it
        if intr is None and name == "rgb" and first.color_aligned_to_depth:
            intr = first.intrinsics.get("depth")
        if intr is None:
            raise ValueError(f"record: FrameSet.intrinsics[{name!r}]: expected Intrinsics for the {name} stream, "
                             "got none")
        if (intr.height, intr.width) != image.shape[:2]:
            raise ValueError(f"record: FrameSet.intrinsics[{name!r}] is {intr.width}x{intr.height} but the {name} "
                             f"image is {image.shape[1]}x{image.shape[0]}")
        intrinsics[name] = intr
    depth_to_color = first.depth_to_color or Extrinsics()
    if "rgb" in images and "depth" in images and first.color_aligned_to_depth:
        # Registered colour is, geometrically, a second view from the depth camera.
        intrinsics["rgb"] = intrinsics["depth"]
        depth_to_color = Extrinsics()
    return _Layout({n: i.shape for n, i in images.items()}, {n: i.dtype for n, i in images.items()},
                   intrinsics, depth_to_color, float(first.depth_scale_m), first.serial or "mmdg-edge-recorder")


def _check_matches(frameset: FrameSet, layout: _Layout, index: int) -> None:
    for name in _STREAMS:
        image = getattr(frameset, name)
        if (image is None) != (name not in layout.shapes):
            expected = "present" if name in layout.shapes else "absent"
            raise ValueError(f"record: frameset {index}: FrameSet.{name}: expected {expected} as in the first "
                             f"frameset, got {'absent' if image is None else 'present'}")
        if image is not None and (image.shape != layout.shapes[name] or image.dtype != layout.dtypes[name]):
            raise ValueError(f"record: frameset {index}: FrameSet.{name}: expected {layout.shapes[name]} "
                             f"{layout.dtypes[name]} as in the first frameset, got {image.shape} {image.dtype}")
    if not np.isclose(frameset.depth_scale_m, layout.depth_scale_m):
        raise ValueError(f"record: frameset {index}: FrameSet.depth_scale_m: expected {layout.depth_scale_m} as in "
                         f"the first frameset, got {frameset.depth_scale_m}")


def _rs_intrinsics(rs: Any, intr: Intrinsics) -> Any:
    out = rs.intrinsics()
    out.width, out.height = int(intr.width), int(intr.height)
    out.fx, out.fy, out.ppx, out.ppy = float(intr.fx), float(intr.fy), float(intr.ppx), float(intr.ppy)
    model = intr.model if hasattr(rs.distortion, intr.model) else "none"
    out.model = getattr(rs.distortion, model)
    out.coeffs = [float(c) for c in (tuple(intr.coeffs) + (0.0,) * 5)[:5]]
    return out


def _rs_extrinsics(rs: Any, ext: Extrinsics) -> Any:
    out = rs.extrinsics()
    # librealsense stores the rotation column-major; ours is row-major.
    out.rotation = np.asarray(ext.rotation, np.float64).reshape(3, 3).T.ravel().tolist()
    out.translation = [float(t) for t in ext.translation]
    return out


def _format(rs: Any, name: str, dtype: np.dtype) -> Tuple[Any, int]:
    if name == "depth":
        return rs.format.z16, 2
    if name == "rgb":
        return rs.format.rgb8, 3
    return (rs.format.y16, 2) if dtype == np.uint16 else (rs.format.y8, 1)


class _SoftwareCamera:
    """A software device shaped like a D4xx (stereo module: depth + IR, RGB camera) with a recorder on it."""

    def __init__(self, rs: Any, path: Path, layout: _Layout) -> None:
        self._rs = rs
        self._device = rs.software_device()
        self._device.register_info(rs.camera_info.name, RECORDER_NAME)
        self._device.register_info(rs.camera_info.serial_number, layout.serial)
        sensors: Dict[str, Any] = {}
        self.profiles: Dict[str, Any] = {}
        self.sensor_of: Dict[str, Any] = {}
        for uid, (name, (stream, index, sensor_name)) in enumerate(_STREAMS.items()):
            if name not in layout.shapes:
                continue
            if sensor_name not in sensors:
                sensors[sensor_name] = self._device.add_sensor(sensor_name)
            fmt, bpp = _format(rs, name, layout.dtypes[name])
            spec = rs.video_stream()
            spec.type, spec.index, spec.uid = getattr(rs.stream, stream), index, uid
            spec.width, spec.height, spec.fps = layout.shapes[name][1], layout.shapes[name][0], _DEFAULT_FPS
            spec.bpp, spec.fmt, spec.intrinsics = bpp, fmt, _rs_intrinsics(rs, layout.intrinsics[name])
            self.profiles[name] = sensors[sensor_name].add_video_stream(spec)
            self.sensor_of[name] = sensors[sensor_name]
        if "depth" in self.profiles:
            self.sensor_of["depth"].add_read_only_option(rs.option.depth_units, layout.depth_scale_m)
            if "rgb" in self.profiles:
                self.profiles["depth"].register_extrinsics_to(self.profiles["rgb"],
                                                              _rs_extrinsics(rs, layout.depth_to_color))
            if "ir" in self.profiles:
                self.profiles["depth"].register_extrinsics_to(self.profiles["ir"], _rs_extrinsics(rs, Extrinsics()))
        self._sensors = list(sensors.values())
        self._recorder = rs.recorder(str(path), self._device)
        # The recorder needs a consumer of the frames; a syncer is the lightest that takes every stream.
        self._syncer = rs.syncer()
        for sensor in self._sensors:
            sensor.open([p for n, p in self.profiles.items() if self.sensor_of[n] is sensor])
            sensor.start(self._syncer)

    def write(self, frameset: FrameSet, index: int) -> None:
        rs = self._rs
        for sensor in self._sensors:
            sensor.set_metadata(getattr(rs.frame_metadata_value, FRAMESET_INDEX_METADATA), index)
        for name, profile in self.profiles.items():
            image = np.ascontiguousarray(getattr(frameset, name))
            frame = rs.software_video_frame()
            frame.pixels = image
            frame.bpp = image.itemsize * (image.shape[2] if image.ndim == 3 else 1)
            frame.stride = image.shape[1] * frame.bpp
            frame.timestamp = float(frameset.timestamps_ms.get(name, index * 1000.0 / _DEFAULT_FPS))
            frame.domain = rs.timestamp_domain.hardware_clock
            frame.frame_number = int(frameset.frame_numbers.get(name, index))
            frame.profile = profile.as_video_stream_profile()
            self.sensor_of[name].on_video_frame(frame)

    def close(self) -> None:
        for sensor in self._sensors:
            sensor.stop()
            sensor.close()
        # Dropping the recorder is what finishes and closes the file.
        self._recorder = None
        self._sensors, self._syncer, self._device = [], None, None


def record(framesets: Iterable[FrameSet], path: PathLike, frames: Optional[int] = None) -> int:
    """Write framesets to a RealSense ``.db3`` recording.

    The first frameset fixes the streams, image sizes, intrinsics, depth scale and serial; every
    later one must match it. Frame numbers and timestamps are kept (missing ones become the index
    and ``index / 30 s``).

    Args:
        framesets: the framesets to write, e.g. an open source.
        path: the ``.db3`` file to create (overwritten if it exists); its folder must exist.
        frames: stop after this many framesets (None: until ``framesets`` ends).

    Returns:
        The number of framesets written.

    Raises:
        ValueError: a bad path suffix or ``frames``, no frameset, or a frameset unlike the first.
        SourceError: the folder is missing or librealsense cannot write the file.

    Example:
        >>> from mmdg_edge.sensors import open_source
        >>> with open_source("synthetic", num_frames=10) as source:  # doctest: +SKIP
        ...     record(source, "scene.db3")
        10
    """
    path = Path(path)
    if path.suffix.lower() not in RECORDER_SUFFIXES:
        raise ValueError(f"record: path: expected a file ending in {', '.join(RECORDER_SUFFIXES)}, got {str(path)!r}")
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1):
        raise ValueError(f"record: frames: expected None or an int >= 1, got {frames!r}")
    if not path.parent.is_dir():
        raise SourceError(f"{path}: cannot record, the folder {path.parent} does not exist")
    iterator = iter(framesets)
    first = next(iterator, None)
    if first is None:
        raise ValueError("record: framesets: expected at least one FrameSet, got none")
    if not isinstance(first, FrameSet):
        raise TypeError(f"record: framesets: expected FrameSet items, got {type(first).__name__}")
    layout = _layout(first)
    rs = require("pyrealsense2", "realsense")
    try:
        camera = _SoftwareCamera(rs, path, layout)
    except RuntimeError as exc:
        raise SourceError(f"{path}: librealsense cannot record here ({exc})") from exc
    written = 0
    try:
        frameset: Any = first
        while frameset is not None:
            if not isinstance(frameset, FrameSet):
                raise TypeError(f"record: framesets: expected FrameSet items, got {type(frameset).__name__}")
            _check_matches(frameset, layout, written)
            camera.write(frameset, written)
            written += 1
            if frames is not None and written >= frames:
                break
            frameset = next(iterator, None)
    except RuntimeError as exc:
        raise SourceError(f"{path}: writing frameset {written} failed ({exc})") from exc
    finally:
        camera.close()
    logger.info("recorded %d framesets to %s", written, path)
    return written
