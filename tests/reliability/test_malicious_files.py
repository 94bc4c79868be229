"""Malicious files and paths (issue #9): code-running pickles, directory traversal, symlink loops, FIFOs.

Each is refused with an error naming the file, before anything is unpickled or read, and nothing hangs.
Model paths follow ``resolve_model_path``: the exact name "demo" is the only lookup in the bundled
assets (never joined to a directory); any other argument is an explicit path, allowed wherever it
points, whose content the engines then check.
"""
from __future__ import annotations

import os
import pickle
import shlex
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from mmdg_edge.checkpoint import load_checkpoint
from mmdg_edge.assets import ASSETS
from mmdg_edge.detector import Detector, resolve_model_path
from mmdg_edge.engines import create_engine
from mmdg_edge.errors import CheckpointError, EngineError, MMDGEdgeError, SourceError
from mmdg_edge.sensors import open_source

pytestmark = pytest.mark.timeout(60)


class _RunsCode:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def _pickled(protocol: int) -> Callable[[Any, Path], None]:
    return lambda payload, path: path.write_bytes(pickle.dumps({"state_dict": payload}, protocol=protocol))


def _torch_saved(payload: Any, path: Path) -> None:
    torch = pytest.importorskip("torch", reason="writing a torch.save archive needs torch")
    torch.save({"state_dict": payload}, path)


PAYLOADS = {
    "pickle-protocol-0": _pickled(0), "pickle-protocol-2": _pickled(2), "pickle-protocol-5": _pickled(5),
    "torch-save": _torch_saved,
}
LOADERS = {
    "load_checkpoint-pt": (".pt", load_checkpoint),
    "load_checkpoint-safetensors": (".safetensors", load_checkpoint),
    "Detector.load-pt": (".pt", Detector.load),
    "Detector.load-safetensors": (".safetensors", Detector.load),
    "Detector.load-onnx": (".onnx", Detector.load),
    "create_engine-torch-safetensors": (".safetensors", lambda path: create_engine("torch", path)),
}


def test_the_payload_really_runs_code_when_unpickled(tmp_path):
    """Guards the tests below: the marker they look for does appear when the payload is unpickled."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_RunsCode(marker), protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("loader", list(LOADERS))
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_code_running_pickle_is_refused_without_being_unpickled(payload, loader, tmp_path):
    suffix, load = LOADERS[loader]
    marker = tmp_path / "pwned"
    path = tmp_path / f"model{suffix}"
    PAYLOADS[payload](_RunsCode(marker), path)
    with pytest.raises((MMDGEdgeError, ValueError)) as refused:
        load(path)
    assert path.name in str(refused.value)
    assert not marker.exists(), "the pickle ran its code"


def test_demo_is_the_only_name_looked_up_in_the_assets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("demo") == ASSETS / "demo.onnx"
    with pytest.raises(FileNotFoundError, match="no such file"):
        resolve_model_path("demo.onnx")  # a path relative to the working directory, not an asset name


@pytest.fixture
def inside(tmp_path, monkeypatch) -> Path:
    """Work from tmp/a/b; tmp/etc/passwd is a text file two levels up."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    return tmp_path


def test_traversal_to_a_system_file_is_refused_before_it_is_read(inside):
    with pytest.raises(ValueError, match="cannot tell which engine reads 'passwd'"):
        Detector.load("../../etc/passwd")


def test_traversal_to_a_file_named_like_a_model_is_refused_by_its_content(inside):
    shutil.copy(inside / "etc" / "passwd", inside / "etc" / "passwd.onnx")
    with pytest.raises(EngineError, match="passwd.onnx"):
        Detector.load("../../etc/passwd.onnx")


def test_explicit_model_paths_outside_the_working_directory_stay_allowed(inside):
    (inside / "models").mkdir()
    shutil.copy(ASSETS / "demo.onnx", inside / "models" / "kiosk.onnx")
    assert Detector.load("../../models/kiosk.onnx").engine.path.name == "kiosk.onnx"
    assert Detector.load(inside / "models" / "kiosk.onnx").threshold == Detector.load("demo").threshold


def _loop(folder: Path, name: str) -> Path:
    """``name`` → ``name``.other → ``name``: a two-link loop."""
    path, other = folder / name, folder / f"other-{name}"
    path.symlink_to(other.name)
    other.symlink_to(path.name)
    return path


def _self_loop(folder: Path, name: str) -> Path:
    (folder / name).symlink_to(name)
    return folder / name


def _dangling(folder: Path, name: str) -> Path:
    (folder / name).symlink_to("nowhere")
    return folder / name


LINKS = {"loop": _loop, "self-loop": _self_loop, "dangling": _dangling}


@pytest.mark.parametrize("link", list(LINKS))
def test_model_path_through_a_broken_symlink_is_refused(link, tmp_path):
    path = LINKS[link](tmp_path, "model.onnx")
    with pytest.raises(FileNotFoundError, match="symbolic link that leads to no file") as refused:
        Detector.load(path)
    assert path.name in str(refused.value)


@pytest.mark.parametrize("suffix", [".bag", ".db3"])
@pytest.mark.parametrize("link", list(LINKS))
def test_recording_path_through_a_broken_symlink_is_refused(link, suffix, tmp_path):
    path = LINKS[link](tmp_path, f"recording{suffix}")
    with pytest.raises(SourceError, match="symbolic link that leads to no file") as refused:
        with open_source(str(path)) as frames:
            next(iter(frames))
    assert path.name in str(refused.value)


def _fifo(folder: Path, name: str) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("named pipes need a POSIX system")
    os.mkfifo(folder / name)
    return folder / name


def _device(folder: Path, name: str) -> Path:
    if not Path("/dev/zero").exists():
        pytest.skip("needs /dev/zero")
    (folder / name).symlink_to("/dev/zero")
    return folder / name


SPECIAL = {"fifo": _fifo, "link-to-dev-zero": _device}


@pytest.mark.parametrize("kind", list(SPECIAL))
def test_special_files_are_refused_without_reading_them(kind, tmp_path):
    """Reading a FIFO blocks until a writer comes, /dev/zero never ends: both are refused up front."""
    model = SPECIAL[kind](tmp_path, "model.onnx")
    with pytest.raises(FileNotFoundError, match="not a regular file"):
        Detector.load(model)
    recording = SPECIAL[kind](tmp_path, "recording.bag")
    with pytest.raises(SourceError, match="is not a file"):
        with open_source(str(recording)) as frames:
            next(iter(frames))
    checkpoint = SPECIAL[kind](tmp_path, "weights.safetensors")
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(checkpoint)
