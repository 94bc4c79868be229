"""ReGrad step cost on CPU, same run: (a) plain fused-loss step, (b) the floor: the same four
gradients with no combination, (c) the vectorised ReGrad step, (d) a per-parameter Python loop.

Four gradients cost about four backward passes on a CPU, so the goals are relative to the floor:
(c) ≤ 1.2× (b), (c) ≤ 3× (a), (c) faster than (d).

    python benchmarks/bench_regrad.py [--configs tiny,paper] [--batch 4] [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from mmdg_edge.model import MMDGConfig, create_model
from mmdg_edge.train.losses import adp_losses, modality_certainty
from mmdg_edge.train.regrad import modality_gradients, regrad_combine
from mmdg_edge.train.trainer import trainable_parameters


def _loop_combine(fused, per_modality, owners, certainty, fast):
    """The reference's shape: one Python iteration, and host syncs, per parameter tensor."""
    out = []
    for p, g_f in enumerate(fused):
        m = owners[p]
        if m is None:
            out.append(g_f)
            continue
        g = [per_modality[k][p] for k in range(3)]

        def same(a, b):
            dot, norm = float((a * b).sum()), float((b * b).sum())
            coef = dot / norm if norm > 0 else 0.0
            return coef * b if dot > 0 else a - coef * b

        others = [k for k in range(3) if k != m]
        if fast == m:
            s = g[others[0]] + g[others[1]]
            delta = float(certainty[m]) * same(g[m], s) + s
        else:
            delta = g[m] + sum(float(certainty[k]) * same(g[k], g[m]) for k in others)
        out.append(g_f + delta)
    return out


def bench(name: str, batch: int, rounds: int) -> dict:
    torch.manual_seed(0)
    model = create_model(MMDGConfig.tiny() if name == "tiny" else MMDGConfig.paper()).train()
    _, params, owners = trainable_parameters(model)
    crops = torch.randn(batch, 3, 3, 224, 224)
    mask = torch.ones(batch, 3, dtype=torch.bool)
    labels, domains = torch.arange(batch) % 2, torch.arange(batch) % 3

    def losses():
        out = model(crops, mask)
        fused = torch.nn.functional.cross_entropy(out.logits, labels)
        modal = adp_losses(out.features, model.text_features(), model.logit_scale(), labels, domains, mask, 1)
        return out, fused, modal

    def plain():
        _, fused, modal = losses()
        torch.autograd.grad(fused + modal.sum(), params, allow_unused=True)

    def floor():
        _, fused, modal = losses()
        modality_gradients(fused, modal, params)

    def vectorised():
        out, fused, modal = losses()
        g_f, g_m = modality_gradients(fused, modal, params)
        regrad_combine(g_f, g_m, owners, modality_certainty(out.certainty, mask), torch.tensor(1))

    def loop():
        out, fused, modal = losses()
        g_f, g_m = modality_gradients(fused, modal, params)
        _loop_combine(g_f, g_m, owners, modality_certainty(out.certainty, mask), 1)

    fns = {"a": plain, "b": floor, "c": vectorised, "d": loop}
    for fn in fns.values():
        fn()
    samples = {k: [] for k in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in samples.items()} | {"config": name, "params": len(params)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny", help="comma-separated: tiny, paper")
    parser.add_argument("--batch", type=int, default=4, help="framesets per step")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (variants alternate)")
    args = parser.parse_args()
    print(f"ReGrad step on CPU ({torch.get_num_threads()} threads), batch {args.batch}, median seconds per step")
    print(f"{'config':<7}{'tensors':>8}{'(a) plain':>11}{'(b) floor':>11}{'(c) ReGrad':>12}{'(d) loop':>10}"
          f"{'c/b':>7}{'c/a':>7}{'d/c':>7}")
    for name in args.configs.split(","):
        r = bench(name, args.batch, args.rounds)
        print(f"{r['config']:<7}{r['params']:>8}{r['a']:>11.3f}{r['b']:>11.3f}{r['c']:>12.3f}{r['d']:>10.3f}"
              f"{r['c'] / r['b']:>7.2f}{r['c'] / r['a']:>7.2f}{r['d'] / r['c']:>7.2f}")


if __name__ == "__main__":
    main()
