"""The examples run as written (those that need no camera)."""
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script, *args):
    return subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_check_recording_prints_no_face_for_the_office_recording(tiny_onnx):
    result = _run("check_recording.py", tiny_onnx)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == ["frame 169: no_face (no face found in RGB)"]


def test_kiosk_loop_keeps_the_door_shut_without_a_face(tiny_onnx, d435_bag):
    result = _run("kiosk_loop.py", tiny_onnx, d435_bag, 5)
    assert result.returncode == 0, result.stderr
    assert "door opened" not in result.stdout and "session ended: timeout" in result.stdout
