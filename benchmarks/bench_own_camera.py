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

The tables after it compare the fine-tuned and the demo model on the same test subjects (subjects and
instruments neither saw in training), each at its own stored threshold, and the fine-tuned model at
the operating point calibrated on the validation subjects (what the bundle ships): per-species APCER
and BPCER with their 95 % Clopper–Pearson intervals, counted per presentation (each recording is
one, as ISO/IEC 30107-3 counts), then per frameset (not independent trials; the second table).
The calibration target defaults to the lowest APCER the validation split's attack recordings can
show at all (``stats.attacks_needed``): a small collection cannot show 5 %.

    python benchmarks/bench_own_camera.py [--subjects 8] [--frames 30] [--epochs 3] [--work DIR]
    python benchmarks/bench_own_camera.py --subjects 5 --frames 4 --epochs 1   # a quick run
"""
from __future__ import annotations

import argparse
import math
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
from mmdg_edge.stats import attacks_needed
from mmdg_edge.train.bundle import create_bundle
from mmdg_edge.train.finetune import FROM_SCRATCH_SCHEDULE, evaluate_on_collection, finetune_on_collection
from mmdg_edge.train.trainer import TrainConfig


def _rate(rate) -> str:
    return f"{rate.value:6.3f} [{rate.lower:.3f}, {rate.upper:.3f}] ({rate.errors}/{rate.trials})"


def _lowest_target(attack_presentations: int) -> float:
    """The lowest APCER target, to two decimals, that this many attack presentations can show."""
    target = math.ceil(100 * (1 - 0.025 ** (1 / attack_presentations))) / 100
    while attacks_needed(target) > attack_presentations:
        target += 0.01
    return round(target, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=8, help="synthetic subjects in the collection")
    parser.add_argument("--frames", type=int, default=30, help="framesets per presentation")
    parser.add_argument("--epochs", type=int, default=FROM_SCRATCH_SCHEDULE["epochs"],
                        help="fine-tuning epochs (default: `train --data`'s for the demo model)")
    parser.add_argument("--lr", type=float, default=FROM_SCRATCH_SCHEDULE["lr"],
                        help="fine-tuning learning rate (default: `train --data`'s for the demo model)")
    parser.add_argument("--target-apcer", type=float, default=None,
                        help="calibration and bundle target (default: the lowest the validation split can show)")
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
    evaluated = evaluate_on_collection(checkpoint, folder)
    tuned, tuned_frames = evaluated["iso"], evaluated["iso_framesets"]
    seconds["eval (fine-tuned)"] = time.perf_counter() - started
    evaluated = evaluate_on_collection(DEMO_CHECKPOINT, folder)
    demo, demo_frames = evaluated["iso"], evaluated["iso_framesets"]

    val_attacks = sum(1 for c in splits.of(captures, "val") if c.is_attack)
    target = args.target_apcer if args.target_apcer is not None else _lowest_target(val_attacks)
    started = time.perf_counter()
    engine = OnnxRuntimeEngine(export_onnx(checkpoint, work / "model.onnx"))
    profile, held_out = calibrate_on_collection(engine, folder, target)
    seconds["export + calibrate"] = time.perf_counter() - started

    started = time.perf_counter()
    create_bundle(checkpoint, folder, work / "bundle", target_apcer=target)
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
          f"for APCER ≤ {target} on {val_attacks} attack recordings ({profile.threshold:.3f}, band "
          f"±{held_out.uncertainty_band} counted as not live)")
    for title, (demo_iso, tuned_iso), calibrated in (
            ("per presentation (recordings)", (demo, tuned), (held_out.apcer, held_out.bpcer)),
            ("per frameset (not independent trials)", (demo_frames, tuned_frames),
             (held_out.frame_apcer, held_out.frame_bpcer))):
        print(f"{title:<16}")
        print(f"{'rate':<16}{'demo model':>34}{'fine-tuned':>34}{'fine-tuned, calibrated':>34}")
        for species in sorted(tuned_iso.apcer_per_species):
            print(f"{'APCER ' + species:<16}{_rate(demo_iso.apcer_per_species[species]):>34}"
                  f"{_rate(tuned_iso.apcer_per_species[species]):>34}{_rate(calibrated[0][species]):>34}")
        print(f"{'BPCER':<16}{_rate(demo_iso.bpcer):>34}{_rate(tuned_iso.bpcer):>34}{_rate(calibrated[1]):>34}")


if __name__ == "__main__":
    main()
