"""One ReGrad training step on the tiny model, and a short fit that writes a usable checkpoint."""
import numpy as np
import pytest
import torch

from mmdg_edge.checkpoint import load_checkpoint
from mmdg_edge.model import create_model
from mmdg_edge.train.regrad import ConvergenceTracker, modality_gradients, regrad_combine
from mmdg_edge.train.losses import adp_losses, modality_certainty
from mmdg_edge.train.data import CropDataset
from mmdg_edge.train.trainer import TrainConfig, fit, train_step, trainable_parameters


def _dataset(n=8, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 224, 224, 3), dtype=np.uint8)
    labels = np.arange(n) % 2
    images[labels == 1] //= 2  # something learnable
    mask = np.ones((n, 3), bool)
    mask[1, 2] = False
    return CropDataset(images, mask, labels, np.arange(n) % 3)


def test_regrad_step_changes_exactly_the_trainable_parameters_by_the_combined_gradient(tiny_config):
    torch.manual_seed(0)
    model = create_model(tiny_config)
    batch = {k: torch.stack([_dataset()[i][k] for i in range(4)]) for k in ("crops", "mask", "label", "domain")}
    names, params, owners = trainable_parameters(model)
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if n not in names}
    before = [p.detach().clone() for p in params]
    lr = 1e-2
    optimizer = torch.optim.SGD(params, lr=lr)
    config = TrainConfig(lr=lr)

    # the expected gradients, computed with the same random draws as the step
    torch.manual_seed(1)
    model.train()
    out = model(batch["crops"], batch["mask"])
    fused = torch.nn.functional.cross_entropy(out.logits, batch["label"])
    losses = adp_losses(out.features, model.text_features(), model.logit_scale(), batch["label"], batch["domain"],
                        batch["mask"], model.config.live_slot)
    tracker = ConvergenceTracker()
    tracker.update(losses.detach(), batch["mask"].any(0))
    g_f, g_m = modality_gradients(fused, losses, params)
    expected = regrad_combine(g_f, g_m, owners, modality_certainty(out.certainty, batch["mask"]), tracker.fast)

    torch.manual_seed(1)
    train_step(model, batch, optimizer, ConvergenceTracker(), config)
    for name, old, param, grad in zip(names, before, params, expected):
        torch.testing.assert_close(param.detach(), old - lr * grad, msg=name)
    # exactly the tensors with a non-zero combined gradient move (the zero-initialised up-projections
    # block the gradient of every adapter internal on this first step)
    moved = [not torch.equal(old, p.detach()) for old, p in zip(before, params)]
    assert moved == [bool(g.abs().sum() > 0) for g in expected] and any(moved)
    assert any(m for n, m in zip(names, moved) if n.endswith("up.weight"))
    for name, value in model.named_parameters():
        if name in frozen_before:
            assert torch.equal(frozen_before[name], value), name


@pytest.mark.slow
def test_short_fit_writes_a_checkpoint_with_the_validation_threshold(tiny_config, tmp_path):
    result = fit(tiny_config, _dataset(8), _dataset(6, seed=1), TrainConfig(epochs=1, batch_size=4, lr=1e-3),
                 tmp_path, provenance={"protocol": "unit-test"})
    model, meta = load_checkpoint(result["best_checkpoint"])
    assert meta["provenance"]["protocol"] == "unit-test" and meta["provenance"]["epoch"] == 1
    assert 0.0 < meta["threshold"] < 1.0
    assert (tmp_path / "history.json").exists()


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.slow
def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tiny_config, tmp_path):
    train, val = _dataset(8), _dataset(6, seed=1)
    config = TrainConfig(epochs=3, batch_size=4, lr=1e-3)
    fit(tiny_config, train, val, config, tmp_path / "straight")
    fit(tiny_config, train, val, TrainConfig(epochs=1, batch_size=4, lr=1e-3), tmp_path / "cut")
    result = fit(tiny_config, train, val, config, tmp_path / "cut", resume=tmp_path / "cut" / "last.safetensors")
    straight, resumed = _weights(tmp_path / "straight" / "last.safetensors"), _weights(tmp_path / "cut" / "last.safetensors")
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3]
    with pytest.raises(ValueError, match="already finished epoch 3"):
        fit(tiny_config, train, val, config, tmp_path / "cut", resume=tmp_path / "cut" / "last.safetensors")
    with pytest.raises(FileNotFoundError, match="no trainer state"):
        fit(tiny_config, train, val, config, tmp_path / "x", resume=tmp_path / "straight" / "best.safetensors")


@pytest.mark.slow
def test_two_process_gloo_training_matches_one_process_on_the_same_global_batch(tmp_path):
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    from mmdg_edge.train.regrad import ConvergenceTracker

    path = Path(__file__).with_name("ddp_fit.py")
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(path), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rank0, rank1 = _weights(tmp_path / "rank0.safetensors"), _weights(tmp_path / "rank1.safetensors")
    for name in rank0:  # each rank read other samples, yet the all-reduced gradients keep them equal
        assert torch.equal(rank0[name], rank1[name]), name
    saved = _weights(tmp_path / "last.safetensors")
    for name, value in rank0.items():
        if name.startswith("param."):
            assert torch.equal(saved[name[len("param."):]], value), name

    # One process redoes the first step on the global batch the two ranks shared: DistributedSampler
    # gives rank r the permutation's entries r, r + 2, ...; the first step takes two from each.
    spec = importlib.util.spec_from_file_location("ddp_fit", path)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    order = torch.randperm(8, generator=torch.Generator().manual_seed(worker.CONFIG.seed)).tolist()
    train = worker.dataset()
    batch = {k: torch.stack([train[i][k] for i in order[:4]]) for k in ("crops", "mask", "label", "domain")}
    model = worker.make_model()
    names, params, _ = trainable_parameters(model)
    optimizer = torch.optim.Adam(params, lr=worker.CONFIG.lr, weight_decay=worker.CONFIG.weight_decay)
    with worker.deterministic_draws():
        train_step(model, batch, optimizer, ConvergenceTracker(), worker.CONFIG)
    assert any(p.grad.abs().sum() > 0 for p in params)
    for name, param in zip(names, params):
        # float sums in another order: equal up to rounding relative to the tensor's scale
        scale = float(param.grad.abs().max())
        torch.testing.assert_close(rank0[f"grad.{name}"], param.grad, rtol=1e-4, atol=1e-5 * scale, msg=name)
    _, meta = load_checkpoint(tmp_path / "last.safetensors")
    assert meta["provenance"]["world_size"] == 2 and meta["provenance"]["protocol"] == "ddp-test"
