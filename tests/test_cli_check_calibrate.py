"""`mmdg-edge check` and `calibrate` on folders of synthetic image triplets, with the demo model."""
import json

import cv2
import pytest
from click.testing import CliRunner


from mmdg_edge.profile import DeviceProfile
from mmdg_edge.cli import main
from mmdg_edge.sensors.synthetic import SyntheticCamera


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
    verdicts = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(verdicts) == 3 and all(v["modalities"] == ["rgb", "depth", "ir"] for v in verdicts)


ATTACKS = ("print", "replay", "mask")


def _presentations(folder, option):
    """Each triplet of ``folder`` as a presentation of its own: a folder per triplet, one ``option`` each."""
    arguments = []
    for rgb in sorted(folder.glob("*_rgb.png")):
        own = folder.parent / f"{folder.name}-{rgb.name[:-8]}"
        own.mkdir()
        for suffix in ("rgb", "depth", "ir"):
            (own / f"f_{suffix}.png").hardlink_to(folder / f"{rgb.name[:-8]}_{suffix}.png")
        arguments += [option, str(own)]
    return arguments


def test_calibrate_writes_a_profile_whose_rates_hold_on_captures_it_never_saw(tmp_path):
    live = _write(tmp_path / "live", ("live",), 12, seed=2)
    attack = _write(tmp_path / "attack", ATTACKS, 36, seed=3)  # 36: the fewest for 10 %
    out = tmp_path / "profile.json"
    result = CliRunner().invoke(main, ["calibrate", *_presentations(live, "--live"), *_presentations(attack, "--attack"),
                                       "--target-apcer", "0.1", "--output", str(out)])
    assert result.exit_code == 0, result.output
    profile = DeviceProfile.load(out)
    report = profile.report
    assert report.apcer.value <= 0.1 and report.apcer.trials == 36 and report.bpcer.trials == 12
    assert report.frame_apcer.trials == 36 and report.frame_bpcer.trials == 12  # one frameset per presentation here
    assert profile.camera_serial == "" and profile.model_precision == "fp32"  # image folders carry no serial
    assert "on 36 attack presentations" in result.output and "per frameset (not independent)" in result.output

    def live_share(folder):
        checked = CliRunner().invoke(main, ["check", str(folder), "--profile", str(out), "--format", "json"])
        assert checked.exit_code == 0, checked.output
        verdicts = [json.loads(line) for line in checked.stdout.strip().splitlines()]
        return sum(v["status"] == "live" for v in verdicts) / len(verdicts)

    fresh_live, fresh_attack = _write(tmp_path / "live2", ("live",), 12, 4), _write(tmp_path / "attack2", ATTACKS, 36, 5)
    assert live_share(fresh_attack) <= report.apcer.upper
    assert 1 - live_share(fresh_live) <= report.bpcer.upper


def test_calibrate_refuses_too_few_attacks_for_the_target(tmp_path):
    live = _write(tmp_path / "live", ("live",), 3, seed=2)
    attack = _write(tmp_path / "attack", ATTACKS, 20, seed=3)
    result = CliRunner().invoke(main, ["calibrate", "--live", str(live), "--attack", str(attack),
                                       "--target-apcer", "0.01", "--output", str(tmp_path / "p.json")])
    assert result.exit_code != 0 and "at least 368 are needed" in result.output
    assert not (tmp_path / "p.json").exists()


def test_check_of_a_missing_path_fails_cleanly(tmp_path):
    result = CliRunner().invoke(main, ["check", str(tmp_path / "nope.bag")])
    assert result.exit_code == 1 and "nope.bag" in result.output


def test_calibrate_warns_on_stderr_when_the_interval_misses_the_target(tmp_path, monkeypatch):
    from mmdg_edge import calibration

    # one presentation per --live/--attack path: 10 live, 30 attacks of which 3 pass (10 %, interval up to 26.5 %)
    takes = {"live": iter([[0.9]] * 10), "attack": iter([[0.1]] * 27 + [[0.8]] * 3)}
    monkeypatch.setattr(calibration, "collect_scores",
                        lambda detector, frames, label: (next(takes[label]), 0, "SN1", ""))
    live, attack = _write(tmp_path / "live", ("live",), 1, seed=2), _write(tmp_path / "attack", ATTACKS, 1, seed=3)
    out = tmp_path / "p.json"
    result = CliRunner().invoke(main, ["calibrate", *["--live", str(live)] * 10, *["--attack", str(attack)] * 30,
                                       "--target-apcer", "0.15", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"warning: {out}: APCER 3/30 (10.0%) meets the target 15.0%" in result.stderr
    assert "warning" not in result.stdout and DeviceProfile.load(out).report.target_shown is False


def test_a_profile_nested_too_deep_is_a_one_line_refusal(tmp_path):
    """Issue 21 item 9: a RecursionError escaped Detector.load and the CLI printed a 47-line traceback."""
    folder = _write(tmp_path / "live", ("live",), 1, seed=1)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = CliRunner().invoke(main, ["check", str(folder), "--profile", str(deep)])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [f"Error: {deep}: not JSON (RecursionError: maximum recursion depth "
                                                  "exceeded while decoding a JSON array from a unicode string)"]
