"""README's "Deploying on your own camera", steps 1-6, walked as a new user with `--source synthetic`.

Every step is the `mmdg-edge` command README gives, run as a subprocess in an install without the
dev extra's packages (scikit-image, psutil, jsonschema, pytest made unimportable, as the torch-free
tests make torch unimportable). Small on purpose: five subjects (S004's prints and replays are
refused by collect, see test_collection.py), 6 framesets per capture, two epochs.
"""
import json

import pytest

from cli_run import cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
DEV_ONLY = ("skimage", "psutil", "jsonschema", "pytest", "_pytest", "pytest_timeout")
SUBJECTS = ["S001", "S002", "S003", "S005", "S006"]


def _step(*args, cwd):
    result = cli(*args, block=DEV_ONLY, cwd=cwd, timeout=600)
    assert result.returncode == 0, f"mmdg-edge {' '.join(map(str, args))}:\n{result.stderr[-3000:]}"
    return result


def _verdicts(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_own_camera_road_on_the_synthetic_camera_ends_in_live_verdicts_for_live_subjects_only(tmp_path):
    # 1. Check the rig.
    doctor = _step("doctor", cwd=tmp_path)
    assert "onnxruntime" in doctor.stdout

    # 2. Collect: one bona fide presentation and one instrument of each species per subject.
    plan = [{"subject": s, "species": "bona_fide"} for s in SUBJECTS]
    plan += [{"subject": s, "species": kind, "instrument": f"{kind}-{i:02d}"}
             for i, s in enumerate(SUBJECTS, start=1) for kind in ("print", "replay", "mask")]
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    collected = _step("collect", "--data", "site-a", "--plan", "plan.json", "--source", "synthetic", "--frames", 6,
                      cwd=tmp_path)
    assert len(collected.stdout.split()) == 20 and collected.stderr.count("framesets without a face") == 20

    # 3. Fine-tune from the demo model (README's lr for it; 2 of its 3 epochs are enough here).
    trained = _step("train", "--data", "site-a", "--init", "demo", "--epochs", 2, "--output", "runs/site-a",
                    cwd=tmp_path)
    best = trained.stdout.strip()
    assert best.endswith("best.safetensors")

    # 4. Report on the test subjects, with the DET plot.
    _step("eval", best, "--data", "site-a", "--det", "det.png", cwd=tmp_path)
    assert (tmp_path / "det.png").stat().st_size > 1000

    # 5. Calibrate and bundle, signed.
    _step("keygen", "--output", "kiosk", cwd=tmp_path)
    _step("bundle", best, "--data", "site-a", "--output", "bundle-site-a", "--target-apcer", 0.75, "--key",
          "kiosk.key", cwd=tmp_path)

    # 6. Ship: the kiosk loads the signed bundle. The synthetic camera is the camera the bundle was
    # calibrated for, whatever the scene: no frameset is refused as another camera's.
    kiosk = ("--model", "bundle-site-a", "--trusted-key", "kiosk.pub", "--headless")
    camera = _verdicts(_step("live", "--source", "synthetic", *kiosk, "--max-frames", 8, cwd=tmp_path))
    assert len(camera) == 8 and not any("camera" in v["reason"] or v["status"] == "error" for v in camera), camera
    splits = json.loads((tmp_path / "site-a" / "splits.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "site-a" / "manifest.jsonl").read_text().splitlines()]
    test_subject = splits["subjects"]["test"][0]
    takes = {row["species"]: row["file"] for row in rows if row["subject"] == test_subject}
    assert set(takes) == {"bona_fide", "print", "replay", "mask"}
    live = _verdicts(_step("live", "--source", f"site-a/{takes['bona_fide']}", *kiosk, cwd=tmp_path))
    assert sum(v["status"] == "live" for v in live) >= len(live) // 2, [(v["status"], v["reason"]) for v in live]
    # Masks are left out: README's table shows fine-tuned models letting some new masks through.
    for species in ("print", "replay"):
        attack = _verdicts(_step("live", "--source", f"site-a/{takes[species]}", *kiosk, cwd=tmp_path))
        assert len(attack) == 6 and not any(v["status"] == "live" for v in attack), (species, attack)
