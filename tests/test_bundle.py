"""Bundles read and signed in a kiosk install: the advice a refusal gives works when followed."""
import re
import shutil
from datetime import datetime, timezone

import numpy as np
import pytest
from click.testing import CliRunner

from mmdg_edge import Detector
from mmdg_edge.assets import DEMO_MODEL
from mmdg_edge.bundle import entry, write_index
from mmdg_edge.calibration import calibrate_scores, create_profile
from mmdg_edge.cli import main
from mmdg_edge.errors import SignatureError
from mmdg_edge.digest import file_sha256


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture
def bundle(tmp_path):
    """A bundle of the demo model as `mmdg-edge bundle` lays it out (both precisions on the FP32 file)."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    report = calibrate_scores([0.9] * 10, np.linspace(0.0, 0.3, 36), 0.1)
    models = {}
    for precision, model_name, profile_name in (("fp32", "model.onnx", "profile.json"),
                                                ("int8", "model.int8.onnx", "profile.int8.json")):
        model = shutil.copyfile(DEMO_MODEL, folder / model_name)
        profile = create_profile(report, camera_serial="SYNTH-1", camera_firmware="", model_sha256=file_sha256(model),
                                 model_precision="fp32").save(folder / profile_name)
        models[precision] = {"model": entry(folder, model), "profile": entry(folder, profile)}
    write_index(folder, {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "models": models})
    _run("keygen", "--output", tmp_path / "kiosk")
    return folder


def _advised_command(message, key):
    found = re.search(r"`mmdg-edge (sign \S+) --key NAME\.key`", message)
    assert found, message
    return found.group(1).split() + ["--key", str(key)]


def test_an_unsigned_bundle_loads_after_the_advised_sign_command(bundle, tmp_path):
    trusted = tmp_path / "kiosk.pub"
    with pytest.raises(SignatureError, match="is not signed") as refused:
        Detector.load(bundle, trusted_key=trusted)
    _run(*_advised_command(str(refused.value), tmp_path / "kiosk.key"))
    detector = Detector.load(bundle, trusted_key=trusted)  # one command signs the whole bundle
    assert detector.profile.camera_serial == "SYNTH-1"
    assert sorted(p.name for p in bundle.glob("*.sig")) == [
        "bundle.json.sig", "model.int8.onnx.sig", "model.onnx.sig", "profile.int8.json.sig", "profile.json.sig"]


def test_a_bundle_index_signed_on_its_own_carries_a_bundle_signature(bundle, tmp_path):
    _run("sign", bundle, "--key", tmp_path / "kiosk.key")
    (bundle / "bundle.json.sig").unlink()
    _run("sign", bundle / "bundle.json", "--key", tmp_path / "kiosk.key")
    detector = Detector.load(bundle, trusted_key=tmp_path / "kiosk.pub")
    assert detector.threshold == pytest.approx(detector.profile.threshold)


def test_an_unsigned_model_file_names_the_command_that_signs_it(bundle, tmp_path):
    _run("sign", bundle, "--key", tmp_path / "kiosk.key")
    (bundle / "model.onnx.sig").unlink()
    with pytest.raises(SignatureError) as refused:
        Detector.load(bundle, trusted_key=tmp_path / "kiosk.pub")
    assert _advised_command(str(refused.value), "k")[:2] == ["sign", str(bundle / "model.onnx")]
    _run(*_advised_command(str(refused.value), tmp_path / "kiosk.key"))
    assert Detector.load(bundle, trusted_key=tmp_path / "kiosk.pub").engine.model_sha256 == file_sha256(
        bundle / "model.onnx")
