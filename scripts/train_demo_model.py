"""Train the bundled demo model: tiny MMDG++ on the synthetic camera, seen through the aligner.

    python scripts/train_demo_model.py [--train 480] [--val 128] [--epochs 4] [--out mmdg_edge/assets] [--check-only]

Deterministic (seeded). Writes demo.safetensors (checkpoint; provenance says synthetic data,
demonstration only, not a security model) and demo.onnx (what the kiosk path runs). The tiny
backbone learns from scratch (--train-backbone), since CLIP weights cannot be downloaded everywhere.
All four synthetic domains are trained on: the demo model is a product demo, not a generalisation
experiment (benchmarks/bench_synthetic_dg.py holds domains out).

Afterwards the model is checked on a scripted sequence (live, then print, replay and mask
segments, aligned frame after frame as in the kiosk loop) and, when present, on the demo
recording mmdg_edge/assets/demo.db3 with its demo_segments.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import numpy as np
import torch

from mmdg_edge.align import FaceAligner
from mmdg_edge.assets import ASSETS
from mmdg_edge.checkpoint import load_checkpoint
from mmdg_edge.model import MMDGConfig
from mmdg_edge.preprocess import encode
from mmdg_edge.sensors.synthetic import Segment, render_sequence
from mmdg_edge.train.synthetic_data import render_crops
from mmdg_edge.train.trainer import TrainConfig, fit

NOTE = "synthetic data, demonstration only, not a security model"
DOMAINS = (0, 1, 2, 3)
TRAIN_SEED, VAL_SEED, CHECK_SEED = 100, 200, 300


def score_frames(model, framesets: Iterable) -> List[Tuple[str, float]]:
    """(ground-truth kind or '', live probability or NaN when no face) per frameset, aligned in sequence."""
    aligner = FaceAligner()
    rows = []
    for frameset in framesets:
        kind = (frameset.metadata.get("truth") or {}).get("attack") or (frameset.metadata.get("truth") or {}).get("label") or ""
        result = aligner.align(frameset)
        if result.status != "ok":
            rows.append((kind, float("nan")))
            continue
        crops, mask = encode([result.crops])
        with torch.no_grad():
            rows.append((kind, float(model.live_prob(torch.from_numpy(crops), torch.from_numpy(mask))[0])))
    return rows


def summarise(rows: List[Tuple[str, float]], threshold: float) -> Dict[str, Dict[str, float]]:
    """Per kind: frames, faces found, mean score, share judged live at ``threshold``."""
    table = {}
    for kind in sorted({k for k, _ in rows}):
        scores = np.array([s for k, s in rows if k == kind])
        found = scores[~np.isnan(scores)]
        table[kind] = {"frames": len(scores), "faces": len(found),
                       "mean_score": float(found.mean()) if found.size else float("nan"),
                       "live_share": float((found >= threshold).mean()) if found.size else float("nan")}
    return table


def scripted_check(model) -> List[Tuple[str, float]]:
    """A kiosk-like sequence of every class in every domain, scored frame by frame."""
    segments = [Segment(kind, 20, domain=d, distance_start_m=0.55) for d in DOMAINS
                for kind in ("live", "print", "replay", "mask")]
    return score_frames(model, render_sequence(segments, seed=CHECK_SEED))


def recording_check(model, assets: Path) -> List[Tuple[str, float]]:
    """Score the demo recording; the segments file labels frame ranges (kind per frame number)."""
    from mmdg_edge.sensors import open_source

    entries = json.loads((assets / "demo_segments.json").read_text())["segments"]
    rows = []
    with open_source(str(assets / "demo.db3")) as frames:
        for index, (_, score) in enumerate(score_frames(model, frames)):
            kind = next((e["kind"] for e in entries if e["first_frame"] <= index <= e["last_frame"]), "?")
            rows.append((kind, score))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=480, help="synthetic framesets rendered for training")
    parser.add_argument("--val", type=int, default=128, help="synthetic framesets rendered for validation")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (from scratch, so above the paper's)")
    parser.add_argument("--out", type=Path, default=ASSETS, help="output folder (default: the package's assets, "
                                                                   "%(default)s)")
    parser.add_argument("--check-only", action="store_true", help="only check the existing demo.safetensors")
    args = parser.parse_args()
    checkpoint = args.out / "demo.safetensors"
    if args.check_only and not checkpoint.is_file():
        parser.error(f"--check-only: no {checkpoint}; pass --out FOLDER holding the demo.safetensors to check")
    if not args.check_only:
        started = time.perf_counter()
        index = {d: d for d in DOMAINS}
        train = render_crops(DOMAINS, args.train, TRAIN_SEED).to_dataset(index)
        val = render_crops(DOMAINS, args.val, VAL_SEED).to_dataset(index)
        config = dataclasses.replace(MMDGConfig.tiny(), train_backbone=True)
        work = args.out / "demo_run"
        provenance = {"protocol": "synthetic, all domains", "epochs": args.epochs, "seed": 0,
                      "data": f"mmdg_edge.sensors.synthetic through FaceAligner: train {len(train)} crops "
                              f"(seed {TRAIN_SEED}), val {len(val)} crops (seed {VAL_SEED}), domains 0-3",
                      "script": "scripts/train_demo_model.py", "note": NOTE}
        result = fit(config, train, val, TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=16, seed=0,
                                                     device="cpu"), work, provenance)
        shutil.copyfile(result["best_checkpoint"], checkpoint)
        from mmdg_edge.engines.export import export_onnx

        export_onnx(checkpoint, args.out / "demo.onnx")
        shutil.rmtree(work)
        print(f"best validation HTER {result['best_hter']:.4f} in {time.perf_counter() - started:.0f} s; "
              f"wrote {checkpoint} and {args.out / 'demo.onnx'}")
    model, metadata = load_checkpoint(checkpoint)
    model.eval()
    checks = {"scripted sequence": scripted_check(model)}
    if (args.out / "demo.db3").is_file() and (args.out / "demo_segments.json").is_file():
        checks["demo recording"] = recording_check(model, args.out)
    from sklearn.metrics import roc_auc_score

    for name, rows in checks.items():
        scored = [(kind, score) for kind, score in rows if not np.isnan(score)]
        auc = roc_auc_score([kind == "live" for kind, _ in scored], [score for _, score in scored])
        print(f"{name} (threshold {metadata['threshold']:.3f}; model alone: AUC {auc:.3f} live vs every attack):")
        for kind, row in summarise(rows, metadata["threshold"]).items():
            print(f"  {kind:<8} frames {row['frames']:>4} faces {row['faces']:>4} mean score {row['mean_score']:.3f} "
                  f"judged live {row['live_share']:.0%}")


if __name__ == "__main__":
    main()
