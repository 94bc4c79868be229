"""The MMDG++ training loop: fused CE + ADP losses combined by ReGrad, validation HTER, best checkpoint.

Defaults (Adam, lr 5e-5, weight decay 5e-5, batch 16, 80 epochs) are neither paper's: they are the
nearest published priors, from the same group's DADM training script (METHOD.md §4).

Multi-process training (``torchrun``): the usual env vars (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) start a process group (NCCL on GPUs, gloo on CPU); the model is wrapped in
DistributedDataParallel (which broadcasts rank 0's weights at start) and every process reads its share
of each global batch through a DistributedSampler. Gradients are NOT reduced by DDP's backward hooks:
ReGrad needs the four gradients g_f, g_rgb, g_depth, g_ir of the *global* batch, so each process
computes them on its share, they are averaged across processes (one flattened all-reduce), and only
then combined; the per-modality losses and certainties that pick the fast modality and scale the
combination are averaged too, so every process takes the same decision and keeps the same weights.
The plain baseline (no ReGrad) averages its one gradient the same way. Shares of equal size are
averaged with equal weight, as DDP does.
"""
from __future__ import annotations

import json
import logging
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import CheckpointError, require
from ..model import MMDGConfig, MMDGPlusPlus, create_model
from .losses import adp_losses, modality_certainty, symmetric_prompt_losses
from .metrics import compute_metrics, threshold_at_eer
from .regrad import ConvergenceTracker, modality_gradients, regrad_combine

logger = logging.getLogger(__name__)

__all__ = ["TrainConfig", "Distributed", "init_distributed", "trainable_parameters", "train_step", "predict", "fit",
           "state_path"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class TrainConfig:
    """Training options; the CLI's options map 1:1 onto these fields.

    ``batch_size`` is the global batch: with N processes each reads batch_size / N samples per step.
    ``amp`` runs forward and losses under bfloat16 autocast (no loss scaling needed, unlike float16).
    ``device`` "auto" picks CUDA (the process's LOCAL_RANK GPU under torchrun) when available.

    The method's parts switch off separately (the ablations of bench_synthetic_dg): ``regrad`` and
    ``adp`` both on is MMDG++; ``adp`` alone adds the ADP losses to the fused loss; ``regrad`` alone
    combines gradients of symmetric prompt losses (one live and one shared spoof slot, no domains);
    both off is plain fine-tuning on the fused loss.
    """

    epochs: int = 80
    lr: float = 5e-5
    weight_decay: float = 5e-5
    batch_size: int = 16
    regrad: bool = True
    adp: bool = True
    amp: bool = False
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}: expected an int ≥ 1, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr: expected > 0, got {self.lr}")
        if not self.weight_decay >= 0:
            raise ValueError(f"TrainConfig.weight_decay: expected ≥ 0, got {self.weight_decay}")
        if self.num_workers < 0:
            raise ValueError(f"TrainConfig.num_workers: expected ≥ 0, got {self.num_workers}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"TrainConfig.device: expected 'auto', 'cpu' or 'cuda', got {self.device!r}")


@dataclass(frozen=True)
class Distributed:
    """This process's place in a process group (world_size 1: a single process, no group)."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """True on the process that validates, saves and reports."""
        return self.rank == 0

    def average(self, tensors: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """The element-wise mean of ``tensors`` over all processes (one all-reduce for the whole list)."""
        tensors = list(tensors)
        if self.world_size == 1 or not tensors:
            return tensors
        flat = torch.cat([t.detach().reshape(-1).float() for t in tensors])
        torch.distributed.all_reduce(flat)
        flat /= self.world_size
        out, start = [], 0
        for t in tensors:
            out.append(flat[start : start + t.numel()].view(t.shape).to(t.dtype))
            start += t.numel()
        return out


def init_distributed(config: TrainConfig) -> Distributed:
    """Join the process group described by torchrun's env vars, or describe a single process.

    Raises:
        ValueError: the global batch does not split evenly over the processes, or CUDA was asked for
            and is not available.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("TrainConfig.device: 'cuda' asked for, but torch sees no CUDA device")
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if world_size == 1:
        return Distributed(0, 1, device)
    if config.batch_size % world_size:
        raise ValueError(f"TrainConfig.batch_size: the global batch {config.batch_size} must split evenly over "
                         f"{world_size} processes")
    if not torch.distributed.is_initialized():
        if use_cuda:
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    return Distributed(torch.distributed.get_rank(), torch.distributed.get_world_size(), device)


def _unwrap(model: torch.nn.Module) -> MMDGPlusPlus:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def trainable_parameters(model: torch.nn.Module) -> Tuple[List[str], List[torch.nn.Parameter], List[Optional[int]]]:
    """Names, tensors and owning modality of every trainable parameter, in a fixed order."""
    model = _unwrap(model)
    owners = model.parameter_owners()
    named = [(n, p) for n, p in model.named_parameters() if n in owners]
    return [n for n, _ in named], [p for _, p in named], [owners[n] for n, _ in named]


def train_step(model: torch.nn.Module, batch: Dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
               tracker: ConvergenceTracker, config: TrainConfig, dist: Distributed = Distributed()) -> Dict[str, float]:
    """One optimisation step; with ``config.regrad`` the gradients are combined by ReGrad (METHOD.md §4).

    Args:
        model: MMDG++, or its DistributedDataParallel wrapper.
        batch: this process's share of the global batch (``crops``, ``mask``, ``label``, ``domain``).
        optimizer: over ``trainable_parameters(model)``.
        tracker: the convergence EMA that picks the fast modality.
        config: ``regrad``/``adp`` switch the method's parts (both off: plain fine-tuning).
        dist: the process group; gradients, losses and certainties are averaged over it.

    Returns:
        The step's losses as floats (``fused``, ``adp_0..2``; the global-batch averages).
    """
    module = _unwrap(model)
    module.train()
    batch = {k: v.to(dist.device) for k, v in batch.items()}
    crops, mask, labels, domains = batch["crops"], batch["mask"], batch["label"], batch["domain"]
    _, params, owners = trainable_parameters(module)
    # DDP's hooks stay off (see the module docstring): gradients are averaged explicitly below.
    sync_off = model.no_sync() if model is not module else nullcontext()
    autocast = torch.autocast(dist.device.type, dtype=torch.bfloat16) if config.amp else nullcontext()
    with sync_off:
        with autocast:
            out = model(crops, mask)
            fused = torch.nn.functional.cross_entropy(out.logits.float(), labels)
            if config.adp:
                losses = adp_losses(out.features.float(), module.text_features().float(), module.logit_scale().float(),
                                    labels, domains, mask, module.config.live_slot)
            elif config.regrad:
                losses = symmetric_prompt_losses(out.features.float(), module.text_features().float(),
                                                 module.logit_scale().float(), labels, mask, module.config.live_slot)
            else:
                losses = fused.new_zeros(3)
        optimizer.zero_grad(set_to_none=True)
        if config.regrad:
            present = mask.any(dim=0)
            fused_grads, per_modality = modality_gradients(fused, losses, params)
            averaged = dist.average([*fused_grads, *(g for grads in per_modality for g in grads), losses.detach(),
                                     modality_certainty(out.certainty.float(), mask), present.float()])
            n = len(params)
            fused_grads = averaged[:n]
            per_modality = [averaged[n * (m + 1) : n * (m + 2)] for m in range(3)]
            shared_losses, certainty, present = averaged[4 * n], averaged[4 * n + 1], averaged[4 * n + 2] > 0
            tracker.update(shared_losses, present)
            per_modality = [g if bool(present[m]) else None for m, g in enumerate(per_modality)]
            grads = regrad_combine(fused_grads, per_modality, owners, certainty, tracker.fast)
        else:
            # Without ReGrad the ADP losses (if on) simply add to the fused loss.
            raw = torch.autograd.grad(fused + losses.sum(), params, allow_unused=True)
            *grads, shared_losses = dist.average([g if g is not None else torch.zeros_like(p)
                                                  for g, p in zip(raw, params)] + [losses.detach()])
    for param, grad in zip(params, grads):
        param.grad = grad
    optimizer.step()
    fused_value = float(dist.average([fused.detach()])[0])
    return {"fused": fused_value, **{f"adp_{i}": float(v) for i, v in enumerate(shared_losses)}}


@torch.no_grad()
def predict(model: torch.nn.Module, dataset, batch_size: int = 32, device: torch.device = torch.device("cpu"),
            progress: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Live probabilities and labels of a dataset, in eval mode (a progress bar on stderr with ``progress``)."""
    module = _unwrap(model)
    module.eval()
    scores, labels = [], []
    batches = DataLoader(dataset, batch_size=batch_size)
    if progress:
        batches = require("tqdm", "train").tqdm(batches, desc="scoring", unit="batch")
    for batch in batches:
        scores.append(module.live_prob(batch["crops"].to(device), batch["mask"].to(device)).float().cpu().numpy())
        labels.append(batch["label"].numpy())
    return np.concatenate(scores), np.concatenate(labels)


def state_path(checkpoint: PathLike) -> Path:
    """The optimizer/trainer state file saved beside a ``last.safetensors`` checkpoint."""
    return Path(checkpoint).with_suffix(".state.pt")


def _save_state(path: Path, optimizer: torch.optim.Optimizer, tracker: ConvergenceTracker, epoch: int,
                best: Dict[str, Any]) -> None:
    # The best checkpoint by its name in the run folder, not an absolute path: a copied or moved run
    # resumes with its own best checkpoint.
    best_name = Path(best["best_checkpoint"]).name if best["best_checkpoint"] else ""
    state = {"optimizer": optimizer.state_dict(), "tracker": tracker.state_dict(), "epoch": epoch,
             "best_hter": best["best_hter"], "best_checkpoint": best_name, "history": best["history"]}
    torch.save(state, path)


def _resume(checkpoint: PathLike, config: TrainConfig) -> Tuple[MMDGPlusPlus, Dict[str, Any]]:
    state_file = state_path(checkpoint)
    if not state_file.is_file():
        raise FileNotFoundError(f"resume: {checkpoint} has no trainer state beside it ({state_file}); resume from "
                                "the last.safetensors a run writes each epoch")
    model, _ = load_checkpoint(checkpoint)
    # weights_only: a state file is data, never code (torch.load would otherwise unpickle anything).
    try:
        state = torch.load(state_file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's own message would suggest weights_only=False: never for a file from disk
        raise CheckpointError(f"resume: {state_file} is not a trainer state file (corrupt or truncated: "
                              f"{type(exc).__name__}); resume from an intact run, or start again") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"resume: {state_file} holds a {type(state).__name__}, not a trainer state")
    missing = {"optimizer", "tracker", "epoch", "best_hter", "best_checkpoint", "history"} - set(state)
    if missing:
        raise ValueError(f"resume: {state_file} lacks {sorted(missing)}")
    if state["epoch"] >= config.epochs:
        raise ValueError(f"resume: {checkpoint} already finished epoch {state['epoch']} of TrainConfig.epochs "
                         f"{config.epochs}; ask for more epochs")
    return model, state


def fit(
    model_config: MMDGConfig, train_set, val_set, config: TrainConfig, out_dir: PathLike,
    provenance: Optional[Dict[str, Any]] = None, model: Optional[MMDGPlusPlus] = None,
    resume: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Train, validate each epoch, keep the best checkpoint by validation HTER.

    Each epoch also writes ``last.safetensors`` + ``last.state.pt`` (optimizer, ReGrad EMA, epoch) to
    resume from. Under torchrun every process calls ``fit``; rank 0 validates and writes.

    Args:
        model_config: the architecture (ignored when ``model`` or ``resume`` is given).
        train_set, val_set: map-style datasets of ``{"crops", "mask", "label", "domain"}``.
        config: the training options.
        out_dir: where the checkpoints and ``history.json`` go.
        provenance: recorded in every checkpoint (protocol, data, note); the train config, epoch and
            validation HTER are added.
        model: start from this model instead of a fresh one.
        resume: a ``last.safetensors`` of an earlier run (its ``.state.pt`` beside it).

    Returns:
        ``{"best_checkpoint": path, "best_hter": float, "history": [per-epoch dicts]}``; the checkpoint
        carries the validation EER threshold and the provenance.

    Example:
        >>> fit(MMDGConfig.tiny(), train, val, TrainConfig(epochs=2), "runs/tiny")  # doctest: +SKIP
    """
    tqdm = require("tqdm", "train").tqdm
    dist = init_distributed(config)
    torch.manual_seed(config.seed)
    state = None
    if resume is not None:
        model, state = _resume(resume, config)
    model = (model if model is not None else create_model(model_config)).to(dist.device)
    _, params, _ = trainable_parameters(model)
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    tracker = ConvergenceTracker()
    best: Dict[str, Any] = {"best_hter": float("inf"), "best_checkpoint": None, "history": []}
    start = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        tracker.load_state_dict(state["tracker"])
        best_name = Path(state["best_checkpoint"]).name if state["best_checkpoint"] else ""
        best = {"best_hter": state["best_hter"],
                "best_checkpoint": str(Path(resume).parent / best_name) if best_name else None,
                "history": list(state["history"])}
        start = state["epoch"]
    wrapped = model
    if dist.world_size > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.device] if dist.device.type == "cuda" else None)
    loader = _train_loader(train_set, config, dist)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {**(provenance or {}), "train_config": asdict(config), "world_size": dist.world_size}
    for epoch in range(start, config.epochs):
        # Every epoch's randomness (shuffle, token selection) depends on (seed, epoch) only, so a
        # resumed run repeats the epochs an uninterrupted one would have run, bit for bit on CPU.
        torch.manual_seed(config.seed * 100_003 + epoch)
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        else:
            loader.generator.manual_seed(config.seed * 100_003 + epoch)
        for batch in tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not dist.is_main):
            train_step(wrapped, batch, optimizer, tracker, config, dist)
        if dist.is_main:
            _validate(model, val_set, epoch, best, record, out_dir, dist)
            last = save_checkpoint(out_dir / "last.safetensors", model, threshold=best["history"][-1]["threshold"],
                                   provenance={**record, "epoch": epoch + 1})
            _save_state(state_path(last), optimizer, tracker, epoch + 1, best)
        if dist.world_size > 1:
            torch.distributed.barrier()
    if dist.is_main:
        (out_dir / "history.json").write_text(json.dumps(best["history"], indent=2))
    return best


def _train_loader(train_set, config: TrainConfig, dist: Distributed) -> DataLoader:
    per_process = config.batch_size // dist.world_size
    drop_last = len(train_set) > config.batch_size
    if dist.world_size > 1:
        sampler = torch.utils.data.DistributedSampler(train_set, dist.world_size, dist.rank, shuffle=True,
                                                      seed=config.seed, drop_last=True)
        return DataLoader(train_set, batch_size=per_process, sampler=sampler, num_workers=config.num_workers,
                          drop_last=drop_last)
    generator = torch.Generator().manual_seed(config.seed)
    return DataLoader(train_set, batch_size=per_process, shuffle=True, generator=generator,
                      num_workers=config.num_workers, drop_last=drop_last)


def _validate(model: MMDGPlusPlus, val_set, epoch: int, best: Dict[str, Any], record: Dict[str, Any],
              out_dir: Path, dist: Distributed) -> None:
    scores, labels = predict(model, val_set, device=dist.device)
    # Clipped so a degenerate early epoch (all scores 0 or 1) still stores a usable threshold.
    threshold = float(np.clip(threshold_at_eer(scores, labels), 1e-6, 1 - 1e-6))
    metrics = compute_metrics(scores, labels, threshold=threshold)
    entry = {"epoch": epoch + 1, **{k: float(v) for k, v in metrics.items() if np.isscalar(v)},
             "apcer": metrics["apcer"].value, "bpcer": metrics["bpcer"].value, "threshold": threshold}
    best["history"].append(entry)
    logger.info("epoch %d: val HTER %.4f AUC %.4f", epoch + 1, metrics["hter"], metrics["auc"])
    if metrics["hter"] < best["best_hter"]:
        path = save_checkpoint(out_dir / "best.safetensors", model, threshold=threshold,
                               provenance={**record, "epoch": epoch + 1, "val_hter": float(metrics["hter"])})
        best.update(best_hter=float(metrics["hter"]), best_checkpoint=str(path))
