"""Worker for test_trainer's DDP test: ``torchrun --nproc_per_node 2 ddp_fit.py OUT_DIR``.

Every rank trains the tiny model for one epoch on the same 8 samples (global batch 4: two samples
per process and step) and writes its final trainable weights and its first step's gradients (after
the all-reduce) to OUT_DIR/rank{RANK}.safetensors.
"""
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

from mmdg_edge.model import MMDGConfig, create_model
from mmdg_edge.train.data import CropDataset
from mmdg_edge.train.trainer import TrainConfig, fit, trainable_parameters


def _dataset(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 224, 224, 3), dtype=np.uint8)
    labels = np.arange(n) % 2
    images[labels == 1] //= 2
    return CropDataset(images, np.ones((n, 3), bool), labels, np.arange(n) % 3)


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)  # the same initial weights on every rank
    model = create_model(MMDGConfig.tiny())
    names, params, _ = trainable_parameters(model)
    first_grads = []
    original_step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        if not first_grads:
            first_grads.extend(p.grad.detach().clone() for p in params)
        return original_step(self, *args, **kwargs)

    torch.optim.Adam.step = recording_step
    fit(model.config, _dataset(8, 0), _dataset(6, 1), TrainConfig(epochs=1, batch_size=4, lr=1e-3, device="cpu"),
        out_dir, provenance={"protocol": "ddp-test"}, model=model)
    tensors = {f"param.{n}": p.detach().contiguous() for n, p in zip(names, params)}
    tensors.update({f"grad.{n}": g.contiguous() for n, g in zip(names, first_grads)})
    save_file(tensors, os.path.join(out_dir, f"rank{os.environ['RANK']}.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1])
