"""torch engine: eager FP32 equals the model, FP16/BF16 close to it, devices and dtypes checked."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch engine needs torch (torch extra)")

from mmdg_edge.checkpoint import load_checkpoint_bytes  # noqa: E402
from mmdg_edge.engines import torch_engine  # noqa: E402
from mmdg_edge.engines.torch_engine import TorchEngine  # noqa: E402
from mmdg_edge.errors import CheckpointError, EngineError  # noqa: E402

MASK = np.array([[True, True, True], [True, False, True], [False, True, False], [False, False, True]])


@pytest.fixture(scope="module")
def inputs():
    crops = torch.randn(4, 3, 3, 224, 224, generator=torch.Generator().manual_seed(21)).numpy()
    return crops, MASK


@pytest.fixture(scope="module")
def fp32(tiny_checkpoint):
    return TorchEngine(tiny_checkpoint)


def test_fp32_engine_reproduces_the_model(fp32, tiny_model, inputs):
    crops, mask = inputs
    with torch.no_grad():
        expected = tiny_model.live_prob(torch.from_numpy(crops), torch.from_numpy(mask)).numpy()
    np.testing.assert_allclose(fp32.run(crops, mask), expected, atol=1e-6, rtol=0)
    assert fp32.metadata["threshold"] == 0.4
    assert fp32.describe()["precision"] == "fp32" and fp32.describe()["device"] == "cpu"


@pytest.mark.parametrize("dtype, tolerance", [("fp16", 1e-2), ("bf16", 3e-2)])
def test_half_precisions_stay_close_to_fp32_on_cpu(tiny_checkpoint, fp32, inputs, dtype, tolerance):
    crops, mask = inputs
    engine = TorchEngine(tiny_checkpoint, dtype=dtype)
    live_prob = engine.run(crops, mask)
    assert live_prob.dtype == np.float32
    assert engine.precision == engine.describe()["precision"] == dtype
    np.testing.assert_allclose(live_prob, fp32.run(crops, mask), atol=tolerance, rtol=0)


def test_from_model_wraps_an_in_memory_model(tiny_checkpoint, fp32, inputs):
    from mmdg_edge.checkpoint import load_checkpoint

    model, metadata = load_checkpoint(tiny_checkpoint)
    engine = TorchEngine.from_model(model, metadata)
    np.testing.assert_array_equal(engine.run(*inputs), fp32.run(*inputs))
    assert engine.describe()["model"] == "<in memory>"
    assert engine.model_sha256 is None and engine.describe()["model_sha256"] is None


def test_engine_names_the_checkpoint_bytes_it_loaded(fp32, tiny_checkpoint):
    assert fp32.model_sha256 == hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    assert fp32.describe()["model_sha256"] == fp32.model_sha256


def test_digest_and_weights_come_from_one_read(tiny_checkpoint, fp32, inputs, tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    path.write_bytes(tiny_checkpoint.read_bytes())
    read = torch_engine.read_checkpoint_bytes

    def read_then_replace(checkpoint):
        data = read(checkpoint)
        path.write_bytes(b"another file, written after the read")
        return data

    monkeypatch.setattr(torch_engine, "read_checkpoint_bytes", read_then_replace)
    engine = TorchEngine(path)
    assert engine.model_sha256 == fp32.model_sha256
    np.testing.assert_array_equal(engine.run(*inputs), fp32.run(*inputs))


def test_checkpoint_bytes_are_refused_like_the_file(tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    cases = [
        (b"\x80\x02}q\x00.", "pickle"),
        (data[:-1000], "corrupt safetensors file"),
        (bytes(flipped), "SHA-256"),
        (data[:8] + b"[" + data[9:], "not JSON"),
    ]
    for content, message in cases:
        with pytest.raises(CheckpointError, match=f"model.bin: .*{message}"):
            load_checkpoint_bytes(content, source="model.bin")


@pytest.mark.parametrize(
    "options, error, message",
    [({"dtype": "int8"}, ValueError, "dtype: expected one of"), ({"device": "tpu"}, ValueError, "device: expected")],
)
def test_bad_options_are_refused(tiny_checkpoint, options, error, message):
    with pytest.raises(error, match=message):
        TorchEngine(tiny_checkpoint, **options)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA; the refusal needs a CPU-only torch")
def test_cuda_without_a_gpu_is_an_engine_error(tiny_checkpoint):
    with pytest.raises(EngineError, match="torch sees no CUDA device"):
        TorchEngine(tiny_checkpoint, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fp16_stays_close_to_cpu_fp32(tiny_checkpoint, fp32, inputs):
    engine = TorchEngine(tiny_checkpoint, device="cuda", dtype="fp16")
    np.testing.assert_allclose(engine.run(*inputs), fp32.run(*inputs), atol=1e-2, rtol=0)


@pytest.mark.slow
def test_compiled_engine_matches_eager(tiny_checkpoint, fp32, inputs):
    engine = TorchEngine(tiny_checkpoint, compile=True)
    np.testing.assert_allclose(engine.run(*inputs), fp32.run(*inputs), atol=1e-5, rtol=0)
