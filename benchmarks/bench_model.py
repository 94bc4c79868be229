"""Model throughput on CPU: the bare three-stream CLIP ViT (floor) vs MMDG++ eval forward.

Prints framesets/s for (a) `backbone.visual` on the 3B images (no adapters), (b) the full MMDG++
eval forward, (c) MMDG++ with the three streams run as three separate passes, the ratios
(b)/(a) and (b)/(c), and the achieved GFLOP/s of (a), all measured in the same run.

    python benchmarks/bench_model.py [--configs tiny,paper] [--batches 1,8] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict, List

import torch
from torch.utils.flop_counter import FlopCounterMode

from mmdg_edge.model import MMDGConfig, MMDGPlusPlus, create_model


def _time_interleaved(fns: Dict[str, Callable[[], object]], min_seconds: float, min_rounds: int = 3) -> Dict[str, float]:
    """Median seconds per call of each function, run in alternating rounds so that load from other
    processes hits every variant alike."""
    for fn in fns.values():
        fn()  # warm-up
    samples: Dict[str, List[float]] = {name: [] for name in fns}
    start = time.perf_counter()
    while min(len(v) for v in samples.values()) < min_rounds or time.perf_counter() - start < min_seconds:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(values) for name, values in samples.items()}


def _separate_streams(model: MMDGPlusPlus, crops: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The same computation with each modality's frozen blocks run as its own pass (what the reference does)."""
    visual = model.backbone.visual
    batch = crops.shape[0]
    streams = []
    for m in range(3):
        x = visual.conv1(crops[:, m]).flatten(2).transpose(1, 2)
        cls = model.class_embeddings[m].expand(batch, 1, -1)
        streams.append(visual.ln_pre(torch.cat([cls, x], 1) + model.positional_embeddings[m]))
    present = mask.t()
    partners = ((1, 2), (0, 2), (0, 1))
    for block, adapters in zip(visual.transformer.resblocks, model.adapters):
        streams = [x + block.ls_1(block.attention(q_x=block.ln_1(x))) for x in streams]
        normed = [block.ln_2(x) for x in streams]
        mlps = [block.ls_2(block.mlp(h)) for h in normed]
        new = []
        for m, adapter in enumerate(adapters):
            a, b = partners[m]
            out, _ = adapter(normed[m], torch.stack([normed[a], normed[b]]), present[m], present[[a, b]])
            new.append(streams[m] + mlps[m] + out)
        streams = new
    feats = [torch.nn.functional.normalize(visual.ln_post(x[:, 0]) @ model.projections[m], dim=-1)
             for m, x in enumerate(streams)]
    return model.head(torch.cat(feats, 1))


def bench(config_name: str, batch: int, min_seconds: float) -> dict:
    config = MMDGConfig.tiny() if config_name == "tiny" else MMDGConfig.paper()
    torch.manual_seed(0)
    model = create_model(config).eval()
    crops = torch.randn(batch, 3, 3, 224, 224)
    mask = torch.ones(batch, 3, dtype=torch.bool)
    images = crops.transpose(0, 1).reshape(-1, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(_separate_streams(model, crops, mask), model(crops, mask).logits, atol=1e-4, rtol=0)
        with FlopCounterMode(display=False) as counter:
            model.backbone.visual(images)
        flops = counter.get_total_flops()
        times = _time_interleaved(
            {
                "bare": lambda: model.backbone.visual(images),
                "full": lambda: model(crops, mask),
                "separate": lambda: _separate_streams(model, crops, mask),
            },
            min_seconds,
        )
    bare, full, separate = times["bare"], times["full"], times["separate"]
    return {
        "config": config_name, "batch": batch,
        "bare_fps": batch / bare, "mmdg_fps": batch / full, "separate_fps": batch / separate,
        "b_over_a": full / bare, "b_over_c": full / separate, "gflops": flops / bare / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,paper", help="comma-separated: tiny, paper")
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--min-seconds", type=float, default=10.0, help="minimum timed seconds per cell (all variants together)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [bench(c, int(b), args.min_seconds) for c in args.configs.split(",") for b in args.batches.split(",")]
    print(f"MMDG++ eval forward on CPU ({args.threads} threads), framesets/s; time ratios (lower is better for b/a)")
    header = f"{'config':<7}{'batch':>6}{'(a) bare ViT':>14}{'(b) MMDG++':>12}{'(c) 3 passes':>14}{'b/a time':>10}{'b/c time':>10}{'GFLOP/s (a)':>13}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['config']:<7}{r['batch']:>6}{r['bare_fps']:>14.2f}{r['mmdg_fps']:>12.2f}{r['separate_fps']:>14.2f}"
              f"{r['b_over_a']:>10.2f}{r['b_over_c']:>10.2f}{r['gflops']:>13.1f}")


if __name__ == "__main__":
    main()
