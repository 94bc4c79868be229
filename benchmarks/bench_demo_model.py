"""A demo model against every species, per presentation: the model alone and the whole kiosk path.

Held-out people (subjects 900 and up) and instruments (indices 60 and up), used in no training:
per group, ``--presentations`` presentations of ``--frames`` framesets, walking the capture domains
(``DOMAIN_NAMES``). Groups: bona fide; prints (plain, folded, rolled, hand-held, eyes cut out and
worn); screens; masks of each family (``MASK_FAMILIES``: silicone is the demo model's held-out
family); partial masks. Two readings per presentation:
- model alone: the mean live probability of its framesets with a face, at the model's threshold
  (live = accepted); the detector runs with ``use_physics=False``;
- kiosk path: ``Detector.stream`` with every check (session decisions; accepted = the door opened).
A bona fide presentation is an error when it is not accepted (BPCER), an attack when it is (APCER).
Rates per group with 95 % Clopper-Pearson intervals. ``--model`` adds another model (e.g. the
previous release's demo.onnx) for a before/after table.

    python benchmarks/bench_demo_model.py [--presentations 6] [--frames 8] [--model OLD.onnx] [--threshold T]
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Dict, List, Tuple

import numpy as np

from mmdg_edge import Detector
from mmdg_edge.detector import DetectorConfig
from mmdg_edge.sensors.synthetic import (
    DOMAIN_NAMES, DOMAINS, MASK_FAMILIES, Segment, create_instrument, create_subject, render_sequence,
)
from mmdg_edge.stats import clopper_pearson

FIRST_PERSON, FIRST_INSTRUMENT = 900, 60
PRINTS = ("print", "folded_print", "rolled_print", "handheld_print", "eyes_cut_print")
GROUPS = ("bona fide",) + PRINTS + ("replay",) + tuple(f"mask: {f}" for f in MASK_FAMILIES) + ("partial_mask",)


def _instrument(group: str, k: int):
    if group == "bona fide":
        return None
    if group.startswith("mask: "):
        family = group[len("mask: "):]
        return create_instrument("mask", MASK_FAMILIES.index(family) + len(MASK_FAMILIES) * (FIRST_INSTRUMENT + k))
    return create_instrument(group, FIRST_INSTRUMENT + k)


def presentations(count: int, frames: int) -> Dict[str, List[list]]:
    """Per group, ``count`` lists of framesets, one per presentation."""
    out: Dict[str, List[list]] = {}
    for g, group in enumerate(GROUPS):
        out[group] = []
        for k in range(count):
            domain = (g + k) % len(DOMAIN_NAMES)
            near, far = DOMAINS[domain].distance_m
            instrument = _instrument(group, k)
            kind = "live" if instrument is None else instrument.kind
            person = create_subject(FIRST_PERSON + g * count + k)
            wearer = create_subject(FIRST_PERSON + 500 + k) if group == "eyes_cut_print" else None
            segment = Segment(kind, frames, domain=domain, distance_start_m=near + (far - near) * (k % 3) / 2,
                              subject=person, instrument=instrument, wearer=wearer)
            out[group].append(list(render_sequence([segment], seed=7000 + 100 * g + k)))
    return out


def measure(detector: Detector, staged: Dict[str, List[list]]) -> Dict[str, Tuple[int, int, int, int]]:
    """Per group: (model accepted, model presentations with a face, kiosk opened, presentations)."""
    alone = Detector(detector.engine, threshold=detector.threshold,
                     config=dataclasses.replace(detector.config, use_physics=False))
    out = {}
    for group, shown in staged.items():
        model_yes = model_n = opened = 0
        for frames in shown:
            scores = [v.score for v in (alone.check(f) for f in frames) if v.score is not None]
            if scores:
                model_n += 1
                model_yes += float(np.mean(scores)) >= detector.threshold
            opened += any(r.session.opened for r in detector.stream(frames, allow_recorded=True))
        out[group] = (model_yes, model_n, opened, len(shown))
    return out


def _rate(errors: int, trials: int) -> str:
    if not trials:
        return "-"
    low, high = clopper_pearson(errors, trials)
    return f"{errors / trials:.2f} [{low:.2f}, {high:.2f}] {errors}/{trials}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presentations", type=int, default=6, help="per group")
    parser.add_argument("--frames", type=int, default=8, help="framesets per presentation")
    parser.add_argument("--model", action="append", default=[], help="another model to compare (repeatable)")
    parser.add_argument("--threshold", type=float, help="judge every model at this threshold instead of its own "
                                                        "(another operating point)")
    args = parser.parse_args()
    started = time.perf_counter()
    staged = presentations(args.presentations, args.frames)
    models = ["demo"] + args.model
    results = {}
    for model in models:
        detector = Detector.load(model, engine="onnxruntime", config=DetectorConfig(pipeline_realtime=False),
                                 threshold=args.threshold)
        results[model] = (detector.threshold, measure(detector, staged))
    print(f"{args.presentations} presentations × {args.frames} framesets per group, held-out people and instruments, "
          f"every capture domain by turns; {time.perf_counter() - started:.0f} s")
    for model, (threshold, table) in results.items():
        print(f"\n{model} (threshold {threshold:.3f}): error rate per presentation (BPCER for bona fide, APCER for "
              "attacks), 95 % CI")
        print(f"{'group':<16}{'model alone':>28}{'kiosk path (door opened)':>32}")
        for group in GROUPS:
            model_yes, model_n, opened, n = table[group]
            if group == "bona fide":
                cells = (_rate(model_n - model_yes, model_n), _rate(n - opened, n))
            else:
                cells = (_rate(model_yes, model_n), _rate(opened, n))
            print(f"{group:<16}{cells[0]:>28}{cells[1]:>32}")


if __name__ == "__main__":
    main()
