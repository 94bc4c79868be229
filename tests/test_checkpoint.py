"""Safe checkpoints: bit-exact round trip; tampering, wrong configs and pickles are refused."""
import json
import pickle
import struct

import pytest
import torch

from mmdg_edge.checkpoint import (
    METADATA_KEY,
    _metadata_digest,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from mmdg_edge.errors import CheckpointError
from mmdg_edge.preprocess import NORMALIZATION_VERSION


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_model):
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_checkpoint(path, tiny_model, threshold=0.37, provenance={"protocol": "syn:012-3", "seed": 7})
    return path


def _rewrite_header(src, dst, edit):
    """Copy a safetensors file, letting `edit(metadata_dict)` change the mmdg_edge metadata."""
    raw = src.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    meta = json.loads(header["__metadata__"][METADATA_KEY])
    edit(meta)
    header["__metadata__"][METADATA_KEY] = json.dumps(meta)
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    dst.write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + size :])
    return dst


def test_round_trip_is_bit_exact(saved, tiny_model, random_crops):
    model, meta = load_checkpoint(saved)
    for name, value in tiny_model.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name
    assert meta["threshold"] == 0.37
    assert meta["provenance"] == {"protocol": "syn:012-3", "seed": 7}
    assert meta["modalities"] == ["rgb", "depth", "ir"] and meta["classes"] == ["attack", "live"]
    assert meta["preprocess"]["version"] == NORMALIZATION_VERSION
    assert not model.training
    crops, mask = random_crops(2), torch.ones(2, 3, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(model(crops, mask).logits, tiny_model(crops, mask).logits)


def test_read_metadata_needs_no_torch_model(saved):
    meta = read_metadata(saved)
    assert meta["config"]["clip_overrides"]["vision_cfg"]["width"] == 64


def test_edited_metadata_is_refused(saved, tmp_path):
    bad = _rewrite_header(saved, tmp_path / "bad.safetensors", lambda m: m.update(threshold=0.01))
    with pytest.raises(CheckpointError, match="metadata was modified"):
        read_metadata(bad)


def test_modified_weights_are_refused(saved, tmp_path):
    raw = bytearray(saved.read_bytes())
    raw[-5] ^= 0xFF
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(bad)


def test_weights_that_do_not_fit_the_config_are_refused(saved, tmp_path):
    def deeper(meta):
        meta["config"]["clip_overrides"]["vision_cfg"]["layers"] = 3
        meta["metadata_sha256"] = _metadata_digest(meta)

    bad = _rewrite_header(saved, tmp_path / "deeper.safetensors", deeper)
    with pytest.raises(CheckpointError, match="do not fit the stored config"):
        load_checkpoint(bad)


def test_other_crop_encoding_is_refused(saved, tmp_path):
    def old_encoding(meta):
        meta["preprocess"]["version"] = "someone-else/0"
        meta["metadata_sha256"] = _metadata_digest(meta)

    bad = _rewrite_header(saved, tmp_path / "enc.safetensors", old_encoding)
    with pytest.raises(CheckpointError, match="someone-else/0"):
        read_metadata(bad)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_that_would_run_code_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"state_dict": _Exploit(str(marker))}, protocol=2))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(evil)
    assert not marker.exists()


def test_torch_save_file_is_refused(tmp_path, tiny_model):
    path = tmp_path / "model.pt"
    torch.save(tiny_model.state_dict(), path)
    with pytest.raises(CheckpointError, match="never unpickles"):
        read_metadata(path)


@pytest.mark.parametrize(
    "content,message",
    [(None, "no such checkpoint"), (b"", "truncated"), (b"\x10\x00\x00\x00\x00\x00\x00\x00{}", "impossible"),
     (b"\xff" * 64, "impossible")],
)
def test_missing_empty_and_corrupt_files_are_refused(tmp_path, content, message):
    path = tmp_path / "x.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_metadata(path)


def test_truncated_weights_are_refused(saved, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(saved.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_checkpoint(cut)


def test_directory_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not a regular file"):
        read_metadata(tmp_path)


def test_save_rejects_bad_arguments(tmp_path, tiny_model):
    with pytest.raises(ValueError, match="safetensors"):
        save_checkpoint(tmp_path / "m.pt", tiny_model)
    with pytest.raises(ValueError, match="threshold"):
        save_checkpoint(tmp_path / "m.safetensors", tiny_model, threshold=1.5)


def test_a_header_length_whose_low_byte_looks_like_pickle_still_loads(tiny_model, tmp_path):
    import struct

    path = tmp_path / "m.safetensors"
    for pad in range(300):  # vary the header length until its first byte is 0x80, pickle's magic
        save_checkpoint(path, tiny_model, threshold=0.5, provenance={"note": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80 and struct.unpack("<Q", path.read_bytes()[:8])[0] % 256 == 0x80
    model, metadata = load_checkpoint(path)
    assert metadata["provenance"]["note"] == "x" * pad
