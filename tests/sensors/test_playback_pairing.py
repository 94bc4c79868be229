"""How PlaybackSource pairs the streams of a recording into framesets: by timestamp for recordings
of other tools (a lost frame, a skewed frame), by frameset index for recordings of our recorder."""
import numpy as np
import pytest

from mmdg_edge.frames import FrameSet, Intrinsics
from mmdg_edge.sensors.playback import PlaybackSource
from mmdg_edge.sensors.recorder import record

H, W = 6, 8
INTR = Intrinsics(W, H, 5.0, 5.0, 4.0, 3.0)


def _write_foreign_recording(path, stamps, fps=10):
    """A depth + colour .db3 written straight through rs.software_device + rs.recorder, as another tool
    would: no frameset index in the frames. Frame k of a stream has number k and every pixel = k."""
    rs = pytest.importorskip("pyrealsense2", reason="pyrealsense2 writes the recording")
    device = rs.software_device()
    device.register_info(rs.camera_info.name, "Another Tool Camera")
    specs = {"depth": (rs.stream.depth, rs.format.z16, 2, "Stereo Module"),
             "color": (rs.stream.color, rs.format.rgb8, 3, "RGB Camera")}
    sensors, profiles = {}, {}
    for uid, (name, (stream, fmt, bpp, sensor_name)) in enumerate(specs.items()):
        sensors[name] = device.add_sensor(sensor_name)
        spec = rs.video_stream()
        spec.type, spec.index, spec.uid, spec.width, spec.height, spec.fps = stream, 0, uid, W, H, fps
        spec.bpp, spec.fmt = bpp, fmt
        spec.intrinsics = rs.intrinsics()
        spec.intrinsics.width, spec.intrinsics.height = W, H
        spec.intrinsics.fx = spec.intrinsics.fy = 5.0
        spec.intrinsics.ppx, spec.intrinsics.ppy = 4.0, 3.0
        profiles[name] = sensors[name].add_video_stream(spec)
    sensors["depth"].add_read_only_option(rs.option.depth_units, 0.001)
    identity = rs.extrinsics()
    identity.rotation, identity.translation = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], [0.0, 0.0, 0.0]
    profiles["depth"].register_extrinsics_to(profiles["color"], identity)
    recorder = rs.recorder(str(path), device)
    syncer = rs.syncer()
    for name, sensor in sensors.items():
        sensor.open(profiles[name])
        sensor.start(syncer)
    frames = sorted((stamp, name, number) for name, times in stamps.items() for number, stamp in enumerate(times))
    for stamp, name, number in frames:
        image = np.full((H, W, 3) if name == "color" else (H, W), number, np.uint8 if name == "color" else np.uint16)
        frame = rs.software_video_frame()
        frame.pixels, frame.bpp = image, image.itemsize * (3 if name == "color" else 1)
        frame.stride = W * frame.bpp
        frame.timestamp, frame.domain, frame.frame_number = stamp, rs.timestamp_domain.hardware_clock, number
        frame.profile = profiles[name].as_video_stream_profile()
        sensors[name].on_video_frame(frame)
    for sensor in sensors.values():
        sensor.stop()
        sensor.close()
    del recorder  # finishes the file


def _pairs(path, **options):
    with PlaybackSource(path, **options) as source:
        framesets = list(source)
        stats = dict(source.stats)
    return [(fs.frame_numbers["depth"], fs.frame_numbers["rgb"]) for fs in framesets], stats


def test_a_lost_colour_frame_costs_one_depth_frame_not_the_pairing_of_the_rest(tmp_path):
    path = tmp_path / "lost.db3"
    # 10 fps; colour frame 1 (at 100 ms) was never recorded
    _write_foreign_recording(path, {"depth": [0.0, 100.0, 200.0, 300.0], "color": [0.0, 200.0, 300.0]})
    pairs, stats = _pairs(path)
    assert pairs == [(0, 0), (2, 1), (3, 2)]
    assert stats == {"framesets": 3, "dropped_skew": 0, "unpaired_frames": 1}


def test_a_skewed_frame_is_paired_within_the_default_limit_and_dropped_beyond_max_skew_ms(tmp_path):
    path = tmp_path / "skewed.db3"
    _write_foreign_recording(path, {"depth": [0.0, 100.0, 200.0], "color": [0.0, 130.0, 200.0]})
    pairs, stats = _pairs(path)  # one frame period (100 ms) by default
    assert pairs == [(0, 0), (1, 1), (2, 2)] and stats["dropped_skew"] == 0
    pairs, stats = _pairs(path, max_skew_ms=20.0)
    # depth 1 (100 ms) and colour 1 (130 ms) are nearest to each other, but 30 ms apart
    assert pairs == [(0, 0), (2, 2)]
    assert stats == {"framesets": 2, "dropped_skew": 1, "unpaired_frames": 1}


def test_our_recordings_come_back_as_recorded_whatever_their_timestamps(tmp_path, rng):
    # colour 50 ms (1.5 frame periods at 30 fps) after depth: timestamp pairing would pair colour k
    # with depth k + 1 or drop it; the frameset index written by the recorder keeps them together
    originals = [FrameSet(rgb=np.full((H, W, 3), k, np.uint8), depth=np.full((H, W), k, np.uint16),
                          intrinsics={"rgb": INTR, "depth": INTR}, color_aligned_to_depth=True,
                          timestamps_ms={"depth": 1000.0 + 33.3 * k, "rgb": 1050.0 + 33.3 * k},
                          frame_numbers={"depth": 10 + k, "rgb": 20 + k}) for k in range(6)]
    path = tmp_path / "ours.db3"
    record(originals, path)
    pairs, stats = _pairs(path)
    assert pairs == [(10 + k, 20 + k) for k in range(6)]
    assert stats == {"framesets": 6, "dropped_skew": 0, "unpaired_frames": 0}
