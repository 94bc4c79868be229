"""Train the bundled demo model: tiny MMDG++ on the synthetic camera, seen through the aligner.

    python scripts/train_demo_model.py [--train 320] [--val 96] [--epochs 4] [--out mmdg_edge/assets]

Deterministic (seeded). Writes demo.safetensors (checkpoint, provenance says synthetic data,
demonstration only) and demo.onnx (what the kiosk path runs). The tiny backbone learns from
scratch (--train-backbone), since CLIP weights cannot be downloaded everywhere.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import torch

from mmdg_edge.align import FaceAligner
from mmdg_edge.engines.export import export_onnx
from mmdg_edge.model import MMDGConfig
from mmdg_edge.sensors.synthetic import SyntheticCamera
from mmdg_edge.train.trainer import CropDataset, TrainConfig, fit

NOTE = "synthetic data, demonstration only, not a security model"


def crops_from_camera(seed: int, count: int, domains) -> CropDataset:
    """Render framesets, align them as a kiosk would, keep the faces found."""
    aligner = FaceAligner()
    images, masks, labels, doms = [], [], [], []
    for frameset in SyntheticCamera(seed=seed, domains=domains, num_frames=count):
        aligner.reset()
        result = aligner.align(frameset)
        if result.status != "ok":
            continue
        truth = frameset.metadata["truth"]
        images.append(result.crops.stacked())
        masks.append(result.crops.mask)
        labels.append(1 if truth["label"] == "live" else 0)
        doms.append(list(domains).index(truth["domain"]) if truth["domain"] in domains else 0)
    return CropDataset(np.stack(images), np.stack(masks), np.array(labels), np.array(doms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=320, help="synthetic framesets rendered for training")
    parser.add_argument("--val", type=int, default=96, help="synthetic framesets rendered for validation")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (from scratch, so above the paper's)")
    parser.add_argument("--out", type=Path, default=Path("mmdg_edge/assets"), help="output folder")
    args = parser.parse_args()
    torch.manual_seed(0)
    train = crops_from_camera(seed=100, count=args.train, domains=(0, 1, 2))
    val = crops_from_camera(seed=200, count=args.val, domains=(3,))
    config = dataclasses.replace(MMDGConfig.tiny(), train_backbone=True)
    work = args.out / "demo_run"
    result = fit(config, train, val, TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=16), work,
                 provenance={"data": "mmdg_edge.sensors.synthetic, train domains 0-2 (seed 100), val domain 3 (seed 200)",
                             "note": NOTE})
    checkpoint = args.out / "demo.safetensors"
    shutil.copyfile(result["best_checkpoint"], checkpoint)
    export_onnx(checkpoint, args.out / "demo.onnx")
    shutil.rmtree(work)
    print(f"best validation HTER {result['best_hter']:.4f}; wrote {checkpoint} and {args.out / 'demo.onnx'}")


if __name__ == "__main__":
    main()
