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
