"""TensorRT: the pure-Python parts everywhere; builder and runner only where TensorRT is installed."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mmdg_edge.checkpoint import CLASSES, FORMAT_VERSION, _metadata_digest
from mmdg_edge.engines.tensorrt_engine import (
    OptimizationProfile,
    PlanSidecar,
    check_sidecar,
    file_sha256,
    load_sidecar,
    plan_buffers,
    sidecar_path,
    write_sidecar,
)
from mmdg_edge.errors import EngineMismatch
from mmdg_edge.frames import MODALITIES
from mmdg_edge.preprocess import PreprocessConfig


def metadata():
    data = {
        "format_version": FORMAT_VERSION, "sdk_version": "0.1.0", "config": {}, "modalities": list(MODALITIES),
        "classes": list(CLASSES), "preprocess": PreprocessConfig().to_dict(), "threshold": 0.5, "provenance": {},
        "sha256": "0" * 64,
    }
    data["metadata_sha256"] = _metadata_digest(data)
    return data


def make_sidecar(plan_bytes=b"plan", **changes):
    import hashlib

    fields = dict(
        onnx_sha256="a" * 64, plan_sha256=hashlib.sha256(plan_bytes).hexdigest(), tensorrt_version="10.3.0",
        gpu_name="NVIDIA Jetson Orin", compute_capability=(8, 7), precision="fp16",
        profile=OptimizationProfile(1, 2, 4), metadata=metadata(), export_info={"precision": "fp32", "opset": 18},
    )
    fields.update(changes)
    return PlanSidecar(**fields)


def test_profile_shapes_cover_both_inputs():
    shapes = OptimizationProfile(1, 4, 8).shapes()
    assert shapes == {
        "crops": ((1, 3, 3, 224, 224), (4, 3, 3, 224, 224), (8, 3, 3, 224, 224)),
        "mask": ((1, 3), (4, 3), (8, 3)),
    }


@pytest.mark.parametrize(
    "args, message",
    [((2, 1, 8), "min_batch ≤ opt_batch ≤ max_batch"), ((1, 9, 8), "min_batch ≤ opt_batch"),
     ((0, 1, 8), "min_batch: expected an int"), ((1, 1, 2.0), "max_batch: expected an int"),
     ((1, True, 8), "opt_batch: expected an int"), ((1, 1, 5000), "max_batch: expected an int in 1..1024")],
)
def test_invalid_profiles_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        OptimizationProfile(*args)


def test_buffer_plan_sizes_are_hand_computed():
    crops, mask, out = plan_buffers(5, OptimizationProfile(1, 4, 8))
    assert (crops.name, crops.shape, crops.dtype, crops.is_input) == ("crops", (5, 3, 3, 224, 224), "float32", True)
    assert crops.nbytes == 5 * 3 * 3 * 224 * 224 * 4 == 9_031_680
    assert (mask.shape, mask.dtype, mask.nbytes) == ((5, 3), "bool", 15)
    assert (out.name, out.shape, out.nbytes, out.is_input) == ("live_prob", (5,), 20, False)
    with pytest.raises(ValueError, match="accepts 1..8 framesets, got 9"):
        plan_buffers(9, OptimizationProfile(1, 4, 8))
    with pytest.raises(ValueError, match="batch: expected an int ≥ 1"):
        plan_buffers(0)


def test_sidecar_round_trips_through_json(tmp_path):
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"plan")
    written = write_sidecar(plan, make_sidecar())
    assert written == tmp_path / "model.plan.json" == sidecar_path(plan)
    loaded = load_sidecar(plan)
    assert loaded == make_sidecar()
    assert loaded.plan_sha256 == file_sha256(plan)
    assert json.loads(written.read_text())["compute_capability"] == [8, 7]


def test_sidecar_on_the_same_machine_passes():
    check_sidecar(make_sidecar(), tensorrt_version="10.3.0", gpu_name="NVIDIA Jetson Orin", compute_capability=(8, 7))


def test_plan_for_another_gpu_is_refused_with_both_gpus_named():
    with pytest.raises(EngineMismatch) as info:
        check_sidecar(
            make_sidecar(), tensorrt_version="10.3.0", gpu_name="NVIDIA GeForce RTX 4090", compute_capability=(8, 9),
            source="model.plan",
        )
    message = str(info.value)
    assert "built for NVIDIA Jetson Orin (compute capability 8.7)" in message
    assert "this GPU is NVIDIA GeForce RTX 4090 (compute capability 8.9)" in message
    assert "mmdg-edge build" in message


def test_plan_for_another_tensorrt_version_is_refused():
    with pytest.raises(EngineMismatch, match="built with TensorRT 10.3.0, this machine has TensorRT 10.8.0"):
        check_sidecar(make_sidecar(), tensorrt_version="10.8.0", gpu_name="NVIDIA Jetson Orin", compute_capability=(8, 7))


def test_modified_plan_is_refused():
    with pytest.raises(EngineMismatch, match="does not match its sidecar's SHA-256"):
        check_sidecar(
            make_sidecar(), tensorrt_version="10.3.0", gpu_name="NVIDIA Jetson Orin", compute_capability=(8, 7),
            plan_sha256="b" * 64,
        )


def test_missing_or_broken_sidecar_is_refused(tmp_path):
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"plan")
    with pytest.raises(EngineMismatch, match="no sidecar model.plan.json"):
        load_sidecar(plan)
    sidecar_path(plan).write_text("{")
    with pytest.raises(EngineMismatch, match="unreadable sidecar"):
        load_sidecar(plan)
    data = make_sidecar().to_dict()
    del data["gpu_name"]
    sidecar_path(plan).write_text(json.dumps(data))
    with pytest.raises(EngineMismatch, match=r"lacks \['gpu_name'\]"):
        load_sidecar(plan)
    data = make_sidecar().to_dict()
    data["metadata"]["preprocess"]["version"] = "old/0"
    sidecar_path(plan).write_text(json.dumps(data))
    with pytest.raises(EngineMismatch, match="refusing the model"):
        load_sidecar(plan)


def test_builder_validates_options_before_touching_tensorrt(tmp_path):
    from mmdg_edge.engines.tensorrt_engine import build_engine

    with pytest.raises(ValueError, match="min_batch ≤ opt_batch"):
        build_engine(tmp_path / "m.onnx", tmp_path / "m.plan", min_batch=4, opt_batch=2)
    with pytest.raises(ValueError, match="workspace_mb"):
        build_engine(tmp_path / "m.onnx", tmp_path / "m.plan", workspace_mb=0)
    with pytest.raises(ValueError, match="dla_core"):
        build_engine(tmp_path / "m.onnx", tmp_path / "m.plan", dla_core=-1)


@pytest.fixture
def tensorrt_installed():
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (needs an NVIDIA GPU and the tensorrt extra)")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed (tensorrt extra)")


def test_builder_and_runner_match_onnxruntime(tensorrt_installed, tiny_onnx, tmp_path):
    from mmdg_edge.engines.onnxruntime_engine import OnnxRuntimeEngine
    from mmdg_edge.engines.tensorrt_engine import TensorRTEngine, build_engine

    plan = build_engine(tiny_onnx, tmp_path / "tiny.plan", fp16=False, min_batch=1, opt_batch=2, max_batch=4)
    rng = np.random.default_rng(0)
    crops = rng.normal(size=(6, 3, 3, 224, 224)).astype(np.float32)
    mask = np.ones((6, 3), bool)
    mask[1, 2] = mask[4, 0] = False
    expected = OnnxRuntimeEngine(tiny_onnx).run(crops, mask)
    with TensorRTEngine(plan) as engine:
        np.testing.assert_allclose(engine.run(crops, mask), expected, atol=1e-3)
        assert engine.metadata["threshold"] == OnnxRuntimeEngine(tiny_onnx).metadata["threshold"]
