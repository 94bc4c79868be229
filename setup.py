"""mmdg-edge: multimodal face anti-spoofing (MMDG++) for RealSense-class kiosks.

`sensors/`, `engines/` and `train/` are top-level folders in the repository but install as
`mmdg_edge.sensors`, `mmdg_edge.engines` and `mmdg_edge.train`: generic names such as
`sensors` must never land in site-packages.
"""
import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "mmdg_edge" / "version.py").read_text()).group(1)

# torch and torchvision move together: other pairs break `torchvision::nms` under open_clip.
TORCH = ["torch==2.14.1", "torchvision==0.29.1", "open_clip_torch>=2.24", "onnx>=1.16", "onnxscript>=0.1"]
TRAIN = TORCH + ["tqdm>=4.60", "scikit-learn>=1.3", "scipy>=1.10", "matplotlib>=3.7"]
REALSENSE = ["pyrealsense2>=2.55"]
TENSORRT = ["tensorrt>=10", "pycuda>=2022.1"]
# The face models' converter and the TFLite runtime they are parity-tested against: dev only, the
# kiosk runs the converted ONNX files on onnxruntime (scripts/convert_face_models.py).
FACE_MODELS = ["tflite2onnx>=0.4.1", "ai-edge-litert>=2.0"]
DEV = TRAIN + REALSENSE + FACE_MODELS + ["pytest>=7.4", "pytest-timeout>=2.2", "scikit-image>=0.21", "psutil>=5.9",
                                         "jsonschema>=4"]

setup(
    name="mmdg-edge",
    version=VERSION,
    description="MMDG++ multimodal (RGB, depth, IR) face anti-spoofing SDK for edge kiosks",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["mmdg_edge", "mmdg_edge.commands", "mmdg_edge.sensors", "mmdg_edge.engines", "mmdg_edge.train"],
    package_dir={
        "mmdg_edge": "mmdg_edge",
        "mmdg_edge.commands": "mmdg_edge/commands",
        "mmdg_edge.sensors": "sensors",
        "mmdg_edge.engines": "engines",
        "mmdg_edge.train": "train",
    },
    package_data={"mmdg_edge": ["assets/*"]},
    install_requires=[
        "numpy>=1.24",
        "opencv-python<5",  # 5.x no longer ships the Haar cascades the aligner uses offline
        "onnxruntime>=1.17",
        "click>=8.1",
        "safetensors>=0.4",
        "cryptography>=41",  # Ed25519 signatures of models and device profiles (mmdg_edge.signing)
    ],
    extras_require={
        "torch": TORCH,
        "train": TRAIN,
        "realsense": REALSENSE,
        "tensorrt": TENSORRT,
        "dev": DEV,
    },
    entry_points={"console_scripts": ["mmdg-edge=mmdg_edge.cli:main"]},
)
