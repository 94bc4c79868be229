"""scripts/convert_face_models.py: the bundled ONNX files are what it makes from the source models,
its PRelu rewrite is the same function, and it refuses a source it does not know."""
import hashlib
from pathlib import Path

import numpy as np
import pytest

from script_modules import loaded

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "tests" / "data" / "face_models"


@pytest.fixture(scope="module")
def convert():
    pytest.importorskip("tflite2onnx", reason="the converter (tflite2onnx, dev extra) makes the face models")
    with loaded("scripts/convert_face_models.py") as module:
        yield module


@pytest.mark.parametrize("kept_in", ["another folder", "the source folder"])
def test_the_script_reproduces_the_bundled_models_byte_for_byte(convert, tmp_path, kept_in):
    """Also from the kept copies themselves (SOURCE is the --tflite-out folder): nothing to copy there."""
    pytest.importorskip("ai_edge_litert", reason="the script's parity check runs the TFLite runtime (dev extra)")
    kept = tmp_path / "tflite" if kept_in == "another folder" else SOURCES
    convert.main([str(SOURCES), "--out", str(tmp_path / "onnx"), "--tflite-out", str(kept)])
    for spec in convert.MODELS:
        made = (tmp_path / "onnx" / spec.target).read_bytes()
        assert made == (REPO / "mmdg_edge" / "assets" / spec.target).read_bytes(), spec.target
        assert hashlib.sha256((kept / spec.source).read_bytes()).hexdigest() == spec.sha256


def test_prelu_rewrite_is_the_same_function_for_any_slope(convert):
    onnx = pytest.importorskip("onnx", reason="the rewrite edits an ONNX graph")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    slope = np.array([-1.1, -0.2, 0.0, 0.3, 1.0, 1.5], np.float32).reshape(1, 6, 1, 1)
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "a"], ["y"], name="act")], "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 4, 4])], [numpy_helper.from_array(slope, "a")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    assert convert.replace_prelu(model) == 1
    assert [node.op_type for node in model.graph.node] == ["Conv", "Relu", "Conv", "Add"]
    onnx.checker.check_model(model)
    x = np.random.default_rng(0).normal(0, 2, (1, 6, 4, 4)).astype(np.float32)
    (y,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(y, np.where(x >= 0, x, slope * x), rtol=1e-6, atol=1e-6)


def test_prelu_rewrite_refuses_a_slope_that_is_not_one_per_channel(convert):
    pytest.importorskip("onnx", reason="the rewrite edits an ONNX graph")
    from onnx import TensorProto, helper, numpy_helper

    slope = np.full((1, 1, 4, 4), 0.25, np.float32)  # one per pixel: no depthwise 1×1 convolution computes it
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "a"], ["y"], name="act")], "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 4, 4])], [numpy_helper.from_array(slope, "a")])
    with pytest.raises(SystemExit, match=r"act: PRelu slope of shape \(1, 1, 4, 4\); expected one per channel"):
        convert.replace_prelu(helper.make_model(graph))


def test_a_source_with_another_digest_is_refused(convert, tmp_path):
    for spec in convert.MODELS:
        (tmp_path / spec.source).write_bytes((SOURCES / spec.source).read_bytes() + b"\0")
    with pytest.raises(SystemExit, match="SHA-256 .* expected .* refusing another model"):
        convert.main([str(tmp_path), "--out", str(tmp_path / "onnx"), "--tflite-out", str(tmp_path / "tflite")])
    assert not (tmp_path / "onnx").exists()
