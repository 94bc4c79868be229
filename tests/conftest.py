"""Shared fixtures. Module-specific fixtures stay in their test files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
D435_BAG = SHARED_DATA / "realsense" / "single_depth_color_640x480.bag"
PROTOCOLS = SHARED_DATA / "protocols"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def d435_bag() -> Path:
    if not D435_BAG.exists():
        pytest.skip(f"the real D435 recording is not beside this checkout ({D435_BAG})")
    return D435_BAG


@pytest.fixture(scope="session")
def protocols_dir() -> Path:
    if not PROTOCOLS.exists():
        pytest.skip(f"the benchmark split lists are not beside this checkout ({PROTOCOLS})")
    return PROTOCOLS


@pytest.fixture(scope="session")
def tiny_config():
    from mmdg_edge.model import MMDGConfig

    return MMDGConfig.tiny()


@pytest.fixture(scope="session")
def tiny_model(tiny_config):
    """A seeded tiny MMDG++ in eval mode whose adapters are switched on (non-zero up-projections),
    so mask and adapter behaviour is visible in the outputs."""
    import torch

    from mmdg_edge.model import create_model

    torch.manual_seed(0)
    model = create_model(tiny_config)
    with torch.no_grad():
        for block in model.adapters:
            for adapter in block:
                adapter.up.weight.normal_(0.0, 0.5)
                adapter.up.bias.normal_(0.0, 0.1)
    return model.eval()


@pytest.fixture
def random_crops():
    """Random CLIP-normalised crops (B, 3, 3, 224, 224) from a fixed seed."""
    import torch

    def make(batch: int, seed: int = 0):
        return torch.randn(batch, 3, 3, 224, 224, generator=torch.Generator().manual_seed(seed))

    return make


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
def synthetic_landmarks():
    """(landmarks, face box) of a live synthetic face at 0.6 m in 640×480, from the real aligner."""
    from mmdg_edge.align import FaceAligner
    from mmdg_edge.sensors.synthetic import SceneSpec, render_scene

    frameset = render_scene(SceneSpec("live", 0, distance_m=0.6), 0, np.random.default_rng(0))
    result = FaceAligner().align(frameset)
    return result.landmarks, result.crops.box


@pytest.fixture(scope="session")
def new_subject_fields():
    """The Subject fields added with face geometry, mirror and marks, and their defaults (which change nothing)."""
    import dataclasses

    from mmdg_edge.sensors.synthetic import Subject

    before = {"id", "skin_tone", "hair_colour", "hair_style", "glasses", "glasses_colour", "width_scale",
              "height_scale", "eye_spacing", "head_depth_m", "nose_m", "neck_width"}
    return {field.name: field.default for field in dataclasses.fields(Subject) if field.name not in before}
