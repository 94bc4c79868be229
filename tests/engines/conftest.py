"""Engine fixtures: one tiny checkpoint and one export per session (the export takes ~20 s)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model, tmp_path_factory) -> Path:
    from mmdg_edge.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("engines") / "tiny.safetensors"
    return save_checkpoint(path, tiny_model, threshold=0.4, provenance={"note": "engine tests"})


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint) -> Path:
    from mmdg_edge.engines.export import export_onnx

    return export_onnx(tiny_checkpoint, tiny_checkpoint.with_suffix(".onnx"))


@pytest.fixture(scope="session")
def tiny_onnx_int8(tiny_onnx) -> Path:
    from mmdg_edge.engines.export import quantize_onnx

    return quantize_onnx(tiny_onnx, tiny_onnx.with_name("tiny.int8.onnx"), "dynamic")
