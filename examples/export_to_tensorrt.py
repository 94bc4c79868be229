"""Export a checkpoint to ONNX and build a TensorRT FP16 plan, as on a Jetson or a desktop GPU.

    python examples/export_to_tensorrt.py CHECKPOINT.safetensors|demo [--out build] [--opset 18]

On a Jetson (JetPack 6: Python 3.10, TensorRT and CUDA torch from JetPack):
    sudo apt-get install libusb-1.0-0 && pip install -e ".[torch,realsense]" pycuda
    python examples/export_to_tensorrt.py demo --opset 18   # --opset 17 for TensorRT 8.5 (JetPack 5)
The plan is tied to the GPU and TensorRT version it is built with (its sidecar JSON records
both), so build it on the target device. Steps: export (any machine with torch), check the
export against the checkpoint in onnxruntime, build the plan (needs TensorRT), check the plan
against onnxruntime. Without TensorRT it stops after the ONNX check and says what to install
(exit code 3).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from mmdg_edge import FaceAligner, encode, open_source
from mmdg_edge.assets import DEMO_CHECKPOINT
from mmdg_edge.engines import create_engine
from mmdg_edge.engines.export import export_onnx
from mmdg_edge.errors import MissingDependency

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("checkpoint", help="a .safetensors checkpoint, or 'demo'")
parser.add_argument("--out", type=Path, default=Path("build"))
parser.add_argument("--opset", type=int, default=18)
args = parser.parse_args()

checkpoint = DEMO_CHECKPOINT if args.checkpoint == "demo" else Path(args.checkpoint)
args.out.mkdir(parents=True, exist_ok=True)
onnx_path = export_onnx(checkpoint, args.out / "model.onnx", opset=args.opset)

aligner, faces = FaceAligner(), []  # real face crops to compare on: the synthetic camera through the aligner
with open_source("synthetic", seed=0, num_frames=16) as frames:
    for frameset in frames:
        result = aligner.align(frameset)
        if result.status == "ok" and len(faces) < 4:
            faces.append(result.crops)
crops, mask = encode(faces)
reference = create_engine("torch", checkpoint).run(crops, mask)
exported = create_engine("onnxruntime", onnx_path).run(crops, mask)
print(f"ONNX opset {args.opset}: {onnx_path}, max |live_prob - torch| = {np.abs(exported - reference).max():.2e}")

try:
    from mmdg_edge.engines.tensorrt_engine import build_engine

    plan = build_engine(onnx_path, args.out / "model.plan", fp16=True, min_batch=1, opt_batch=1, max_batch=8,
                        timing_cache=args.out / "timing.cache")
    fp16 = create_engine("tensorrt", plan).run(crops, mask)
except MissingDependency as exc:
    print(f"TensorRT build skipped: {exc}")
    sys.exit(3)
print(f"TensorRT FP16 plan: {plan}, max |live_prob - onnxruntime| = {np.abs(fp16 - exported).max():.2e}")
