"""`mmdg-edge export`, `build` and `bench`, and the benchmark's arithmetic."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from mmdg_edge.cli import main
from mmdg_edge.engines import available_engines
from mmdg_edge.engines.base import Engine
from mmdg_edge.engines.benchmark import BASELINE, benchmark, format_table


@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize(
    "command, options", [("export", ["CHECKPOINT", "--int8", "--fp16", "--opset"]),
                         ("build", ["ONNX", "--max-batch", "--timing-cache", "--dla-core"]),
                         ("bench", ["--checkpoint", "--batch", "--threads"])],
)
def test_help_lists_the_options(runner, command, options):
    result = runner.invoke(main, [command, "--help"])
    assert result.exit_code == 0
    for option in options:
        assert option in result.output


def test_export_passes_options_through(runner, monkeypatch, tmp_path):
    import mmdg_edge.engines.export as export

    calls = {}

    def fake_export(checkpoint, output, **options):
        calls.update(checkpoint=checkpoint, output=output, **options)
        return output

    monkeypatch.setattr(export, "export_onnx", fake_export)
    monkeypatch.chdir(tmp_path)  # the export lands in the current folder
    result = runner.invoke(main, ["export", "--checkpoint", "m.safetensors", "--output", "m.onnx", "--int8"])
    assert result.exit_code == 0, result.output
    written = calls.pop("output")  # a temporary file beside m.onnx, renamed onto it when the export succeeded
    assert written.parent == tmp_path and written.name.startswith(".m.onnx.") and written.suffix == ".onnx"
    assert (tmp_path / "m.onnx").is_file() and not written.exists()
    assert calls == {"checkpoint": "m.safetensors", "opset": 18, "fp16": False, "int8": "dynamic", "calibration": None}
    assert result.stdout.strip() == "m.onnx"  # the result on stdout; the progress bar went to stderr


def test_export_of_a_missing_checkpoint_is_one_clear_line(runner, tmp_path):
    result = runner.invoke(main, ["export", "--checkpoint", str(tmp_path / "no.safetensors"), "--output", "m.onnx"])
    assert result.exit_code == 1
    assert "no such checkpoint file" in result.output
    assert "Traceback" not in result.output


def test_export_refuses_fp16_with_int8(runner, tiny_checkpoint, tmp_path):
    result = runner.invoke(main, ["export", "--checkpoint", str(tiny_checkpoint), "--output", str(tmp_path / "m.onnx"),
                                  "--fp16", "--int8", "dynamic"])
    assert result.exit_code == 2
    assert "choose one precision" in result.output


def test_export_rejects_old_opsets(runner):
    result = runner.invoke(main, ["export", "--checkpoint", "m.safetensors", "--output", "m.onnx", "--opset", "13"])
    assert result.exit_code == 2 and "--opset" in result.output


@pytest.mark.skipif("tensorrt" in available_engines(), reason="TensorRT is installed here")
def test_build_without_tensorrt_says_what_to_install(runner, tiny_onnx, tmp_path):
    result = runner.invoke(main, ["build", "--onnx", str(tiny_onnx), "--output", str(tmp_path / "m.plan")])
    assert result.exit_code == 1
    assert 'pip install "mmdg-edge[tensorrt]"' in result.output


def test_build_rejects_an_inverted_profile(runner, tiny_onnx, tmp_path):
    result = runner.invoke(main, ["build", "--onnx", str(tiny_onnx), "--output", str(tmp_path / "m.plan"),
                                  "--min-batch", "4", "--opt-batch", "2"])
    assert result.exit_code == 2
    assert "min_batch ≤ opt_batch ≤ max_batch" in result.output


class Constant(Engine):
    """Returns fixed probabilities after sleeping a fixed time per call."""

    def __init__(self, value, delay_s, precision="fp32", where=None):
        super().__init__()
        self.value, self.delay_s, self._precision = value, delay_s, precision
        self.where = {"device": "cpu"} if where is None else where

    @property
    def precision(self):
        return self._precision

    def describe(self):
        return {"engine": "fake", "precision": self.precision, **self.where}

    def _run(self, crops, mask):
        import time

        time.sleep(self.delay_s)
        return np.asarray(self.value[: len(crops)], np.float32)


def test_benchmark_ratios_errors_and_agreement_are_computed_against_the_baseline():
    inputs = (np.zeros((4, 3, 3, 224, 224), np.float32), np.ones((4, 3), bool))
    engines = {
        BASELINE: Constant([0.2, 0.4, 0.6, 0.8], 0.02),
        "fast": Constant([0.2, 0.55, 0.6, 0.8], 0.005, "int8"),
    }
    rows = benchmark(engines, inputs, batch_sizes=(2,), iterations=3, warmup=0, threshold=0.5, config="toy")
    base, fast = rows
    assert (base.engine, base.speedup, base.max_abs_error, base.agreement) == (BASELINE, 1.0, 0.0, 1.0)
    assert fast.max_abs_error == pytest.approx(0.15, abs=1e-6)
    assert fast.agreement == 0.75  # only the second row crosses 0.5 (0.4 → 0.55)
    assert fast.speedup == pytest.approx(base.p50_ms / fast.p50_ms)
    assert fast.speedup > 2
    assert fast.throughput_fps <= 2 / 0.005  # 2 framesets per call of at least 5 ms
    table = format_table(rows)
    assert "toy" in table and "int8" in table and "×" in table


def test_benchmark_device_column_uses_lower_case_device_names_for_every_engine():
    inputs = (np.zeros((1, 3, 3, 224, 224), np.float32), np.ones((1, 3), bool))
    where = {
        BASELINE: {"device": "cpu"},
        "onnxruntime": {"providers": ["CPUExecutionProvider"]},
        "onnxruntime cuda": {"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]},
        "tensorrt fp16": {"engine": "tensorrt", "device": "NVIDIA Jetson AGX Orin"},
        "torch cuda": {"device": "cuda:0"},
    }
    engines = {label: Constant([0.5], 0.0, where=info) for label, info in where.items()}
    rows = benchmark(engines, inputs, batch_sizes=(1,), iterations=1, warmup=0, config="toy")
    assert {row.engine: row.device for row in rows} == {
        BASELINE: "cpu", "onnxruntime": "cpu", "onnxruntime cuda": "cuda", "tensorrt fp16": "cuda",
        "torch cuda": "cuda:0",
    }
    *table, footer = format_table(rows).splitlines()
    assert all(line.startswith("toy ") for line in table[2:])
    assert footer == "×base, max|Δp|, agree: against torch eager at the same batch size, in the same run"
