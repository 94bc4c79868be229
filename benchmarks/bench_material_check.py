"""The IR material check alone, on people, masks and capture domains it was not set on.

The check (``mmdg_edge.physics``: the projector's dots too sharp for skin, median blur under
``PhysicsConfig.min_scatter_mm``) is run on aligned framesets of the synthetic camera:
- live: held-out people (subjects 300 and up, in no training set and not looked at while the limit
  was set), in every capture domain (``DOMAIN_NAMES``);
- masks: instruments 50 and up of every mask family (``MASK_FAMILIES``) and partial masks, worn by
  held-out people, in every capture domain.
A presentation is one person or mask in one domain for ``--frames`` framesets; the check stops it
when it vetoes any of them (a kiosk session needs every frameset in a row to pass). Per family and
domain: presentations stopped / presentations measured (APCER for masks is the share NOT stopped;
BPCER for live the share stopped), with 95 % Clopper-Pearson intervals over all domains. "unmeasured"
counts presentations where the check could not run on any frameset (projector off, face too far).

    python benchmarks/bench_material_check.py [--presentations 3] [--frames 3] [--quick]
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Dict, List, Tuple

import numpy as np

from mmdg_edge.align import FaceAligner
from mmdg_edge.physics import PhysicsConfig, check_physics
from mmdg_edge.sensors.synthetic import (
    DOMAIN_NAMES, DOMAINS, MASK_FAMILIES, Segment, create_instrument, create_subject, render_sequence,
)
from mmdg_edge.stats import clopper_pearson

FIRST_PERSON, FIRST_INSTRUMENT = 300, 50
GROUPS = ("live",) + MASK_FAMILIES + ("partial",)


def _instrument(group: str, k: int):
    if group == "live":
        return None
    if group == "partial":
        return create_instrument("partial_mask", FIRST_INSTRUMENT + k)
    return create_instrument("mask", MASK_FAMILIES.index(group) + len(MASK_FAMILIES) * (FIRST_INSTRUMENT + k))


def run(presentations: int, frames: int, domains: Tuple[str, ...], config: PhysicsConfig
        ) -> Dict[Tuple[str, str], List[int]]:
    """{(group, domain): [stopped, measured, unmeasured]} over the presentations."""
    aligner = FaceAligner()
    counts: Dict[Tuple[str, str], List[int]] = defaultdict(lambda: [0, 0, 0])
    for d, domain in enumerate(domains):
        index = DOMAIN_NAMES.index(domain)
        for g, group in enumerate(GROUPS):
            for k in range(presentations):
                person = create_subject(FIRST_PERSON + (d * len(GROUPS) + g) * presentations + k)
                instrument = _instrument(group, d * presentations + k)
                kind = "live" if instrument is None else "mask"
                near, far = DOMAINS[index].distance_m  # the domain's range, walked by the presentations
                distance = near + (far - near) * ((k + g) % 4) / 3
                segment = Segment(kind, frames, domain=index, subject=person, instrument=instrument,
                                  distance_start_m=distance)
                stopped = measured = False
                for frameset in render_sequence([segment], seed=7919 * index + 31 * g + k):
                    result = aligner.align(frameset)
                    if result.status != "ok":
                        continue
                    report = check_physics(result.crops, config)
                    if "IR material" in report.unmeasured or report.scatter_mm is None:
                        continue
                    measured = True
                    stopped |= report.scatter_mm < config.min_scatter_mm
                cell = counts[(group, domain)]
                cell[0] += int(stopped)
                cell[1] += int(measured)
                cell[2] += int(not measured)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presentations", type=int, default=3, help="per group and capture domain")
    parser.add_argument("--frames", type=int, default=3, help="framesets per presentation")
    parser.add_argument("--quick", action="store_true", help="one presentation of two framesets, three domains")
    args = parser.parse_args()
    domains = DOMAIN_NAMES
    if args.quick:
        args.presentations, args.frames, domains = 1, 2, ("d435-a", "d455", "d435-emitter-off")
    config = PhysicsConfig()
    started = time.perf_counter()
    counts = run(args.presentations, args.frames, domains, config)
    print(f"IR material check alone (min_scatter_mm {config.min_scatter_mm}); {args.presentations} presentations of "
          f"{args.frames} framesets per group and domain; held-out people and instruments; "
          f"{time.perf_counter() - started:.0f} s")
    print("cells: stopped/measured (unmeasured); live: stopped = BPCER, masks: stopped = 1 - APCER")
    print(f"{'group':<10}" + "".join(f"{d[:13]:>15}" for d in domains) + f"{'all domains':>34}")
    for group in GROUPS:
        cells, stopped, measured = [], 0, 0
        for domain in domains:
            s, m, u = counts[(group, domain)]
            stopped, measured = stopped + s, measured + m
            cells.append(f"{s}/{m} ({u})")
        rate = "-" if not measured else "{:.2f} [{:.2f}, {:.2f}] {}/{}".format(
            stopped / measured, *clopper_pearson(stopped, measured), stopped, measured)
        label = "BPCER" if group == "live" else "stopped"
        print(f"{group:<10}" + "".join(f"{c:>15}" for c in cells) + f"{label + ' ' + rate:>34}")


if __name__ == "__main__":
    main()
