"""ReGrad step cost on CPU, tiny and paper configs in the same run:

  (a) plain step: one backward of L_fused + Σ L_m (training without ReGrad),
  (b) the floor: the four gradients g_f, g_rgb, g_depth, g_ir (batched autograd), no combination,
  (c) the vectorised ReGrad step: (b) + ConvergenceTracker + regrad_combine,
  (d) (b) + a per-parameter Python loop with host reads per tensor (the reference's shape).

Every variant runs the same forward (model + ADP text features). Four gradients cost about four
backward passes on a CPU, so the goals are relative to the floor: (c) ≤ 1.2× (b), (c) ≤ 3× (a),
(c) faster than (d). Variants alternate within each round; the table shows the fastest round of
each (the CPU is shared, and other load only ever adds time). The last
columns time the two combiners alone on one set of gradients (10 alternating repeats) and check
that they produce the same gradients.

    OMP_NUM_THREADS=1 python benchmarks/bench_regrad.py [--configs tiny,paper] [--batch 4]
        [--paper-batch 2] [--rounds 9] [--paper-rounds 2]
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List

import torch

from mmdg_edge.model import MMDGConfig, create_model
from mmdg_edge.train.losses import adp_losses, modality_certainty
from mmdg_edge.train.regrad import ConvergenceTracker, modality_gradients, regrad_combine
from mmdg_edge.train.trainer import trainable_parameters


def _loop_combine(fused, per_modality, owners, certainty, fast) -> List[torch.Tensor]:
    """METHOD.md §4 one tensor at a time, with a host read of every dot product (as the reference)."""

    def same(a, b):
        dot, norm = float((a * b).sum()), float((b * b).sum())
        coef = dot / norm if norm > 0 else 0.0
        return coef * b if dot > 0 else a - coef * b

    out = []
    for p, g_f in enumerate(fused):
        m = owners[p]
        if m is None:
            out.append(g_f)
            continue
        g = [per_modality[k][p] for k in range(3)]
        others = [k for k in range(3) if k != m]
        if fast == m:
            s = g[others[0]] + g[others[1]]
            delta = float(certainty[m]) * same(g[m], s) + s
        else:
            delta = g[m] + sum(float(certainty[k]) * same(g[k], g[m]) for k in others)
        out.append(g_f + delta)
    return out


def bench(name: str, batch: int, rounds: int) -> Dict[str, object]:
    torch.manual_seed(0)
    model = create_model(MMDGConfig.tiny() if name == "tiny" else MMDGConfig.paper()).train()
    _, params, owners = trainable_parameters(model)
    crops = torch.randn(batch, 3, 3, 224, 224)
    mask = torch.ones(batch, 3, dtype=torch.bool)
    labels, domains = torch.arange(batch) % 2, torch.arange(batch) % 3
    tracker = ConvergenceTracker()
    results: Dict[str, List[torch.Tensor]] = {}

    def losses():
        out = model(crops, mask)
        fused = torch.nn.functional.cross_entropy(out.logits, labels)
        modal = adp_losses(out.features, model.text_features(), model.logit_scale(), labels, domains, mask,
                           model.config.live_slot)
        return out, fused, modal

    def plain():
        _, fused, modal = losses()
        torch.autograd.grad(fused + modal.sum(), params, allow_unused=True)

    def floor():
        _, fused, modal = losses()
        modality_gradients(fused, modal, params)

    def vectorised():
        out, fused, modal = losses()
        tracker.update(modal.detach(), mask.any(dim=0))
        g_f, g_m = modality_gradients(fused, modal, params)
        certainty = modality_certainty(out.certainty, mask)
        results["c"] = regrad_combine(g_f, g_m, owners, certainty, tracker.fast_index)

    def loop():
        out, fused, modal = losses()
        tracker.update(modal.detach(), mask.any(dim=0))
        g_f, g_m = modality_gradients(fused, modal, params)
        results["d"] = _loop_combine(g_f, g_m, owners, modality_certainty(out.certainty, mask), tracker.fast)

    fns: Dict[str, Callable[[], None]] = {"a": plain, "b": floor, "c": vectorised, "d": loop}
    for fn in fns.values():
        fn()
    samples: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - start)
    # Training mode samples the adapters' Gaussians, so (c) and (d) see different draws: compare
    # the combiners on one set of gradients instead.
    out, fused, modal = losses()
    g_f, g_m = modality_gradients(fused, modal, params)
    certainty = modality_certainty(out.certainty, mask)
    for fast in (None, 0, 1, 2):
        got = regrad_combine(g_f, g_m, owners, certainty, fast)
        want = _loop_combine(g_f, g_m, owners, certainty, fast)
        error = max(float((x - y).abs().max() / y.abs().max().clamp_min(1e-30)) for x, y in zip(got, want))
        results.setdefault("error", []).append(error)
    combiners = {"c_only": lambda: regrad_combine(g_f, g_m, owners, certainty, tracker.fast_index),
                 "d_only": lambda: _loop_combine(g_f, g_m, owners, certainty, tracker.fast)}
    for key in combiners:
        samples[key] = []
    for _ in range(10):
        for key, fn in combiners.items():
            start = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - start)
    return {k: min(v) for k, v in samples.items()} | {
        "config": name, "tensors": len(params), "values": sum(p.numel() for p in params), "batch": batch,
        "error": max(results["error"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,paper", help="comma-separated: tiny, paper")
    parser.add_argument("--batch", type=int, default=4, help="framesets per step, tiny config")
    parser.add_argument("--paper-batch", type=int, default=2, help="framesets per step, paper config")
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds, tiny config (variants alternate)")
    parser.add_argument("--paper-rounds", type=int, default=2, help="timed rounds, paper config")
    args = parser.parse_args()
    print(f"ReGrad step on CPU ({torch.get_num_threads()} threads), seconds per step (fastest round)")
    header = (f"{'config':<7}{'batch':>6}{'tensors':>8}{'values':>10}{'(a) plain':>11}{'(b) floor':>11}"
              f"{'(c) ReGrad':>12}{'(d) loop':>10}{'c/b':>7}{'c/a':>7}{'d/c':>7}"
              f"{'combine c':>11}{'combine d':>11}{'max rel |c-d|':>15}")
    print(header)
    for name in args.configs.split(","):
        paper = name == "paper"
        r = bench(name, args.paper_batch if paper else args.batch, args.paper_rounds if paper else args.rounds)
        print(f"{r['config']:<7}{r['batch']:>6}{r['tensors']:>8}{r['values']:>10}{r['a']:>11.3f}{r['b']:>11.3f}"
              f"{r['c']:>12.3f}{r['d']:>10.3f}{r['c'] / r['b']:>7.2f}{r['c'] / r['a']:>7.2f}{r['d'] / r['c']:>7.2f}"
              f"{r['c_only']:>11.4f}{r['d_only']:>11.4f}{r['error']:>15.1e}")


if __name__ == "__main__":
    main()
