"""TensorRT: the pure-Python parts everywhere; the runner on a fake GPU (tests/engines/fake_tensorrt.py);
builder and runner on a real one only where TensorRT is installed."""
from __future__ import annotations

import hashlib
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fake_tensorrt import COMPUTE_CAPABILITY, GPU_NAME, TENSORRT_VERSION, FakeGpu, expected_live_prob

from mmdg_edge.checkpoint import CLASSES, FORMAT_VERSION, _metadata_digest
from mmdg_edge.engines._onnx_props import read_onnx_properties
from mmdg_edge.engines.base import parse_model_metadata
from mmdg_edge.engines.tensorrt_engine import (
    OptimizationProfile,
    PlanSidecar,
    TensorRTEngine,
    check_sidecar,
    load_sidecar,
    plan_buffers,
    sidecar_path,
    write_sidecar,
)
from mmdg_edge.errors import EngineError, EngineMismatch
from mmdg_edge.frames import MODALITIES
from mmdg_edge.preprocess import PreprocessConfig
from mmdg_edge.digest import file_sha256


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
def fake_plan(request, tmp_path, monkeypatch):
    """A plan file and a valid sidecar (metadata of the tiny ONNX export) for the fake GPU, whose
    tensorrt and pycuda modules are installed for the test."""
    pytest.importorskip("torch", reason="the tiny ONNX export behind the sidecar's metadata needs torch")
    tiny_onnx = request.getfixturevalue("tiny_onnx")
    plan_bytes = b"fake TensorRT plan of " + file_sha256(tiny_onnx).encode()
    gpu = FakeGpu(plan_bytes)
    for name, module in gpu.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    plan = tmp_path / "tiny.plan"
    plan.write_bytes(plan_bytes)
    metadata, export_info = parse_model_metadata(read_onnx_properties(tiny_onnx), str(tiny_onnx))
    sidecar = PlanSidecar(
        onnx_sha256=file_sha256(tiny_onnx), plan_sha256=hashlib.sha256(plan_bytes).hexdigest(),
        tensorrt_version=TENSORRT_VERSION, gpu_name=GPU_NAME, compute_capability=COMPUTE_CAPABILITY,
        precision="fp32", profile=OptimizationProfile(1, 2, 2), metadata=metadata, export_info=export_info,
    )
    write_sidecar(plan, sidecar)
    return plan, gpu


def _shared_noise():
    return np.random.default_rng(0).normal(0.0, 0.5, (1, 3, 3, 224, 224)).astype(np.float32)


def test_runner_scores_each_row_through_the_bound_buffers(fake_plan):
    plan, _ = fake_plan
    crops = _shared_noise() + np.array([-0.6, 0.1, 0.9], np.float32).reshape(3, 1, 1, 1, 1)
    mask = np.array([[True, False, False], [True, True, True], [False, True, True]])
    with TensorRTEngine(plan) as engine:
        live_prob = engine.run(crops, mask)  # max_batch 2: one chunk of 2, one of 1
        assert engine.metadata["threshold"] == 0.4
    np.testing.assert_allclose(live_prob, expected_live_prob(crops, mask), rtol=1e-6)
    # The hand value: the noise averages ≈ 0, so sigmoid(offset + 0.1 · present modalities).
    np.testing.assert_allclose(live_prob, 1 / (1 + np.exp(-np.array([-0.5, 0.4, 1.1]))), atol=2e-3)


def test_threads_sharing_one_engine_each_get_their_own_scores(fake_plan):
    plan, _ = fake_plan
    noise, calls = _shared_noise(), 30
    masks = (
        np.array([[True, False, False], [True, False, True]]),
        np.array([[True, True, True], [False, True, False]]),
    )

    def inputs(thread, call):
        sign = -1.0 if thread == 0 else 1.0
        offsets = sign * (0.1 + np.array([call, call + 0.5], np.float32) / calls)
        return noise + offsets.reshape(2, 1, 1, 1, 1).astype(np.float32), masks[thread]

    engine = TensorRTEngine(plan)
    alone = {(thread, call): engine.run(*inputs(thread, call)) for thread in (0, 1) for call in range(calls)}
    np.testing.assert_allclose(alone[1, 7], expected_live_prob(*inputs(1, 7)), rtol=1e-6)
    start = threading.Barrier(2)

    def worker(thread):
        start.wait(timeout=10)
        return [engine.run(*inputs(thread, call)) for call in range(calls)]

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(worker, thread) for thread in (0, 1)]
        shared = {thread: future.result(timeout=120) for thread, future in zip((0, 1), futures)}
    engine.close()
    for thread in (0, 1):
        for call in range(calls):
            np.testing.assert_array_equal(shared[thread][call], alone[thread, call], err_msg=f"thread {thread} {call}")


def test_runner_reports_and_runs_the_bytes_it_hashed(fake_plan):
    plan, gpu = fake_plan
    with TensorRTEngine(plan) as engine:
        digest = hashlib.sha256(plan.read_bytes()).hexdigest()
        assert engine.model_sha256 == digest == load_sidecar(plan).plan_sha256
        assert gpu.deserialized == [plan.read_bytes()]
        assert engine.precision == "fp32"
        assert engine.describe()["model_sha256"] == engine.model_sha256
        assert engine.describe()["precision"] == "fp32"


def test_runner_refuses_a_plan_changed_since_its_sidecar_without_deserialising_it(fake_plan):
    plan, gpu = fake_plan
    plan.write_bytes(b"another plan")
    with pytest.raises(EngineMismatch, match="does not match its sidecar's SHA-256"):
        TensorRTEngine(plan)
    assert gpu.deserialized == []


def test_closed_runner_frees_its_buffers_and_refuses_to_run(fake_plan):
    plan, gpu = fake_plan
    engine = TensorRTEngine(plan)
    assert len(gpu.memory) == 3
    engine.close()
    assert gpu.memory == {}
    with pytest.raises(EngineError, match="closed"):
        engine.run(_shared_noise(), np.ones((1, 3), bool))


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


def _installed_as_packages(monkeypatch, gpu):
    """The fake tensorrt and pycuda modules, findable by ``available_engines`` as installed packages."""
    import importlib.machinery

    for name, module in gpu.modules().items():
        monkeypatch.setattr(module, "__spec__", importlib.machinery.ModuleSpec(name, None), raising=False)
        monkeypatch.setitem(sys.modules, name, module)


def test_with_a_trusted_key_the_plan_sidecar_must_carry_the_signature_too(fake_plan, tmp_path, monkeypatch):
    """Issue 21 item 1: editing only the sidecar moved the threshold, and the plan's signature still passed."""
    from click.testing import CliRunner

    from mmdg_edge.checkpoint import _metadata_digest
    from mmdg_edge.cli import main
    from mmdg_edge.detector import Detector
    from mmdg_edge.errors import SignatureError
    from mmdg_edge.signing import create_key_pair, load_private_key, sign_file

    plan, gpu = fake_plan
    _installed_as_packages(monkeypatch, gpu)
    create_key_pair(tmp_path / "kiosk.key", tmp_path / "kiosk.pub")
    load = dict(engine="tensorrt", trusted_key=tmp_path / "kiosk.pub")
    sign_file(plan, load_private_key(tmp_path / "kiosk.key"), "model")
    with pytest.raises(SignatureError, match=r"tiny\.plan\.json is not signed"):
        Detector.load(plan, **load)
    assert gpu.deserialized == []  # refused before the plan reached TensorRT
    result = CliRunner().invoke(main, ["sign", str(plan), "--key", str(tmp_path / "kiosk.key"), "--force"])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [f"{plan}.sig", f"{sidecar_path(plan)}.sig"]
    assert Detector.load(plan, **load).threshold == 0.4
    data = json.loads(sidecar_path(plan).read_text())
    data["metadata"]["threshold"] = 0.01  # the forgery of the issue: its own digest recomputed
    data["metadata"]["metadata_sha256"] = _metadata_digest(data["metadata"])
    sidecar_path(plan).write_text(json.dumps(data))
    assert TensorRTEngine(plan).metadata["threshold"] == 0.01  # a valid sidecar for the engine alone
    with pytest.raises(SignatureError, match=r"tiny\.plan\.json was changed after it was signed"):
        Detector.load(plan, **load)
