"""Device profiles on load: sanity of the operating point, and rollback to an older profile or bundle."""
import dataclasses
import json
import shutil

import pytest

from mmdg_edge import BundleError, Detector, ProfileMismatch
from mmdg_edge.assets import DEMO_MODEL, bundled
from mmdg_edge.bundle import entry, read_bundle, write_index
from mmdg_edge.calibration import calibrate_scores, create_profile
from mmdg_edge.digest import file_sha256
from mmdg_edge.profile import DeviceProfile
from mmdg_edge.signing import create_key_pair, load_private_key, sign_file
from mmdg_edge.stats import Rate

OLD, NEW = "2026-03-01T09:00:00+00:00", "2026-06-01T09:00:00+00:00"


def _profile(model_sha256="ab" * 32, created=NEW, threshold_scores=(0.0, 0.3)):
    report = calibrate_scores([0.9] * 10, [threshold_scores[0] + i * (threshold_scores[1] - threshold_scores[0]) / 35
                                            for i in range(36)], 0.1)
    made = create_profile(report, camera_serial="SYNTH-0", camera_firmware="", model_sha256=model_sha256,
                          model_precision="fp32")
    return dataclasses.replace(made, created=created)


@pytest.mark.parametrize("field, value, message", [
    ("threshold", 1e-300, r"threshold: expected a value in \[1e-06, 1\), got 1e-300"),
    ("uncertainty_band", 0.45, r"uncertainty_band: expected a value in \[0, 0\.01\).*got 0\.45"),
    ("target_apcer", 7.5, r"target_apcer: expected a value in \(0, 1\), got 7\.5"),
    ("apcer", Rate.from_counts(5, 36).to_dict(), r"APCER 0\.138.* \(5 of 36\) exceeds the target 0\.1 "),
])
def test_a_profile_with_an_operating_point_no_calibration_gives_is_refused(tmp_path, field, value, message):
    data = json.loads(_profile().save(tmp_path / "p.json").read_text())
    data["report"][field] = value
    if field == "uncertainty_band":
        data["report"]["threshold"] = 0.01
    (tmp_path / "p.json").write_text(json.dumps(data))
    with pytest.raises(ProfileMismatch, match=message):
        DeviceProfile.load(tmp_path / "p.json")


def test_a_profile_without_a_zoned_creation_time_is_refused(tmp_path):
    data = _profile().to_dict()
    data["created"] = "2026-06-01T09:00:00"
    with pytest.raises(ProfileMismatch, match="created: expected an ISO 8601 time with its UTC offset"):
        DeviceProfile.from_dict(data)


def test_calibration_keeps_the_threshold_above_its_band_and_the_floor():
    report = calibrate_scores([0.9] * 10, [0.0] * 36, 0.1, uncertainty_band=0.05)
    assert report.threshold > 0.05 and report.apcer.errors == 0
    report = calibrate_scores([0.9] * 10, [0.0] * 36, 0.1, uncertainty_band=0.0)
    assert report.threshold == 1e-6


def test_with_a_minimum_creation_time_an_older_signed_profile_is_a_rollback(tmp_path):
    """Issue 21 item 5: an older profile signed by the same key silently replaced the current one."""
    create_key_pair(tmp_path / "kiosk.key", tmp_path / "kiosk.pub")
    key = load_private_key(tmp_path / "kiosk.key")
    model = shutil.copyfile(bundled(DEMO_MODEL, ""), tmp_path / "model.onnx")
    sign_file(model, key, "model")
    digest = file_sha256(model)
    current = _profile(digest, NEW, (0.4, 0.5)).save(tmp_path / "current.json")
    older = _profile(digest, OLD, (0.0, 0.04)).save(tmp_path / "older.json")
    for path in (current, older):
        sign_file(path, key, "profile")
    load = dict(engine="onnxruntime", trusted_key=tmp_path / "kiosk.pub", min_created=NEW)
    assert Detector.load(model, profile=current, **load).threshold == DeviceProfile.load(current).threshold > 0.45
    with pytest.raises(ProfileMismatch, match=r"older\.json was created 2026-03-01T09:00:00\+00:00, before the "
                                              r"minimum 2026-06-01T09:00:00\+00:00.*rollback"):
        Detector.load(model, profile=older, **load)
    with pytest.raises(ValueError, match="min_created: expected an ISO 8601 time with its UTC offset"):
        Detector.load(model, profile=current, **{**load, "min_created": "2026-06-01"})


def test_with_a_minimum_creation_time_an_older_bundle_is_a_rollback(tmp_path):
    from mmdg_edge.signing import parse_min_created

    folder = tmp_path / "bundle"
    folder.mkdir()
    model = shutil.copyfile(bundled(DEMO_MODEL, ""), folder / "model.onnx")
    profile = _profile(file_sha256(model)).save(folder / "profile.json")
    files = {"model": entry(folder, model), "profile": entry(folder, profile)}
    write_index(folder, {"created": OLD, "models": {"fp32": files}})
    assert read_bundle(folder).model == model
    with pytest.raises(BundleError, match=r"bundle\.json was created 2026-03-01.*rollback"):
        read_bundle(folder, min_created=parse_min_created(NEW))
    write_index(folder, {"models": {"fp32": files}})
    with pytest.raises(BundleError, match="created: expected an ISO 8601 time"):
        read_bundle(folder)


class _Engine:
    def __init__(self, sha256, precision):
        self.model_sha256, self.precision = sha256, precision


def test_a_profile_binds_the_camera_serial_even_an_empty_one_and_the_precision():
    """Issue 21 item 12: an empty camera serial passing the binding went unnoticed; precision was bound
    by one detector test only."""
    profile = _profile()
    profile.check_camera("SYNTH-0")
    with pytest.raises(ProfileMismatch, match="device profile is for camera 'SYNTH-0', this frame comes from ''"):
        profile.check_camera("")
    profile.check_model(_Engine("ab" * 32, "fp32"))
    with pytest.raises(ProfileMismatch, match=r"calibrated for model file abababababab… \(fp32\), this engine runs "
                                              r"abababababab… \(int8\)"):
        profile.check_model(_Engine("ab" * 32, "int8"))
