"""`mmdg-edge train` and `mmdg-edge eval` end to end on a small synthetic protocol."""
import pytest
from click.testing import CliRunner


from mmdg_edge.checkpoint import load_checkpoint
from mmdg_edge.cli import main


@pytest.mark.slow
def test_train_then_eval_a_synthetic_protocol(tmp_path):
    out = tmp_path / "run"
    trained = CliRunner().invoke(main, ["train", "--protocol", "syn:0-1", "--config", "tiny", "--epochs", "1",
                                        "--batch-size", "8", "--lr", "1e-3", "--synthetic-samples", "16,12,12",
                                        "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    assert "best validation HTER" in trained.output
    _, meta = load_checkpoint(out / "best.safetensors")
    assert meta["provenance"]["protocol"] == "syn:0-1" and 0 < meta["threshold"] < 1
    assert (out / "last.safetensors").is_file() and (out / "last.state.pt").is_file()
    roc, det = tmp_path / "roc.png", tmp_path / "det.png"
    evaluated = CliRunner().invoke(main, ["eval", str(out / "best.safetensors"), "--protocol", "syn:0-1",
                                          "--test-missing", "ir", "--synthetic-samples", "4,4,24", "--roc", str(roc),
                                          "--det", str(det)])
    assert evaluated.exit_code == 0, evaluated.output
    keys = ("hter", "auc", "eer", "tpr_at_fpr_1", "apcer", "bpcer", "threshold")
    lines = dict(line.split(None, 1) for line in evaluated.output.splitlines() if line.split()[:1] and line.split()[0] in keys)
    assert float(lines["threshold"]) == pytest.approx(meta["threshold"], abs=1e-4)  # the validation threshold
    assert 0.0 <= float(lines["hter"]) <= 1.0 and "missing ir" in evaluated.output
    rows = [line.split()[1] for line in evaluated.output.splitlines() if line.startswith("APCER ")]
    assert {"print", "replay", "mask"} & set(rows), evaluated.output  # ISO rows per attack species
    assert roc.read_bytes()[:8] == det.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,message", [
    (["--protocol", "XYZ-W"], "unknown; available: CPS-W"),
    (["--protocol", "CPS-W"], "data_root"),
    (["--protocol", "syn:0-1", "--synthetic-samples", "10,5"], "three counts"),
])
def test_train_refuses_bad_protocols_and_options_with_a_message(tmp_path, args, message):
    result = CliRunner().invoke(main, ["train", "--config", "tiny", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code != 0 and message in result.output, result.output
