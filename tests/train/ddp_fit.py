"""Worker for test_trainer's DDP test: ``torchrun --nproc_per_node 2 ddp_fit.py OUT_DIR``.

Every rank trains the tiny model for one epoch on the same 8 samples (global batch 4: two samples
per process and step) and writes its final trainable weights and its first step's gradients (after
the all-reduce) to OUT_DIR/rank{RANK}.safetensors. The adapters' random draws are replaced by
constants (``deterministic_draws``), so the test can redo the first step in one process.
"""
import contextlib
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

from mmdg_edge.model import MMDGConfig, create_model
from mmdg_edge.train.data import CropDataset
from mmdg_edge.train.trainer import TrainConfig, fit, trainable_parameters

CONFIG = TrainConfig(epochs=1, batch_size=4, lr=1e-3, device="cpu")


def dataset(n=8, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 224, 224, 3), dtype=np.uint8)
    labels = np.arange(n) % 2
    images[labels == 1] //= 2
    return CropDataset(images, np.ones((n, 3), bool), labels, np.arange(n) % 3)


def make_model():
    torch.manual_seed(0)  # the same initial weights on every rank
    return create_model(MMDGConfig.tiny())


@contextlib.contextmanager
def deterministic_draws():
    """Gaussian query samples at their mean and token choices at probability ½: a sample's result no
    longer depends on which other samples share its batch."""
    randn, rand_like = torch.randn, torch.rand_like
    torch.randn = lambda *size, **kw: torch.zeros(*size, **kw)
    torch.rand_like = lambda t, **kw: torch.full_like(t, 0.5, **kw)
    try:
        yield
    finally:
        torch.randn, torch.rand_like = randn, rand_like


@contextlib.contextmanager
def first_step_gradients(params, out):
    """Copy the gradients the optimizer applies in its first step into ``out``."""
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        if not out:
            out.extend(p.grad.detach().clone() for p in params)
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = step
    try:
        yield
    finally:
        torch.optim.Adam.step = original


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    model = make_model()
    names, params, _ = trainable_parameters(model)
    grads = []
    with deterministic_draws(), first_step_gradients(params, grads):
        fit(model.config, dataset(), dataset(6, 1), CONFIG, out_dir, provenance={"protocol": "ddp-test"}, model=model)
    tensors = {f"param.{n}": p.detach().contiguous() for n, p in zip(names, params)}
    tensors.update({f"grad.{n}": g.contiguous() for n, g in zip(names, grads)})
    save_file(tensors, os.path.join(out_dir, f"rank{os.environ['RANK']}.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1])
