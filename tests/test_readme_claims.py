"""What README tells a new user, checked against what the SDK does (issue 23, item 7)."""
import json
from pathlib import Path

from click.testing import CliRunner

from cli_run import cli
from mmdg_edge import Detector, open_source
from mmdg_edge.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_the_api_snippet_on_a_recording_never_opens_the_door_and_the_session_says_why():
    assert "`result.session.reason` says so" in README
    detector = Detector.load("demo", engine="onnxruntime")
    with open_source("demo") as frames:
        results = list(detector.stream(frames))
    assert not any(r.session.opened for r in results)
    refused = [r.session.reason for r in results if r.session.reason]
    assert refused and all("not a live camera" in reason for reason in refused)
    with open_source("demo") as frames:
        assert any(r.session.opened for r in Detector.load("demo", engine="onnxruntime").stream(
            frames, allow_recorded=True))


def test_verdict_records_go_to_stdout_and_the_summaries_to_stderr():
    assert "the closing summaries of `live` and `check` (counts, session decision per segment) go to stderr" in README
    checked = cli("check", "demo", "--max-frames", 2, "--format", "json")
    assert checked.returncode == 0 and [json.loads(line)["frame_number"] for line in checked.stdout.splitlines()] == [0, 1]
    assert "verdicts: " in checked.stderr and "verdicts: " not in checked.stdout
    shown = cli("live", "--source", "demo", "--headless", "--max-frames", 3)
    assert shown.returncode == 0 and len([json.loads(line) for line in shown.stdout.splitlines()]) == 3
    assert "framesets:" in shown.stderr and "framesets:" not in shown.stdout


def test_the_own_species_example_is_for_a_camera_the_synthetic_one_refuses_it(tmp_path):
    assert "your own species (a camera: the synthetic one stages print, replay and mask only)" in README
    result = CliRunner().invoke(main, ["collect", "--data", str(tmp_path / "site-a"), "--source", "synthetic",
                                       "--subject", "S001", "--species", "silicone_mask", "--instrument", "smask-01"])
    assert result.exit_code == 2 and "instruments <species>-<number> of print, replay, mask" in result.output
    assert not (tmp_path / "site-a").exists()
