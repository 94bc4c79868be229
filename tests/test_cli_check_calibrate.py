"""`mmdg-edge check` and `calibrate` on folders of synthetic image triplets, with the demo model."""
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("skimage.data", reason="the synthetic camera's face texture comes from scikit-image")

from mmdg_edge.calibration import DeviceProfile  # noqa: E402
from mmdg_edge.cli import main  # noqa: E402
from mmdg_edge.sensors.synthetic import SyntheticCamera  # noqa: E402


def _write(folder, classes, count, seed):
    folder.mkdir()
    for i, fs in enumerate(SyntheticCamera(seed=seed, classes=classes, domains=(1,), num_frames=count)):
        cv2.imwrite(str(folder / f"f{i:03d}_rgb.png"), fs.rgb[..., ::-1])
        cv2.imwrite(str(folder / f"f{i:03d}_depth.png"), fs.depth)
        cv2.imwrite(str(folder / f"f{i:03d}_ir.png"), fs.ir)
    return folder


def test_check_prints_a_json_verdict_per_triplet(tmp_path):
    folder = _write(tmp_path / "live", ("live",), 3, seed=1)
    result = CliRunner().invoke(main, ["check", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    verdicts = [json.loads(line) for line in result.output.strip().splitlines()]
    assert len(verdicts) == 3 and all(v["modalities"] == ["rgb", "depth", "ir"] for v in verdicts)


def test_calibrate_writes_a_profile_that_meets_its_target_on_the_captures(tmp_path):
    live = _write(tmp_path / "live", ("live",), 12, seed=2)
    attack = _write(tmp_path / "attack", ("print", "replay", "mask"), 20, seed=3)
    out = tmp_path / "profile.json"
    result = CliRunner().invoke(main, ["calibrate", "--live", str(live), "--attack", str(attack),
                                       "--target-apcer", "0.05", "--output", str(out)])
    assert result.exit_code == 0, result.output
    profile = DeviceProfile.load(out)
    assert profile.apcer <= 0.05 and profile.attack_count == 20 and profile.live_count == 12
    assert "APCER" in result.output and "95% CI" in result.output


def test_check_of_a_missing_path_fails_cleanly(tmp_path):
    result = CliRunner().invoke(main, ["check", str(tmp_path / "nope.bag")])
    assert result.exit_code == 1 and "nope.bag" in result.output
