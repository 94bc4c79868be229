"""The bundled demo model (tiny MMDG++ trained on the synthetic camera) through the whole kiosk path."""
import numpy as np
import pytest


from mmdg_edge.checkpoint import read_metadata
from mmdg_edge.assets import ASSETS
from mmdg_edge.detector import Detector
from mmdg_edge.sensors.synthetic import render_frameset


@pytest.fixture(scope="module")
def detector():
    return Detector.load("demo", engine="onnxruntime")


def _segment(kind, seed, frames=10, domain=1):
    rng = np.random.default_rng(seed)
    for i in range(frames):
        yield render_frameset(kind, domain, rng, i, distance_m=0.6, centre=(320.0, 240.0))


def test_demo_checkpoint_says_it_is_not_a_security_model():
    meta = read_metadata(ASSETS / "demo.safetensors")
    assert meta["provenance"]["note"] == "synthetic data, demonstration only, not a security model"


@pytest.mark.parametrize("kind", ["live", "print", "replay", "mask"])
def test_session_decision_is_live_only_for_live_segments(detector, kind):
    frames = _segment(kind, seed={"live": 1, "print": 2, "replay": 3, "mask": 4}[kind])
    results = list(detector.stream(frames, allow_recorded=True))
    sessions = {r.session.status for r in results}
    if kind == "live":
        assert results[-1].session.status == "live", [r.verdict.reason for r in results]
    else:
        assert "live" not in sessions and results[-1].session.status == "attack"
        assert not any(r.verdict.status == "live" for r in results)


def test_demo_recording_sessions_follow_its_ground_truth_segments(detector):
    import io

    from mmdg_edge.live import LiveSummary, run_headless
    from mmdg_edge.sensors import load_segments, open_source

    summary = LiveSummary.for_segments(load_segments())
    with open_source("demo") as frames:
        run_headless(detector, frames, io.StringIO(), summary=summary, allow_recorded=True)
    assert [(s.kind, s.correct) for s in summary.segments] == [
        ("live", True), ("print", True), ("replay", True), ("live", True)], summary.format_table()
    assert all(s.verdicts["live"] == 0 for s in summary.segments if s.label == "attack")
    assert sum(s.framesets for s in summary.segments) == summary.framesets == 36


def test_the_demo_model_script_works_from_any_folder(tmp_path):
    """Run from outside the repository, --check-only used to look for mmdg_edge/assets in the current folder."""
    import os
    import subprocess
    import sys

    script = str(ASSETS.parents[1] / "scripts" / "train_demo_model.py")
    wide = {**os.environ, "COLUMNS": "1000"}  # argparse would break a long checkout path inside the word
    shown = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                           env=wide)
    assert shown.returncode == 0 and str(ASSETS) in " ".join(shown.stdout.split()), shown.stdout
    missing = subprocess.run([sys.executable, script, "--check-only", "--out", str(tmp_path)], capture_output=True,
                             text=True, cwd=tmp_path, timeout=300)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"--check-only: no {tmp_path / 'demo.safetensors'}; pass --out FOLDER" in missing.stderr
