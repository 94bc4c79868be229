"""Engine fixtures (the tiny checkpoint and its ONNX export live in tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_onnx_int8(tiny_onnx) -> Path:
    from mmdg_edge.engines.export import quantize_onnx

    return quantize_onnx(tiny_onnx, tiny_onnx.with_name("tiny.int8.onnx"), "dynamic")
