"""Domain generalisation on the synthetic camera: what ReGrad and the ADPs each add (issues #6, #22).

Two protocol families; every fold is trained from scratch for each variant and seed:

- leave-one-family-out (``--families``, default all five ``MASK_FAMILIES``): train and validate on
  bona fide presentations, prints, replays and the masks of the four other families, captured in
  d435-a..d (``FAMILY_DOMAINS``); test bona fide presentations and the held-out family's masks in
  the same domains.
- leave-one-domain-out (``--domains``, default d415, d455, d435-sunlight): train and validate in
  the first four of d435-a, d435-c, d415, d455, d435-sunlight (``DOMAIN_POOL``) that are not held
  out; test bona fide presentations and every attack (prints, replays, masks of all five families)
  captured in the held-out domain.

The ADP domain label of a training sample is its capture domain's place among the fold's training
domains (``Fold.domain_labels``, ``SyntheticCrops.to_dataset``). People and instruments never cross
splits: train, validation and test take subjects from 0, 100 and 200 on (``--people``: 40, 20, 40)
and instruments of indices 0-19, 100-119 and 200-219 of each kind, so the test is on people and
instruments never trained on. A presentation is one subject, bona fide or with one instrument,
staged for a few framesets in one scene (``render_presentations``); its score is the mean live
probability of the framesets the face aligner accepted (none accepted: refused, as a kiosk would).
The threshold is the one giving BPCER 5 % on the validation presentations (training domains and
families, held-out people); at it the test reports APCER (family folds: the held-out family's
masks; domain folds: every attack) and BPCER with 95 % Clopper-Pearson intervals, HTER and AUC.

Four variants share one budget (epochs, presentations, batch size, lr, weight decay) and, per fold
and seed, the same rendered crops (rendered once, reused) and the same initial weights:

- plain:   the fused loss alone                             (TrainConfig regrad=False, adp=False)
- +ReGrad: ReGrad over symmetric prompt losses, no domains  (regrad=True,  adp=False)
- +ADPs:   ADP losses added to the fused loss               (regrad=False, adp=True)
- MMDG++:  both                                             (regrad=True,  adp=True)

The tables give, per fold, per protocol family and over all folds, APCER and BPCER pooled over the
runs (k of n test presentations; the interval is the pooled count's) and HTER and AUC as mean ±
sample std over seeds (each seed's mean over the group's folds). Then each variant against plain,
paired over (fold, seed): the median difference of HTER and of APCER and a two-sided Wilcoxon
signed-rank test, with the verdict "significant at 5 %" or "not significant". Each test stands
alone (six per group, no correction for multiplicity), and fewer than six differing pairs can
never reach 5 %.

Model: ``MMDGConfig.tiny()`` with its backbone trained from scratch (no CLIP weights can be
downloaded here) at lr 1e-3, the demo model's rate (scripts/train_demo_model.py), for one epoch;
the best checkpoint by validation HTER is the one scored. ``--config paper --pretrained openai``
(or a local weights file) runs the paper's frozen ViT-B/16 instead, at lr 5e-5.

These are toy numbers: a synthetic camera, a tiny model trained from scratch for one epoch on a
few hundred crops. They say whether, at this budget, ReGrad and the ADPs change how a model meets
an unseen mask material or camera, not what the paper reports, and nothing about real attacks.

Cost, measured on this release on the shared 2-core CPU with other users' jobs on it (load average
about 3), one torch thread (``--threads``, default 1): ``--quick`` takes 14 s (render 1.5 s, plain
5.1 s, MMDG++ 4.0 s, the rest imports); one fold (family:silicone, seed 0) of the defaults renders
in 11.5 s and trains and scores plain in 16.2 s, +ReGrad 33.3 s, +ADPs 14.4 s, MMDG++ 34.2 s: 113 s,
so the default 8 folds × 3 seeds would take about 45 min (not run here; the estimate printed at
start, from the ``COST_*`` figures, says 46). With two threads, at load 5, the same fold took 655 s,
hence one thread by default. Its metrics were the same with one thread or two: a seed's run is
deterministic on CPU.

    python benchmarks/bench_synthetic_dg.py [--families resin,latex,silicone,paper,fabric|none]
        [--domains d415,d455,d435-sunlight|none] [--seeds 3] [--variants plain,regrad,adp,both]
        [--people 40,20,40] [--presentations 48,20,24] [--frames 1,2] [--epochs 1]
        [--batch-size 16] [--lr 1e-3] [--config tiny|paper] [--pretrained openai] [--device auto]
        [--threads 1]
    python benchmarks/bench_synthetic_dg.py --quick   # 1 family fold, 1 seed, plain and MMDG++, tiny sizes
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from mmdg_edge.checkpoint import load_checkpoint
from mmdg_edge.errors import require
from mmdg_edge.model import MMDGConfig
from mmdg_edge.sensors.synthetic import (
    ATTACK_KINDS, DOMAIN_NAMES, MASK_FAMILIES, Instrument, create_instrument, create_subject, domain_index,
)
from mmdg_edge.stats import Rate
from mmdg_edge.train.metrics import compute_metrics, threshold_for_bpcer
from mmdg_edge.train.synthetic_data import Presentation, SyntheticCrops, render_presentations
from mmdg_edge.train.trainer import TrainConfig, fit, init_distributed, predict

FAMILY_DOMAINS = ("d435-a", "d435-b", "d435-c", "d435-d")  # where the leave-one-family-out folds are captured
# A leave-one-domain-out fold trains on the first four of these that it does not hold out.
DOMAIN_POOL = ("d435-a", "d435-c", "d415", "d455", "d435-sunlight")
HELD_OUT_DOMAINS = ("d415", "d455", "d435-sunlight")
SPLITS = ("train", "val", "test")
# First person and first instrument index of each split, INDEX_SPAN apart: people and instruments
# never cross splits. The starts are multiples of len(MASK_FAMILIES): mask index i is of family i % 5.
INDEX_SPAN = 100
FIRST_INDEX = {split: i * INDEX_SPAN for i, split in enumerate(SPLITS)}
INSTRUMENTS_PER_SPLIT = 20  # indices per kind and split: 5 of each paper and screen, 4 masks per family
BPCER_TARGET = 0.05  # the operating point, chosen on the validation presentations
NO_FACE_SCORE = -1.0  # a presentation the aligner never accepted: below every threshold (thresholds are ≥ 0)
# name -> (label in the tables, TrainConfig.regrad, TrainConfig.adp)
VARIANTS: Dict[str, Tuple[str, bool, bool]] = {
    "plain": ("plain", False, False),
    "regrad": ("+ReGrad", True, False),
    "adp": ("+ADPs", False, True),
    "both": ("MMDG++ (both)", True, True),
}
DEFAULTS = dict(families=list(MASK_FAMILIES), domains=list(HELD_OUT_DOMAINS), seeds=3, variants=list(VARIANTS),
                people=(40, 20, 40), presentations=(48, 20, 24), frames=(1, 2), epochs=1)
QUICK = dict(families=[MASK_FAMILIES[0]], domains=[], seeds=1, variants=["plain", "both"], people=(8, 4, 4),
             presentations=(4, 3, 3), frames=(1, 2), epochs=1)
# Wall seconds with one torch thread at load average ~3, for the estimate printed at start: rendering
# and aligning a frameset and the per-run overhead (building, saving and loading the model) as in the
# fold of Cost above; scoring a crop and training on one (per epoch): the fastest of 4-5 repeats of
# scoring 32 crops and of one 16-crop step.
COST_RENDER_S = 0.039
COST_SCORE_S = 0.014
COST_TRAIN_S = {"plain": 0.056, "regrad": 0.165, "adp": 0.057, "both": 0.145}
COST_RUN_S = 1.5


class _NoRandomInitWarning(logging.Filter):
    """open_clip warns on every model build that no CLIP weights were loaded; that is the intent here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


_QUIET_INIT = _NoRandomInitWarning()  # one instance: adding it again (main called twice) is a no-op


@dataclass(frozen=True)
class Fold:
    """One held-out target: a mask family (captured in ``FAMILY_DOMAINS``) or a capture domain.

    ``train_domains`` are the source domains (train and validation; their order gives the ADP
    domain labels), ``test_domains`` where the test presentations are captured, ``family`` the
    held-out mask family (None: a domain fold, every family seen in training and tested).
    """

    name: str
    protocol: str
    train_domains: Tuple[int, ...]
    test_domains: Tuple[int, ...]
    family: Optional[str] = None

    def domain_labels(self) -> Dict[int, int]:
        """Capture domain -> training domain label: sources in order, then the held-out domain."""
        order = self.train_domains + tuple(d for d in self.test_domains if d not in self.train_domains)
        return {d: i for i, d in enumerate(order)}


def family_fold(family: str) -> Fold:
    """Train on live, prints, replays and the other four mask families; test live and ``family``'s masks."""
    domains = tuple(domain_index(name) for name in FAMILY_DOMAINS)
    return Fold(f"family:{family}", "leave-one-family-out", domains, domains, family)


def domain_fold(name: str) -> Fold:
    """Train in four capture domains of ``DOMAIN_POOL`` other than ``name``; test everything in ``name``."""
    sources = tuple(domain_index(d) for d in DOMAIN_POOL if d != name)[:4]
    return Fold(f"domain:{name}", "leave-one-domain-out", sources, (domain_index(name),))


def _instruments(kind: str, split: str, families: Sequence[str]) -> List[Instrument]:
    """The split's own instruments of ``kind`` (``INSTRUMENTS_PER_SPLIT`` indices); masks of ``families`` only."""
    made = [create_instrument(kind, FIRST_INDEX[split] + i) for i in range(INSTRUMENTS_PER_SPLIT)]
    return [i for i in made if kind != "mask" or i.family in families]


def plan(fold: Fold, split: str, people: int, count: int, frames: int, seed: int) -> List[Presentation]:
    """The presentations of one split of ``fold``, each shown for ``frames`` framesets.

    Training: ``count`` presentations of each class (live, print, replay, mask). Validation and
    test: ``count`` bona fide and ``count`` attack presentations, the attacks cycling print, replay
    and mask; a family fold's test attacks are the held-out family's masks, which its training and
    validation never show. Who presents (one of the split's ``people`` subjects from
    ``FIRST_INDEX[split]``), with which of the split's instruments and in which of the fold's
    domains is drawn from (fold, split, seed).
    """
    rng = np.random.default_rng(zlib.crc32(f"{fold.name}/{split}/{seed}".encode()))
    held_out = split == "test" and fold.family is not None
    families = (fold.family,) if held_out else tuple(f for f in MASK_FAMILIES if f != fold.family)
    kits = {kind: _instruments(kind, split, families) for kind in (("mask",) if held_out else ATTACK_KINDS)}
    if split == "train":
        kinds = [kind for kind in ("live",) + ATTACK_KINDS for _ in range(count)]
    else:
        kinds = ["live"] * count + [list(kits)[i % len(kits)] for i in range(count)]
    domains = fold.test_domains if split == "test" else fold.train_domains
    presentations = []
    for kind in kinds:
        subject = create_subject(FIRST_INDEX[split] + int(rng.integers(people)))
        instrument = None if kind == "live" else kits[kind][int(rng.integers(len(kits[kind])))]
        presentations.append(Presentation(subject, instrument, int(domains[int(rng.integers(len(domains)))]), frames))
    return presentations


@dataclass
class Split:
    """A split's presentations and their aligned crops."""

    presentations: List[Presentation]
    crops: SyntheticCrops

    @property
    def labels(self) -> np.ndarray:
        """1 for each bona fide presentation, 0 for each attack."""
        return np.array([int(p.instrument is None) for p in self.presentations], np.int64)

    def scores(self, frame_scores: np.ndarray) -> np.ndarray:
        """Each presentation's mean score over its accepted framesets; ``NO_FACE_SCORE`` without any."""
        n = len(self.presentations)
        sums = np.bincount(self.crops.presentations, weights=frame_scores, minlength=n)
        found = np.bincount(self.crops.presentations, minlength=n)
        return np.where(found > 0, sums / np.maximum(found, 1), NO_FACE_SCORE)


def render_fold(fold: Fold, seed: int, args: argparse.Namespace) -> Dict[str, Split]:
    """Every split of ``fold`` for ``seed``, rendered once and shared by all variants."""
    splits = {}
    for i, split in enumerate(SPLITS):
        frames = args.frames[0] if split == "train" else args.frames[1]
        presentations = plan(fold, split, args.people[i], args.presentations[i], frames, seed)
        crops = render_presentations(presentations, zlib.crc32(f"{fold.name}/{split}/{seed}/render".encode()))
        splits[split] = Split(presentations, crops)
    return splits


def run_variant(model_config: MMDGConfig, fold: Fold, splits: Dict[str, Split], config: TrainConfig) -> Dict:
    """Train one variant; score validation and test presentations; threshold at BPCER 5 % on validation."""
    started, cpu_started = time.perf_counter(), time.process_time()
    labels = fold.domain_labels()
    datasets = {name: split.crops.to_dataset(labels) for name, split in splits.items()}
    with tempfile.TemporaryDirectory(prefix="bench_dg_") as out_dir:
        result = fit(model_config, datasets["train"], datasets["val"], config, out_dir)
        if result["best_checkpoint"] is None:
            raise RuntimeError("no checkpoint was kept (validation HTER never finite)")
        device = init_distributed(config).device  # the device fit trained on
        model, _ = load_checkpoint(result["best_checkpoint"], device=str(device))
    scores = {name: splits[name].scores(predict(model, datasets[name], device=device)[0]) for name in ("val", "test")}
    val_live = scores["val"][splits["val"].labels == 1]
    threshold = max(threshold_for_bpcer(val_live, BPCER_TARGET), 0.0)
    metrics = compute_metrics(scores["test"], splits["test"].labels, threshold=threshold)
    return {"apcer": metrics["apcer"], "bpcer": metrics["bpcer"], "hter": metrics["hter"], "auc": metrics["auc"],
            "threshold": threshold, "wall_s": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu_started}


def paired_test(differences: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (zeros dropped); 1 when none is left.

    With n non-zero differences the exact test's smallest p is 2 / 2^n: at least 6 pairs must differ
    before anything can be significant at 5 %.
    """
    nonzero = [d for d in differences if d != 0]
    if not nonzero:
        return 1.0
    return float(require("scipy.stats", "train").wilcoxon(nonzero).pvalue)


def _pooled(runs: Sequence[Dict], key: str) -> Rate:
    """``key``'s rate over every presentation of ``runs`` together (the interval of the pooled count)."""
    return Rate.from_counts(sum(r[key].errors for r in runs), sum(r[key].trials for r in runs))


def _rate_cell(rate: Rate) -> str:
    return (f"{rate.errors:4d}/{rate.trials:<4d} {100 * rate.value:5.1f} "
            f"[{100 * rate.lower:5.1f}, {100 * rate.upper:5.1f}]")


def _mean_std_cell(values: Sequence[float]) -> str:
    std = f"{np.std(values, ddof=1):4.1f}" if len(values) > 1 else " n/a"
    return f"{np.mean(values):5.1f} ± {std}"


def _row(name: str, variant: str, runs: Sequence[Dict]) -> str:
    """APCER and BPCER pooled over ``runs``; HTER and AUC averaged per seed over folds, then mean ± std."""
    label = f"{name:<22}{VARIANTS[variant][0]:<15}"
    if not runs:
        return f"{label}{0:>4}  every run failed"
    seeds = sorted({r["seed"] for r in runs})
    per_seed = {key: [100 * float(np.mean([r[key] for r in runs if r["seed"] == s])) for s in seeds]
                for key in ("hter", "auc")}
    return (f"{label}{len(runs):>4}  APCER {_rate_cell(_pooled(runs, 'apcer'))}  "
            f"BPCER {_rate_cell(_pooled(runs, 'bpcer'))}  HTER {_mean_std_cell(per_seed['hter'])}  "
            f"AUC {_mean_std_cell(per_seed['auc'])}")


def _significance_cell(differences: Sequence[float]) -> str:
    """Median difference (percentage points), the paired test's p and its verdict at 5 %."""
    p = paired_test(differences)
    median = float(np.median(differences)) + 0.0 if differences else math.nan  # + 0.0: no "-0.0" for a tie
    return f"{median:+6.1f}  {p:5.3f}  {'significant at 5 %' if p < 0.05 else 'not significant':<18}"


def print_tables(results: Dict[Tuple[str, int, str], Dict], folds: Sequence[Fold], variants: Sequence[str]) -> None:
    """Per fold, per protocol and over all folds: pooled rates with 95 % intervals; then the paired tests."""
    protocols = list(dict.fromkeys(f.protocol for f in folds))
    groups = [(f.name, [f]) for f in folds] + [(p, [f for f in folds if f.protocol == p]) for p in protocols]
    if len(protocols) > 1:
        groups.append(("all folds", list(folds)))
    header = (f"{'fold':<22}{'variant':<15}{'runs':>4}  APCER {'k/n':^9} {'%':>5} {'95 % CI':^14}  "
              f"BPCER {'k/n':^9} {'%':>5} {'95 % CI':^14}  HTER % (seeds)  AUC % (seeds)")
    print(header)
    for index, (name, members) in enumerate(groups):
        if index in (0, len(folds)):
            print("-" * len(header))
        for variant in variants:
            print(_row(name, variant, [results[key] for key in results if key[0] in {f.name for f in members}
                                       and key[2] == variant]))
    if "plain" not in variants or len(variants) < 2:
        return
    print()
    print("Variant minus plain, paired over (fold, seed): median difference in percentage points (negative: fewer "
          "errors), Wilcoxon signed-rank p (two-sided), verdict at 5 % (each test alone, uncorrected)")
    header = (f"{'folds':<22}{'variant':<15}{'pairs':>5}  {'ΔHTER':>6}  {'p':>5}  {'verdict':<18}  {'ΔAPCER':>6}  "
              f"{'p':>5}  verdict")
    print(header)
    print("-" * len(header))
    for name, members in groups[len(folds):]:
        names = {f.name for f in members}
        for variant in (v for v in variants if v != "plain"):
            pairs = [(results[(f, s, "plain")], results[(f, s, v)]) for (f, s, v) in results
                     if f in names and v == variant and (f, s, "plain") in results]
            # rounded: (0.55 + 0.05) / 2 - (0.5 + 0.1) / 2 is 5e-17, which must count as no difference
            hter = [round(100 * (ours["hter"] - plain["hter"]), 9) for plain, ours in pairs]
            apcer = [round(100 * (ours["apcer"].value - plain["apcer"].value), 9) for plain, ours in pairs]
            print(f"{name:<22}{VARIANTS[variant][0]:<15}{len(pairs):>5}  {_significance_cell(hter)}  "
                  f"{_significance_cell(apcer)}".rstrip())


def estimate_s(folds: int, args: argparse.Namespace) -> float:
    """The whole run's wall seconds from the measured costs (``COST_*``): render once per fold and seed;
    per variant train, validate every epoch, score validation and test once more."""
    train = 4 * args.presentations[0] * args.frames[0]
    val, test = (2 * n * args.frames[1] for n in args.presentations[1:])
    runs = sum(train * args.epochs * COST_TRAIN_S[v] + (val * (args.epochs + 1) + test) * COST_SCORE_S + COST_RUN_S
               for v in args.variants)
    return folds * args.seeds * ((train + val + test) * COST_RENDER_S + runs)


def _csv(value: str) -> List[str]:
    return [] if value.strip() in ("", "none") else [v.strip() for v in value.split(",") if v.strip()]


def _counts(size: int, example: str):
    def parse(value: str) -> Tuple[int, ...]:
        try:
            counts = tuple(int(v) for v in value.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {size} comma-separated integers, e.g. {example}; got {value!r}")
        if len(counts) != size or min(counts) < 1:
            raise argparse.ArgumentTypeError(f"expected {size} integers ≥ 1, e.g. {example}; got {value!r}")
        return counts
    return parse


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line; options left out take ``DEFAULTS``, or ``QUICK`` with --quick."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: one family fold, one seed, plain and both, tiny sizes, one epoch")
    parser.add_argument("--families", type=_csv, help=f"held-out mask families, comma-separated, or none "
                        f"(default all: {','.join(MASK_FAMILIES)})")
    parser.add_argument("--domains", type=_csv, help=f"held-out capture domains, or none (default "
                        f"{','.join(HELD_OUT_DOMAINS)}; any of {','.join(DOMAIN_NAMES)})")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (data, initial weights, shuffling); default 3")
    parser.add_argument("--variants", type=_csv, help=f"comma-separated subset of {','.join(VARIANTS)} (default all)")
    parser.add_argument("--people", type=_counts(3, "40,20,40"), metavar="TRAIN,VAL,TEST",
                        help="subjects per split (disjoint index ranges); default %s" % (DEFAULTS["people"],))
    parser.add_argument("--presentations", type=_counts(3, "48,20,24"), metavar="TRAIN,VAL,TEST",
                        help="train: per class (live, print, replay, mask); val and test: bona fide and as many "
                             "attacks; default %s" % (DEFAULTS["presentations"],))
    parser.add_argument("--frames", type=_counts(2, "1,2"), metavar="TRAIN,EVAL",
                        help="framesets per training and per val/test presentation; default %s"
                             % (DEFAULTS["frames"],))
    parser.add_argument("--epochs", type=int, help="training epochs, every variant; default %s" % DEFAULTS["epochs"])
    parser.add_argument("--batch-size", type=int, default=16, help="batch size, every variant")
    parser.add_argument("--lr", type=float, default=None,
                        help="Adam lr, every variant (default 1e-3 for tiny from scratch, 5e-5 for paper)")
    parser.add_argument("--weight-decay", type=float, default=5e-5, help="Adam weight decay, every variant")
    parser.add_argument("--config", choices=("tiny", "paper"), default="tiny",
                        help="tiny (backbone trained from scratch) or the paper's ViT-B/16 (frozen backbone)")
    parser.add_argument("--pretrained", default=None, help="CLIP weights for --config paper: 'openai' or a local file")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="training device")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: with other work on the two cores, a second thread "
                             "made a fold 3.5 times slower; see Cost)")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.seeds < 1:
        parser.error("--seeds: need ≥ 1")
    if args.threads < 1:
        parser.error("--threads: need ≥ 1")
    if max(args.people) > INDEX_SPAN:
        parser.error(f"--people: at most {INDEX_SPAN} per split (each split's subjects start {INDEX_SPAN} after the "
                     f"last's), got {args.people}")
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or not args.variants:
        parser.error(f"--variants: unknown {unknown}; choose from {','.join(VARIANTS)}")
    args.variants = [v for v in VARIANTS if v in args.variants]  # plain first: the others are compared with it
    if any(f not in MASK_FAMILIES for f in args.families):
        parser.error(f"--families: expected names of {','.join(MASK_FAMILIES)}, got {','.join(args.families)}")
    if any(d not in DOMAIN_NAMES for d in args.domains):
        parser.error(f"--domains: expected names of {','.join(DOMAIN_NAMES)}, got {','.join(args.domains)}")
    if not args.families and not args.domains:
        parser.error("--families, --domains: nothing to hold out; name at least one family or domain")
    if args.pretrained is not None and args.config != "paper":
        parser.error("--pretrained: only with --config paper (the tiny config has no CLIP weights)")
    args.lr = args.lr if args.lr is not None else (1e-3 if args.config == "tiny" else 5e-5)
    try:
        TrainConfig(**_budget(args))  # the budget's own checks, before any rendering
    except ValueError as exc:
        parser.error(str(exc))
    return args


def _budget(args: argparse.Namespace) -> Dict:
    """The ``TrainConfig`` fields every variant shares."""
    return dict(epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay, batch_size=args.batch_size,
                device=args.device)


def run_benchmark(args: argparse.Namespace) -> Dict[Tuple[str, int, str], Dict]:
    """Render each fold and seed once, train and score every variant on it, print the runs and tables."""
    logging.getLogger().addFilter(_QUIET_INIT)
    if args.config == "tiny":
        model_config = dataclasses.replace(MMDGConfig.tiny(), train_backbone=True)
    else:
        model_config = MMDGConfig.paper(pretrained=args.pretrained)
    folds = [family_fold(f) for f in args.families] + [domain_fold(d) for d in args.domains]
    seeds = list(range(args.seeds))
    print(f"config {args.config}" + (f" (pretrained {args.pretrained})" if args.pretrained else "")
          + f", train_backbone={model_config.train_backbone}; epochs {args.epochs}, batch {args.batch_size}, "
          f"lr {args.lr:g}, weight decay {args.weight_decay:g}; people train/val/test {args.people}; presentations "
          f"{args.presentations} of {args.frames[0]}/{args.frames[1]} framesets (train/eval); seeds {seeds}; "
          f"folds {len(folds)} × variants {len(args.variants)}; torch threads {args.threads}; estimated "
          f"{estimate_s(len(folds), args) / 60:.1f} min", flush=True)
    results: Dict[Tuple[str, int, str], Dict] = {}
    started = time.perf_counter()
    for fold in folds:
        for seed in seeds:
            wall, cpu = time.perf_counter(), time.process_time()
            splits = render_fold(fold, seed, args)
            print(f"{fold.name} seed {seed}: rendered in {time.perf_counter() - wall:.1f} s (cpu "
                  f"{time.process_time() - cpu:.1f} s); " + "; ".join(
                f"{name} {len(s.presentations)} presentations ({int(s.labels.sum())} bona fide), {len(s.crops)} "
                f"crops, {len(s.presentations) - len(set(s.crops.presentations.tolist()))} without a face"
                for name, s in splits.items()), flush=True)
            for variant in args.variants:
                label, regrad, adp = VARIANTS[variant]
                config = TrainConfig(**_budget(args), regrad=regrad, adp=adp, seed=seed)
                try:
                    run = run_variant(model_config, fold, splits, config)
                except (RuntimeError, ValueError) as exc:  # e.g. non-finite scores: report, go on
                    print(f"  {label:<15} FAILED: {exc}", flush=True)
                    continue
                results[(fold.name, seed, variant)] = {**run, "seed": seed}
                print(f"  {label:<15} APCER {_rate_cell(run['apcer'])}  BPCER {_rate_cell(run['bpcer'])}  "
                      f"HTER {100 * run['hter']:5.1f}  AUC {100 * run['auc']:5.1f}  threshold {run['threshold']:.3f}  "
                      f"wall {run['wall_s']:5.1f} s, cpu {run['cpu_s']:5.1f} s", flush=True)
    print()
    print(f"Held-out test presentations at the validation threshold (BPCER {100 * BPCER_TARGET:g} % on validation); "
          f"APCER: the held-out family's masks (family folds), every attack (domain folds); k/n pooled over "
          f"runs; total wall {time.perf_counter() - started:.0f} s")
    print_tables(results, folds, args.variants)
    return results


def main(argv: Optional[Sequence[str]] = None) -> Dict[Tuple[str, int, str], Dict]:
    """Run the benchmark with ``argv``'s options; returns each run's result by (fold, seed, variant).

    torch's thread count is set for the run and restored after it (the test runs this in-process).
    """
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run_benchmark(args)
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main(sys.argv[1:])
