"""The files bundled with the SDK (``mmdg_edge/assets``, see its PROVENANCE.md), in one place."""
from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_MODEL = ASSETS / "demo.onnx"
"""The demo model (tiny MMDG++ trained on the synthetic camera: a demonstration, not a security model)."""
DEMO_CHECKPOINT = ASSETS / "demo.safetensors"
DEMO_RECORDING = ASSETS / "demo.db3"
"""The demo recording: live, print, replay, live, from the synthetic camera through the recorder."""
DEMO_SEGMENTS = ASSETS / "demo_segments.json"
SYNTHETIC_FACE = ASSETS / "astronaut_face.png"
"""The synthetic camera's base face: the texture square cut from the astronaut photo (NASA, public domain)."""
D435_RECORDING = ASSETS / "d435_office.bag"
"""A real D435 recording of an office corner, nobody in view."""
BLAZEFACE_MODEL = ASSETS / "blazeface_short.onnx"
"""MediaPipe's BlazeFace short-range face detector (Apache-2.0), converted to ONNX."""
BLAZEFACE_FULL_MODEL = ASSETS / "blazeface_full.onnx"
"""MediaPipe's BlazeFace full-range face detector (Apache-2.0), converted to ONNX."""
FACE_MESH_MODEL = ASSETS / "face_mesh.onnx"
"""MediaPipe's Face Mesh (468 3-D landmarks, Apache-2.0), converted to ONNX."""
MAKE_FACE_MODELS = "reinstall mmdg-edge, or make it with scripts/convert_face_models.py (dev extra)"


def bundled(path: Path, how_to_make: str) -> Path:
    """``path`` if the bundled file is there, else FileNotFoundError saying how to make it."""
    if not path.is_file():
        raise FileNotFoundError(f"the bundled file {path} is missing; {how_to_make}")
    return path
