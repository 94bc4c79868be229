"""Recorder round trips through PlaybackSource, refusals of bad input, and the `record` CLI command."""
import numpy as np
import pytest
from click.testing import CliRunner

from mmdg_edge.cli import main
from mmdg_edge.errors import SourceError
from mmdg_edge.frames import Extrinsics, FrameSet, Intrinsics
from mmdg_edge.sensors import open_source
from mmdg_edge.sensors.recorder import record
from mmdg_edge.sensors.registration import align_color_to_depth

H, W = 48, 64
INTR = Intrinsics(W, H, 50.0, 51.0, 31.5, 23.5)


def _framesets(rng, count, first_number=100, ir_dtype=np.uint8):
    out = []
    for k in range(count):
        number = first_number + k
        out.append(FrameSet(
            rgb=rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
            depth=rng.integers(1, 5000, (H, W), dtype=np.uint16),
            ir=rng.integers(0, np.iinfo(ir_dtype).max, (H, W), dtype=ir_dtype),
            depth_scale_m=0.00025,
            timestamps_ms={n: 5000.0 + 33.0 * k for n in ("rgb", "depth", "ir")},
            frame_numbers={n: number for n in ("rgb", "depth", "ir")},
            intrinsics={n: INTR for n in ("rgb", "depth", "ir")}, depth_to_color=Extrinsics(),
            color_aligned_to_depth=True, serial="RECTEST01",
        ))
    return out


def test_five_registered_framesets_round_trip_pixel_exact(tmp_path, rng):
    originals = _framesets(rng, 5)
    path = tmp_path / "five.db3"
    assert record(originals, path) == 5
    with open_source(str(path)) as source:
        played = list(source)
    assert len(played) == 5
    for original, copy in zip(originals, played):
        np.testing.assert_array_equal(copy.depth, original.depth)
        np.testing.assert_array_equal(copy.ir, original.ir)
        np.testing.assert_array_equal(copy.rgb, original.rgb)  # registered colour is not resampled
        assert copy.frame_numbers == original.frame_numbers
        assert copy.timestamps_ms == pytest.approx(original.timestamps_ms)
    first = played[0]
    assert first.color_aligned_to_depth and first.serial == "RECTEST01"
    assert all(fs.origin == "recording" and fs.received_s is None for fs in played)
    assert first.depth_scale_m == pytest.approx(0.00025)
    depth = first.intrinsics["depth"]
    assert (depth.width, depth.height, depth.fx, depth.fy, depth.ppx, depth.ppy) == pytest.approx(
        (64, 48, 50.0, 51.0, 31.5, 23.5))
    assert first.depth_to_color.translation == pytest.approx((0.0, 0.0, 0.0))


def test_frames_limit_and_y16_infrared(tmp_path, rng):
    originals = _framesets(rng, 4, ir_dtype=np.uint16)
    path = tmp_path / "two.db3"
    assert record(iter(originals), path, frames=2) == 2
    with open_source(str(path)) as source:
        played = list(source)
    assert [fs.frame_numbers["depth"] for fs in played] == [100, 101]
    assert played[1].ir.dtype == np.uint16
    np.testing.assert_array_equal(played[1].ir, originals[1].ir)


def test_depth_only_recording_has_no_colour_or_infrared(tmp_path, rng):
    depth = rng.integers(0, 3000, (H, W), dtype=np.uint16)
    path = tmp_path / "depth.db3"
    record([FrameSet(depth=depth, intrinsics={"depth": INTR})], path)
    with open_source(str(path)) as source:
        (played,) = list(source)
    assert played.rgb is None and played.ir is None
    np.testing.assert_array_equal(played.depth, depth)
    assert played.frame_numbers == {"depth": 0}  # a missing frame number becomes the index


def test_bad_inputs_are_refused_with_the_field_named(tmp_path, rng):
    good = _framesets(rng, 2)
    with pytest.raises(ValueError, match="path"):
        record(good, tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="frames"):
        record(good, tmp_path / "x.db3", frames=0)
    with pytest.raises(ValueError, match="at least one"):
        record([], tmp_path / "x.db3")
    with pytest.raises(SourceError, match="does not exist"):
        record(good, tmp_path / "no" / "x.db3")
    with pytest.raises(ValueError, match=r"intrinsics\['depth'\]"):
        record([FrameSet(depth=good[0].depth)], tmp_path / "x.db3")
    changed = FrameSet(rgb=good[1].rgb, depth=good[1].depth, intrinsics=good[1].intrinsics,
                       color_aligned_to_depth=True)
    with pytest.raises(ValueError, match=r"frameset 1: FrameSet.ir: expected present"):
        record([good[0], changed], tmp_path / "x.db3")


def test_record_command_writes_a_playable_file(tmp_path):
    out = tmp_path / "synthetic.db3"
    result = CliRunner().invoke(main, ["record", "--source", "synthetic", "--output", str(out), "--frames", "3"])
    assert result.exit_code == 0, result.output
    with open_source(str(out)) as source:
        played = list(source)
    assert len(played) == 3 and played[0].serial.startswith("SYNTH-")
    assert all(fs.origin == "recording" for fs in played)  # a replay, whatever was recorded
    assert [fs.frame_numbers["rgb"] for fs in played] == [0, 1, 2]


def test_record_command_turns_sdk_errors_into_messages(tmp_path):
    result = CliRunner().invoke(main, ["record", "--source", str(tmp_path / "missing.bag"),
                                       "--output", str(tmp_path / "o.db3")])
    assert result.exit_code == 1 and "missing.bag" in result.output


def test_unregistered_d435_colour_keeps_its_calibration_and_is_aligned_on_playback(tmp_path, d435_bag):
    with open_source(str(d435_bag), align=False) as source:
        (raw,) = list(source)
    path = tmp_path / "d435.db3"
    record([raw], path)
    with open_source(str(path)) as source:
        (played,) = list(source)
    assert played.intrinsics["rgb"] == raw.intrinsics["rgb"] and played.serial == raw.serial
    # The .db3 writer keeps six significant digits of the extrinsics.
    np.testing.assert_allclose(played.depth_to_color.rotation, raw.depth_to_color.rotation, atol=1e-6)
    np.testing.assert_allclose(played.depth_to_color.translation, raw.depth_to_color.translation, atol=1e-6)
    # Aligned with the calibration as stored (rounding moves a few pixel centres across a boundary).
    expected = align_color_to_depth(raw.rgb, raw.depth, raw.depth_scale_m, raw.intrinsics["depth"],
                                     raw.intrinsics["rgb"], played.depth_to_color)
    np.testing.assert_array_equal(played.depth, raw.depth)
    assert played.color_aligned_to_depth and not np.array_equal(expected, raw.rgb)
    np.testing.assert_array_equal(played.rgb, expected)
