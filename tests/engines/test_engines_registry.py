"""Engine registry, auto selection and the torch-free kiosk import path."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import mmdg_edge.engines as engines
from mmdg_edge.engines import _EngineEntry, _create_registry, available_engines, list_engines, select_engine
from mmdg_edge.errors import MissingDependency


def test_registry_lists_every_engine_and_only_installed_ones_as_available():
    assert list_engines() == ("onnxruntime", "torch", "tensorrt")
    available = available_engines()
    assert "onnxruntime" in available and "torch" in available
    tensorrt_installed = all(engines._is_installed(name) for name in ("tensorrt", "pycuda"))
    assert ("tensorrt" in available) == tensorrt_installed


def test_duplicate_engine_name_is_a_value_error():
    entry = _EngineEntry("a:b", (), "")
    with pytest.raises(ValueError, match="'x' is registered twice"):
        _create_registry([("x", entry), ("x", _EngineEntry("c:d", (), ""))])


def test_unknown_engine_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown name 'openvino'; available: auto, onnxruntime, torch, tensorrt"):
        select_engine("openvino", "model.onnx")


def test_auto_picks_onnxruntime_cpu_for_onnx_without_gpu(monkeypatch):
    monkeypatch.setattr(engines, "_gpu_ort_providers", lambda: ())
    choice = select_engine("auto", "kiosk/model.onnx")
    assert choice.name == "onnxruntime"
    assert dict(choice.options) == {"providers": ("CPUExecutionProvider",)}
    assert "no GPU provider" in choice.reason


def test_auto_prefers_gpu_providers_with_cpu_fallback(monkeypatch):
    monkeypatch.setattr(engines, "_gpu_ort_providers", lambda: ("CUDAExecutionProvider",))
    choice = select_engine("auto", "model.onnx")
    assert choice.options["providers"] == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert "CUDAExecutionProvider" in choice.reason


def test_auto_sends_plans_to_tensorrt_or_says_what_to_install(monkeypatch):
    monkeypatch.setattr(engines, "available_engines", lambda: ("onnxruntime", "torch", "tensorrt"))
    assert select_engine("auto", "model.plan").name == "tensorrt"
    monkeypatch.setattr(engines, "available_engines", lambda: ("onnxruntime", "torch"))
    with pytest.raises(MissingDependency, match=r'model.plan needs the tensorrt engine.*mmdg-edge\[tensorrt\]'):
        select_engine("auto", "model.plan")


def test_auto_runs_checkpoints_with_torch_on_the_visible_device():
    import torch

    choice = select_engine("auto", "model.safetensors")
    assert choice.name == "torch"
    assert choice.options["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


def test_auto_refuses_unknown_file_kinds():
    with pytest.raises(ValueError, match="cannot tell which engine reads 'model.pt'"):
        select_engine("auto", "model.pt")


def test_create_engine_passes_options_over_auto_ones(monkeypatch):
    seen = {}

    class FakeModule:
        @staticmethod
        def OnnxRuntimeEngine(path, **options):  # noqa: N802 - stands in for the class
            seen.update(path=path, **options)
            return "engine"

    monkeypatch.setattr(engines.importlib, "import_module", lambda name: FakeModule)
    monkeypatch.setattr(engines, "_gpu_ort_providers", lambda: ())
    assert engines.create_engine("auto", "m.onnx", intra_op_num_threads=2) == "engine"
    assert seen == {"path": "m.onnx", "providers": ("CPUExecutionProvider",), "intra_op_num_threads": 2}


def test_kiosk_engine_path_does_not_import_torch():
    code = (
        "import mmdg_edge.engines, mmdg_edge.engines.onnxruntime_engine, mmdg_edge.engines.tensorrt_engine; "
        "import sys; assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_run_refuses_bad_inputs_before_the_backend():
    from mmdg_edge.engines.base import Engine

    class Recorder(Engine):
        calls = 0
        precision = "fp32"

        def _run(self, crops, mask):
            Recorder.calls += 1
            return np.full(len(crops), 0.5, np.float32)

    engine = Recorder()
    good = np.zeros((2, 3, 3, 224, 224), np.float32)
    mask = np.array([[True, False, False], [False, False, True]])
    np.testing.assert_array_equal(engine.run(good, mask), [0.5, 0.5])
    cases = [
        (good.astype(np.float64), mask, TypeError, "crops: expected float32"),
        (good, mask.astype(np.uint8), TypeError, "mask: expected bool"),
        (good[:, :2], mask, ValueError, r"crops: expected shape \(B, 3, 3, 224, 224\)"),
        (good[:0], mask[:0], ValueError, "batch is empty"),
        (good, mask[:1], ValueError, r"mask: expected shape \(2, 3\)"),
        (good, np.array([[True, False, False], [False, False, False]]), ValueError, r"rows \[1\] have no modality"),
        (np.where(np.arange(224) == 3, np.nan, good).astype(np.float32), mask, ValueError, "NaN or infinite"),
        (list(good), mask, TypeError, "crops: expected a numpy array"),
    ]
    for crops, bad_mask, error, message in cases:
        with pytest.raises(error, match=message):
            engine.run(crops, bad_mask)
    assert Recorder.calls == 1


def test_out_of_range_output_is_an_engine_error():
    from mmdg_edge.engines.base import Engine
    from mmdg_edge.errors import EngineError

    class Broken(Engine):
        precision = "fp32"

        def _run(self, crops, mask):
            return np.array([1.5], np.float32)

    with pytest.raises(EngineError, match=r"outside \[0, 1\]"):
        Broken().run(np.zeros((1, 3, 3, 224, 224), np.float32), np.ones((1, 3), bool))
