"""The own-camera loop on a small synthetic collection: wall time per stage, and what fine-tuning buys.

A deployer's collection is staged on the synthetic camera: SUBJECTS subjects (``create_subject``),
each presenting themselves and one print, one replay and one mask of their own (``create_instrument``),
FRAMES framesets each, all on one camera. Then the loop as ``mmdg-edge`` runs it:

- collect: the recordings and the manifest (``collection.collect_synthetic``);
- crop cache: every recording through the aligner once (``capture_crops``; later stages hit the cache);
- fine-tune: the bundled demo model (tiny config) on the training subjects, ReGrad + ADPs;
- eval: the ISO/IEC 30107-3 report on the test subjects (the fine-tuned model, then the demo model);
- export + calibrate: FP32 ONNX, threshold on the validation subjects;
- bundle: FP32 + INT8 models, their profiles, the report and the DET plot.

The table after it compares the fine-tuned and the demo model on the same test subjects (subjects and
instruments neither saw in training), each at its own stored threshold, and the fine-tuned model at
the operating point calibrated on the validation subjects (what the bundle ships): per-species APCER
and BPCER with their 95 % Clopper–Pearson intervals.

    python benchmarks/bench_own_camera.py [--subjects 8] [--frames 30] [--epochs 3] [--work DIR]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mmdg_edge.assets import DEMO_CHECKPOINT
from mmdg_edge.calibration import calibrate_on_collection
from mmdg_edge.collection import capture_crops, collect_synthetic
from mmdg_edge.engines.export import export_onnx
from mmdg_edge.engines.onnxruntime_engine import OnnxRuntimeEngine
from mmdg_edge.preprocess import PreprocessConfig
from mmdg_edge.sensors.synthetic import ATTACK_KINDS
from mmdg_edge.train.bundle import create_bundle
from mmdg_edge.train.finetune import FROM_SCRATCH_SCHEDULE, evaluate_on_collection, finetune_on_collection
from mmdg_edge.train.trainer import TrainConfig


def _rate(rate) -> str:
    return f"{rate.value:6.3f} [{rate.lower:.3f}, {rate.upper:.3f}] ({rate.errors}/{rate.trials})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=8, help="synthetic subjects in the collection")
    parser.add_argument("--frames", type=int, default=30, help="framesets per presentation")
    parser.add_argument("--epochs", type=int, default=FROM_SCRATCH_SCHEDULE["epochs"],
                        help="fine-tuning epochs (default: `train --data`'s for the demo model)")
    parser.add_argument("--lr", type=float, default=FROM_SCRATCH_SCHEDULE["lr"],
                        help="fine-tuning learning rate (default: `train --data`'s for the demo model)")
    parser.add_argument("--target-apcer", type=float, default=0.05, help="calibration and bundle target")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_own_camera_"))
    folder = work / "collection"
    seconds = {}

    started = time.perf_counter()
    captures = collect_synthetic(folder, args.subjects, args.frames)
    seconds["collect"] = time.perf_counter() - started

    started = time.perf_counter()
    faces = sum(len(capture_crops(folder, capture, preprocess=PreprocessConfig()).images) for capture in captures)
    seconds["crop cache (first run)"] = time.perf_counter() - started

    started = time.perf_counter()
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=16, seed=0, device="cpu")
    result = finetune_on_collection(folder, DEMO_CHECKPOINT, config, work / "run")
    seconds["fine-tune"] = time.perf_counter() - started
    checkpoint = result["best_checkpoint"]
    splits = result["splits"]

    started = time.perf_counter()
    tuned = evaluate_on_collection(checkpoint, folder)["iso"]
    seconds["eval (fine-tuned)"] = time.perf_counter() - started
    demo = evaluate_on_collection(DEMO_CHECKPOINT, folder)["iso"]

    started = time.perf_counter()
    engine = OnnxRuntimeEngine(export_onnx(checkpoint, work / "model.onnx"))
    profile, held_out = calibrate_on_collection(engine, folder, args.target_apcer)
    seconds["export + calibrate"] = time.perf_counter() - started

    started = time.perf_counter()
    create_bundle(checkpoint, folder, work / "bundle", target_apcer=args.target_apcer)
    seconds["bundle"] = time.perf_counter() - started

    print(f"own-camera loop: {args.subjects} subjects × {1 + len(ATTACK_KINDS)} species × {args.frames} framesets "
          f"= {len(captures)} recordings, {faces} face crops; tiny config, {args.epochs} epochs, 2-core CPU; in {work}")
    print("splits (subject- and instrument-disjoint): " + ", ".join(
        f"{name} {len(splits.subjects[name])} subjects" for name in ("train", "val", "test")))
    print(f"{'stage':<26}{'wall s':>9}")
    for stage, value in seconds.items():
        print(f"{stage:<26}{value:>9.1f}")
    print(f"{'total':<26}{sum(seconds.values()):>9.1f}")
    print()
    print(f"test subjects: the demo and the fine-tuned model at their stored thresholds ({demo.threshold:.3f}, "
          f"{tuned.threshold:.3f}), and the fine-tuned ONNX at the threshold calibrated on the validation subjects "
          f"for APCER ≤ {args.target_apcer} ({profile.threshold:.3f}, band ±{held_out.uncertainty_band} counted as "
          f"not live)")
    print(f"{'rate':<16}{'demo model':>34}{'fine-tuned':>34}{'fine-tuned, calibrated':>34}")
    for species in sorted(tuned.apcer_per_species):
        print(f"{'APCER ' + species:<16}{_rate(demo.apcer_per_species[species]):>34}"
              f"{_rate(tuned.apcer_per_species[species]):>34}{_rate(held_out.apcer[species]):>34}")
    print(f"{'BPCER':<16}{_rate(demo.bpcer):>34}{_rate(tuned.bpcer):>34}{_rate(held_out.bpcer):>34}")


if __name__ == "__main__":
    main()
