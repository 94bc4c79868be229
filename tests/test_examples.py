"""The examples run as written (those that need no camera)."""
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script, *args):
    return subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_check_recording_denies_the_office_recording(tiny_onnx):
    result = _run("check_recording.py", tiny_onnx)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [
        "frame 169: unreliable (streams out of step: their timestamps spread 102 ms > 70 ms, not one moment)"]


def test_kiosk_loop_keeps_the_door_shut_without_a_face(tiny_onnx, d435_bag):
    result = _run("kiosk_loop.py", tiny_onnx, d435_bag, 5)
    assert result.returncode == 0, result.stderr
    assert "door opened" not in result.stdout and "session ended: timeout" in result.stdout


def test_kiosk_loop_opens_the_door_on_the_demo_recordings_live_person():
    result = _run("kiosk_loop.py", "demo", "demo", 30)
    assert result.returncode == 0, result.stderr
    assert "door opened after" in result.stdout


@pytest.mark.slow
def test_train_on_synthetic_runs_end_to_end_with_a_small_budget(tmp_path):
    result = _run("train_on_synthetic.py", "--epochs", "1", "--samples", "24,12,12", "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "held-out domain 3: HTER" in result.stdout and (tmp_path / "model.onnx").is_file()
    assert "segment" in result.stdout and "replay" in result.stdout  # the demo recording's table


def test_export_to_tensorrt_exports_checks_and_says_what_tensorrt_needs(tmp_path):
    import importlib.util

    result = _run("export_to_tensorrt.py", "demo", "--out", tmp_path, "--opset", "17")
    assert "ONNX opset 17" in result.stdout, result.stderr[-3000:]
    error = float(result.stdout.split("max |live_prob - torch| = ")[1].split()[0])
    assert error < 1e-4
    if importlib.util.find_spec("tensorrt") is None:
        assert result.returncode == 3 and "TensorRT build skipped" in result.stdout and "tensorrt" in result.stdout
    else:
        assert result.returncode == 0 and "TensorRT FP16 plan" in result.stdout


@pytest.mark.slow
def test_own_camera_runs_the_whole_loop_to_a_bundle_the_kiosk_loads(tmp_path):
    result = _run("own_camera.py", "--out", tmp_path, "--subjects", 5, "--frames", 4)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    # every capture shows its face: none is left out (4 species × 5 subjects)
    assert lines[0] == f"collected 20 recordings of 5 subjects in {tmp_path / 'collection'}"
    assert "left out:" not in result.stderr
    assert {"test subjects: APCER print", "test subjects: APCER replay", "test subjects: APCER mask"} <= {
        line.split(" 0.")[0].split(" 1.")[0] for line in lines}
    assert (tmp_path / "bundle" / "bundle.json").is_file() and (tmp_path / "bundle" / "model.int8.onnx").is_file()
    from mmdg_edge.detector import Detector
    from mmdg_edge.sensors import open_source

    with open_source(str(tmp_path / "collection" / "recordings" / "S001_bona_fide_01.db3")) as frames:
        expected = [Detector.load(tmp_path / "bundle").check(frameset).status for frameset in frames]
    assert len(expected) == 4 and lines[-1] == "recordings/S001_bona_fide_01.db3: " + ", ".join(expected)
