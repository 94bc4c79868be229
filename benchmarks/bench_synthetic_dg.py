"""Leave-one-domain-out on the synthetic camera: what ReGrad and the ADPs each add (issue #6).

Protocols syn:123-0, syn:023-1, syn:013-2, syn:012-3 (train on three camera domains, validate on
those three, test on the held-out fourth). Four variants share one budget (epochs, rendered samples,
batch size, lr, weight decay) and, per seed, the same crops and the same initial weights:

- plain:   fine-tuning on the fused loss alone            (TrainConfig regrad=False, adp=False)
- +ReGrad: ReGrad over symmetric prompt losses, no domains (regrad=True,  adp=False)
- +ADPs:   ADP losses added to the fused loss              (regrad=False, adp=True)
- MMDG++:  both                                            (regrad=True,  adp=True)

Each protocol's crops are rendered once per seed (``create_synthetic_datasets``: train and val from
the source domains, test from the target) and reused by all variants. A run trains with
``trainer.fit`` into a temporary folder, keeps the best checkpoint by validation HTER, and scores
the target test set at that checkpoint's validation threshold: HTER and AUC in %, mean ± sample
standard deviation over seeds. The "average over protocols" block averages each seed's four
protocols first, then gives mean ± std of those per-seed averages over seeds.

Model: ``MMDGConfig.tiny()`` with the backbone trained (no CLIP weights can be downloaded here, so
the tiny backbone learns from scratch; lr 1e-3 by default, the demo model's from-scratch rate in
scripts/train_demo_model.py, not tuned here). ``--config paper --pretrained openai`` (or a local
weights file) runs the paper's frozen ViT-B/16 instead, at the paper-prior lr 5e-5.

Cost (measured with the defaults on syn:012-3, seed 0, on the shared 2-core CPU with other users'
load, load average about 2): rendering 10 s, then one run (train + test) of plain 119 s, +ReGrad
69 s, +ADPs 28 s, MMDG++ 69 s: 295 s per protocol and seed, so the default 4 protocols × 3 seeds
× 4 variants (48 runs) take about 60 minutes at that load, less on an idle machine. Timings swing
with the other load (repeats of the same plain run took 40-233 s); the metrics are deterministic
per seed on CPU. These are toy numbers on toy data: they compare the variants under one small
budget, not the paper's results.

    python benchmarks/bench_synthetic_dg.py [--protocols syn:123-0,syn:023-1,syn:013-2,syn:012-3]
        [--seeds 3] [--variants plain,regrad,adp,mmdg++] [--epochs 3] [--samples 192,64,96]
        [--batch-size 16] [--lr 1e-3] [--config tiny|paper] [--pretrained openai] [--device auto]

Quick check: python benchmarks/bench_synthetic_dg.py --protocols syn:012-3 --seeds 1 --epochs 1 --samples 48,24,24
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from mmdg_edge.checkpoint import load_checkpoint
from mmdg_edge.model import MMDGConfig
from mmdg_edge.train.metrics import compute_metrics
from mmdg_edge.train.protocols import get_protocol
from mmdg_edge.train.synthetic_data import create_synthetic_datasets
from mmdg_edge.train.trainer import TrainConfig, fit, init_distributed, predict

PROTOCOLS = ("syn:123-0", "syn:023-1", "syn:013-2", "syn:012-3")
# name -> (label in the table, TrainConfig.regrad, TrainConfig.adp)
VARIANTS: Dict[str, Tuple[str, bool, bool]] = {
    "plain": ("plain fine-tuning", False, False),
    "regrad": ("+ReGrad", True, False),
    "adp": ("+ADPs", False, True),
    "mmdg++": ("MMDG++ (both)", True, True),
}


class _NoRandomInitWarning(logging.Filter):
    """open_clip warns on every model build that no CLIP weights were loaded; that is the intent here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


def _csv(value: str) -> List[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _samples(value: str) -> Tuple[int, int, int]:
    try:
        train, val, test = (int(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TRAIN,VAL,TEST framesets, e.g. 192,64,96; got {value!r}")
    if min(train, val, test) < 1:
        raise argparse.ArgumentTypeError(f"framesets per split must be ≥ 1, got {value!r}")
    return train, val, test


def _mean_std(values: List[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (NaN for a single value)."""
    array = np.asarray(values, np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else math.nan


def _fmt(values: List[float]) -> str:
    if not values:
        return f"{'-':>15}"
    mean, std = _mean_std(values)
    return f"{mean:7.2f} ± {std:5.2f}" if not math.isnan(std) else f"{mean:7.2f} ±   n/a"


def run_variant(model_config: MMDGConfig, datasets: Dict, train_config: TrainConfig) -> Dict[str, float]:
    """Train one variant, score the target test set at the best checkpoint's validation threshold."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_dg_") as out_dir:
        result = fit(model_config, datasets["train"], datasets["val"], train_config, out_dir)
        if result["best_checkpoint"] is None:
            raise RuntimeError("no checkpoint was kept (validation HTER never finite)")
        device = init_distributed(train_config).device  # the device fit trained on
        model, metadata = load_checkpoint(result["best_checkpoint"], device=str(device))
        best_epoch = int(metadata["provenance"]["epoch"])
    scores, labels = predict(model, datasets["test"], device=device)
    metrics = compute_metrics(scores, labels, threshold=metadata["threshold"])
    return {"hter": 100 * float(metrics["hter"]), "auc": 100 * float(metrics["auc"]),
            "val_hter": 100 * float(result["best_hter"]), "best_epoch": best_epoch,
            "threshold": float(metadata["threshold"]), "wall_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocols", type=_csv, default=list(PROTOCOLS),
                        help="comma-separated syn:TRAIN-TEST protocols (default: the four leave-one-out ones)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (data, initialisation, shuffling)")
    parser.add_argument("--variants", type=_csv, default=list(VARIANTS),
                        help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs, every variant")
    parser.add_argument("--samples", type=_samples, default=(192, 64, 96), metavar="TRAIN,VAL,TEST",
                        help="synthetic framesets rendered per split (fewer crops when the aligner refuses some)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size, every variant")
    parser.add_argument("--lr", type=float, default=None,
                        help="Adam lr, every variant (default 1e-3 for tiny from scratch, 5e-5 for paper)")
    parser.add_argument("--weight-decay", type=float, default=5e-5, help="Adam weight decay, every variant")
    parser.add_argument("--config", choices=("tiny", "paper"), default="tiny",
                        help="tiny (backbone trained from scratch) or the paper's ViT-B/16 (frozen backbone)")
    parser.add_argument("--pretrained", default=None, help="CLIP weights for --config paper: 'openai' or a local file")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="training device")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds: need ≥ 1")
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or not args.variants:
        parser.error(f"--variants: unknown {unknown}; choose from {','.join(VARIANTS)}")
    if args.pretrained is not None and args.config != "paper":
        parser.error("--pretrained: only with --config paper (the tiny config has no CLIP weights)")
    protocols = []
    for name in args.protocols:
        try:
            protocol = get_protocol(name)
        except ValueError as exc:
            parser.error(f"--protocols: {exc}")
        if not protocol.is_synthetic:
            parser.error(f"--protocols: {name!r} is not a syn: protocol")
        protocols.append(protocol)

    logging.getLogger().addFilter(_NoRandomInitWarning())
    if args.config == "tiny":
        model_config = dataclasses.replace(MMDGConfig.tiny(), train_backbone=True)
    else:
        model_config = MMDGConfig.paper(pretrained=args.pretrained)
    lr = args.lr if args.lr is not None else (1e-3 if args.config == "tiny" else 5e-5)
    budget = dict(epochs=args.epochs, lr=lr, weight_decay=args.weight_decay, batch_size=args.batch_size,
                  device=args.device)
    try:
        TrainConfig(**budget)  # the budget's own checks (epochs, batch size, lr), before any rendering
    except ValueError as exc:
        parser.error(str(exc))
    seeds = list(range(args.seeds))
    train_n, val_n, test_n = args.samples
    print(f"config {args.config}" + (f" (pretrained {args.pretrained})" if args.pretrained else "")
          + f", train_backbone={model_config.train_backbone}; epochs {args.epochs}, batch {args.batch_size}, "
          f"lr {lr:g}, weight decay {args.weight_decay:g}; framesets train/val/test {train_n}/{val_n}/{test_n}; "
          f"seeds {seeds}; {len(protocols)} protocols × {len(args.variants)} variants", flush=True)

    results: Dict[Tuple[str, str], Dict[int, Dict[str, float]]] = {}
    started = time.perf_counter()
    for protocol in protocols:
        for seed in seeds:
            t0 = time.perf_counter()
            datasets = create_synthetic_datasets(protocol, train_n, val_n, test_n, seed)
            counts = {s: len(d) for s, d in datasets.items()}
            live = {s: int(d.labels.sum()) for s, d in datasets.items()}
            print(f"{protocol.name} seed {seed}: rendered once in {time.perf_counter() - t0:.1f} s; crops "
                  + ", ".join(f"{s} {counts[s]} ({live[s]} live)" for s in counts), flush=True)
            for variant in args.variants:
                label, regrad, adp = VARIANTS[variant]
                config = TrainConfig(regrad=regrad, adp=adp, seed=seed, **budget)
                try:
                    run = run_variant(model_config, datasets, config)
                except (RuntimeError, ValueError) as exc:  # e.g. non-finite scores: report, go on
                    print(f"  {label:<18} FAILED: {exc}", flush=True)
                    continue
                results.setdefault((protocol.name, variant), {})[seed] = run
                print(f"  {label:<18} test HTER {run['hter']:6.2f}  AUC {run['auc']:6.2f}  "
                      f"(val HTER {run['val_hter']:5.2f} at epoch {run['best_epoch']}, threshold "
                      f"{run['threshold']:.3f})  wall {run['wall_s']:6.1f} s", flush=True)
    total = time.perf_counter() - started

    print()
    print(f"Target-domain test set at the validation threshold; mean ± std over seeds (%); total wall {total:.0f} s")
    header = f"{'protocol':<11}{'variant':<20}{'n':>3}  {'HTER %':^15}  {'AUC %':^15}  {'wall s/run':>10}"
    print(header)
    print("-" * len(header))
    for protocol in protocols:
        for variant in args.variants:
            runs = list(results.get((protocol.name, variant), {}).values())
            wall = f"{np.mean([r['wall_s'] for r in runs]):10.1f}" if runs else f"{'-':>10}"
            print(f"{protocol.name:<11}{VARIANTS[variant][0]:<20}{len(runs):>3}  {_fmt([r['hter'] for r in runs])}  "
                  f"{_fmt([r['auc'] for r in runs])}  {wall}")
    print("-" * len(header))
    print(f"average over protocols (per seed, then mean ± std over the seeds with all {len(protocols)} protocols):")
    for variant in args.variants:
        per_seed: Dict[str, List[float]] = {"hter": [], "auc": []}
        walls: List[float] = []
        for seed in seeds:
            runs: List[Optional[Dict[str, float]]] = [results.get((p.name, variant), {}).get(seed) for p in protocols]
            if all(r is not None for r in runs):
                for key in per_seed:
                    per_seed[key].append(float(np.mean([r[key] for r in runs])))
                walls += [r["wall_s"] for r in runs]
        wall = f"{np.mean(walls):10.1f}" if walls else f"{'-':>10}"
        print(f"{'average':<11}{VARIANTS[variant][0]:<20}{len(per_seed['hter']):>3}  {_fmt(per_seed['hter'])}  "
              f"{_fmt(per_seed['auc'])}  {wall}")


if __name__ == "__main__":
    main()
