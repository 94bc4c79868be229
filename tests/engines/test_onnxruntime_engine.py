"""onnxruntime engine on hand-built ONNX graphs that carry our metadata (no torch needed)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import onnxruntime as ort
import pytest

onnx = pytest.importorskip("onnx", reason="building test graphs needs the onnx package (torch extra)")
from onnx import TensorProto, helper  # noqa: E402

from mmdg_edge.checkpoint import CLASSES, FORMAT_VERSION, _metadata_digest  # noqa: E402
from mmdg_edge.engines.base import EXPORT_KEY  # noqa: E402
from mmdg_edge.engines.onnxruntime_engine import OnnxRuntimeEngine, resolve_providers  # noqa: E402
from mmdg_edge.errors import EngineError, EngineMismatch  # noqa: E402
from mmdg_edge.frames import MODALITIES  # noqa: E402
from mmdg_edge.preprocess import PreprocessConfig  # noqa: E402


def make_metadata(**changes):
    metadata = {
        "format_version": FORMAT_VERSION,
        "sdk_version": "0.1.0",
        "config": {},
        "modalities": list(MODALITIES),
        "classes": list(CLASSES),
        "preprocess": PreprocessConfig().to_dict(),
        "threshold": 0.37,
        "provenance": {},
        "sha256": "0" * 64,
    }
    metadata.update(changes)
    metadata["metadata_sha256"] = _metadata_digest(metadata)
    return metadata


def write_model(path, metadata=None, export_info=None, crops_name="crops", mask_shape=("batch", 3)):
    """live_prob = sigmoid(mean(crops over a sample) + 0.1 · number of present modalities)."""
    crops = helper.make_tensor_value_info(crops_name, TensorProto.FLOAT, ["batch", 3, 3, 224, 224])
    mask = helper.make_tensor_value_info("mask", TensorProto.BOOL, list(mask_shape))
    out = helper.make_tensor_value_info("live_prob", TensorProto.FLOAT, ["batch"])
    nodes = [
        helper.make_node("ReduceMean", [crops_name, "axes_crops"], ["mean"], keepdims=0),
        helper.make_node("Cast", ["mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["mask_f", "axes_mask"], ["count"], keepdims=0),
        helper.make_node("Mul", ["count", "tenth"], ["bonus"]),
        helper.make_node("Add", ["mean", "bonus"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["live_prob"]),
    ]
    initializers = [
        helper.make_tensor("axes_crops", TensorProto.INT64, [4], [1, 2, 3, 4]),
        helper.make_tensor("axes_mask", TensorProto.INT64, [1], [1]),
        helper.make_tensor("tenth", TensorProto.FLOAT, [], [0.1]),
    ]
    graph = helper.make_graph(nodes, "toy", [crops, mask], [out], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    props = {}
    if metadata is not False:
        props["mmdg_edge"] = json.dumps(metadata or make_metadata())
    if export_info is not False:
        props[EXPORT_KEY] = json.dumps(export_info or {"precision": "fp32", "opset": 18})
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def expected(crops, mask):
    return 1.0 / (1.0 + np.exp(-(crops.reshape(len(crops), -1).mean(1) + 0.1 * mask.sum(1))))


def test_run_returns_the_graph_value_for_each_row(tmp_path, rng):
    engine = OnnxRuntimeEngine(write_model(tmp_path / "toy.onnx"), intra_op_num_threads=1)
    crops = rng.normal(0.2, 1.0, (3, 3, 3, 224, 224)).astype(np.float32)
    mask = np.array([[True, False, False], [True, True, True], [False, True, True]])
    live_prob = engine.run(crops, mask)
    assert live_prob.dtype == np.float32
    np.testing.assert_allclose(live_prob, expected(crops, mask), rtol=1e-5)
    # The hand value: mean ≈ 0.2 and 1, 3, 2 present modalities.
    np.testing.assert_allclose(live_prob, 1 / (1 + np.exp(-(0.2 + np.array([0.1, 0.3, 0.2])))), atol=2e-3)


def test_metadata_and_report_come_from_the_file(tmp_path):
    engine = OnnxRuntimeEngine(write_model(tmp_path / "toy.onnx"))
    assert engine.metadata["threshold"] == 0.37
    assert engine.metadata["preprocess"]["version"] == PreprocessConfig().version
    report = engine.describe()
    assert report["providers"] == ["CPUExecutionProvider"]
    assert report["precision"] == "fp32"


def test_metadata_property_is_a_copy(tmp_path):
    engine = OnnxRuntimeEngine(write_model(tmp_path / "toy.onnx"))
    engine.metadata["threshold"] = 0.99
    assert engine.metadata["threshold"] == 0.37


@pytest.mark.parametrize(
    "metadata, export_info, reason",
    [
        (False, None, "has no 'mmdg_edge' metadata"),
        (None, False, "has no 'mmdg_edge_export' metadata"),
        (make_metadata(preprocess={**PreprocessConfig().to_dict(), "version": "other-crops/9"}), None, "other-crops/9"),
        (make_metadata(modalities=["depth", "rgb", "ir"]), None, "modality order"),
        (make_metadata(classes=["live", "attack"]), None, "class order"),
        ({**make_metadata(), "threshold": 0.9}, None, "modified after saving"),
        (None, {"precision": "fp8"}, "precision 'fp8'"),
    ],
    ids=["no-metadata", "no-export-info", "preprocess", "modalities", "classes", "tampered", "precision"],
)
def test_mismatched_metadata_is_refused_with_the_reason(tmp_path, metadata, export_info, reason):
    path = write_model(tmp_path / "bad.onnx", metadata=metadata, export_info=export_info)
    with pytest.raises(EngineMismatch, match=reason):
        OnnxRuntimeEngine(path)


def test_wrong_input_name_is_refused(tmp_path):
    path = write_model(tmp_path / "bad.onnx", crops_name="images")
    with pytest.raises(EngineMismatch, match=r"inputs are \['images', 'mask'\]"):
        OnnxRuntimeEngine(path)


def test_fixed_batch_input_is_refused(tmp_path):
    path = write_model(tmp_path / "bad.onnx", mask_shape=(1, 3))
    with pytest.raises(EngineMismatch, match="'mask' is tensor\\(bool\\) \\[1, 3\\].*dynamic batch"):
        OnnxRuntimeEngine(path)


@pytest.mark.parametrize("keep", [0, 10, 0.5, 0.97])
def test_truncated_onnx_is_refused_naming_the_file(tmp_path, keep):
    data = write_model(tmp_path / "toy.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    with pytest.raises(EngineError, match="cut.onnx"):
        OnnxRuntimeEngine(cut)


def test_missing_file_is_an_engine_error(tmp_path):
    with pytest.raises(EngineError, match="no such ONNX file"):
        OnnxRuntimeEngine(tmp_path / "absent.onnx")


def test_providers_keep_the_requested_order_minus_unavailable_ones():
    available = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(None, available) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(["CPUExecutionProvider", "CUDAExecutionProvider"], available) == [
        "CPUExecutionProvider",
        "CUDAExecutionProvider",
    ]
    assert resolve_providers(None, ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(EngineError, match="none of \\['TensorrtExecutionProvider'\\] is available"):
        resolve_providers(["TensorrtExecutionProvider"], available)
    with pytest.raises(ValueError, match="providers: expected a list"):
        resolve_providers("CPUExecutionProvider", available)


@pytest.mark.parametrize("threads", [-1, 1.5, True])
def test_thread_options_are_checked(tmp_path, threads):
    with pytest.raises(ValueError, match="intra_op_num_threads"):
        OnnxRuntimeEngine(write_model(tmp_path / "toy.onnx"), intra_op_num_threads=threads)


def test_closed_engine_refuses_to_run(tmp_path):
    with OnnxRuntimeEngine(write_model(tmp_path / "toy.onnx")) as engine:
        pass
    with pytest.raises(EngineError, match="closed"):
        engine.run(np.zeros((1, 3, 3, 224, 224), np.float32), np.ones((1, 3), bool))


def test_fp32_and_int8_exports_of_one_checkpoint_name_their_own_file_bytes(tiny_onnx, tiny_onnx_int8):
    pytest.importorskip("torch", reason="exporting the tiny checkpoint needs torch")
    fp32, int8 = OnnxRuntimeEngine(tiny_onnx), OnnxRuntimeEngine(tiny_onnx_int8)
    # The checkpoint digest both exports carry cannot tell them apart; the file digest can.
    assert fp32.metadata["sha256"] == int8.metadata["sha256"]
    assert fp32.model_sha256 == hashlib.sha256(tiny_onnx.read_bytes()).hexdigest()
    assert int8.model_sha256 == hashlib.sha256(tiny_onnx_int8.read_bytes()).hexdigest()
    assert fp32.model_sha256 != int8.model_sha256
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    assert int8.describe()["model_sha256"] == int8.model_sha256 and int8.describe()["precision"] == "int8"


def test_the_bytes_checked_and_hashed_are_the_bytes_onnxruntime_runs(tmp_path, monkeypatch, rng):
    path = write_model(tmp_path / "toy.onnx")
    original = path.read_bytes()
    create_session = ort.InferenceSession

    def replace_file_then_create(model, **options):
        path.write_bytes(b"another file, written after the checks")
        return create_session(model, **options)

    monkeypatch.setattr(ort, "InferenceSession", replace_file_then_create)
    engine = OnnxRuntimeEngine(path)
    assert engine.model_sha256 == hashlib.sha256(original).hexdigest()
    crops = rng.normal(0.2, 1.0, (2, 3, 3, 224, 224)).astype(np.float32)
    mask = np.array([[True, False, False], [True, True, True]])
    np.testing.assert_allclose(engine.run(crops, mask), expected(crops, mask), rtol=1e-5)
