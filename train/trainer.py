"""The MMDG++ training loop: fused CE + ADP losses combined by ReGrad, validation HTER, best checkpoint.

Defaults (Adam, lr 5e-5, weight decay 5e-5, batch 16, 80 epochs) are neither paper's: they are the
nearest published priors, from the same group's DADM training script (METHOD.md §4).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..checkpoint import save_checkpoint
from ..errors import require
from ..model import MMDGConfig, MMDGPlusPlus, create_model
from ..preprocess import PreprocessConfig, images_to_input
from .losses import adp_losses, modality_certainty
from .metrics import compute_metrics, threshold_at_eer
from .regrad import ConvergenceTracker, modality_gradients, regrad_combine

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class TrainConfig:
    """Training options; the CLI's options map 1:1 onto these fields."""

    epochs: int = 80
    lr: float = 5e-5
    weight_decay: float = 5e-5
    batch_size: int = 16
    regrad: bool = True
    adp: bool = True
    seed: int = 0
    num_workers: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}: expected ≥ 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr: expected > 0, got {self.lr}")


class CropDataset(Dataset):
    """Aligned uint8 crops with labels, encoded for the model by mmdg_edge.preprocess (as at inference).

    Args:
        images: (N, 3, 224, 224, 3) uint8 crops in modality order.
        mask: (N, 3) bool presence.
        labels: (N,) 1 = live, 0 = attack.
        domains: (N,) source-domain index (the ADP spoof slot).
    """

    def __init__(self, images: np.ndarray, mask: np.ndarray, labels: np.ndarray, domains: np.ndarray,
                 preprocess: PreprocessConfig = PreprocessConfig()) -> None:
        n = len(images)
        if not (len(mask) == len(labels) == len(domains) == n) or n == 0:
            raise ValueError(f"CropDataset: images, mask, labels and domains need the same non-zero length, got "
                             f"{n}, {len(mask)}, {len(labels)}, {len(domains)}")
        self.images, self.mask = images, np.asarray(mask, bool)
        self.labels, self.domains = np.asarray(labels, np.int64), np.asarray(domains, np.int64)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        crops, mask = images_to_input(self.images[index : index + 1], self.mask[index : index + 1], self.preprocess)
        return {"crops": torch.from_numpy(crops[0]), "mask": torch.from_numpy(mask[0]),
                "label": torch.tensor(self.labels[index]), "domain": torch.tensor(self.domains[index])}


def trainable_parameters(model: MMDGPlusPlus) -> Tuple[List[str], List[torch.nn.Parameter], List[Optional[int]]]:
    """Names, tensors and owning modality of every trainable parameter, in a fixed order."""
    owners = model.parameter_owners()
    named = [(n, p) for n, p in model.named_parameters() if n in owners]
    return [n for n, _ in named], [p for _, p in named], [owners[n] for n, _ in named]


def train_step(model: MMDGPlusPlus, batch: Dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
               tracker: ConvergenceTracker, config: TrainConfig) -> Dict[str, float]:
    """One optimisation step; with ``config.regrad`` the gradients are combined by ReGrad (METHOD.md §4)."""
    model.train()
    crops, mask, labels, domains = batch["crops"], batch["mask"], batch["label"], batch["domain"]
    out = model(crops, mask)
    fused = torch.nn.functional.cross_entropy(out.logits, labels)
    if config.adp:
        losses = adp_losses(out.features, model.text_features(), model.logit_scale(), labels, domains, mask,
                            model.config.live_slot)
    else:
        losses = out.logits.new_zeros(3)
    optimizer.zero_grad(set_to_none=True)
    _, params, owners = trainable_parameters(model)
    if config.regrad and config.adp:
        present = mask.any(dim=0)
        tracker.update(losses.detach(), present)
        fused_grads, per_modality = modality_gradients(fused, losses, params)
        per_modality = [g if bool(present[m]) else None for m, g in enumerate(per_modality)]
        grads = regrad_combine(fused_grads, per_modality, owners, modality_certainty(out.certainty, mask), tracker.fast)
        for param, grad in zip(params, grads):
            param.grad = grad
    else:
        # Without ReGrad the modality losses (if any) simply add to the fused loss: the ablation baseline.
        (fused + losses.sum()).backward()
    optimizer.step()
    return {"fused": float(fused.detach()), **{f"adp_{i}": float(v) for i, v in enumerate(losses.detach())}}


@torch.no_grad()
def predict(model: MMDGPlusPlus, dataset: Dataset, batch_size: int = 32) -> Tuple[np.ndarray, np.ndarray]:
    """Live probabilities and labels of a dataset, in eval mode."""
    model.eval()
    scores, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size):
        scores.append(model.live_prob(batch["crops"], batch["mask"]).numpy())
        labels.append(batch["label"].numpy())
    return np.concatenate(scores), np.concatenate(labels)


def fit(
    model_config: MMDGConfig, train_set: Dataset, val_set: Dataset, config: TrainConfig, out_dir: PathLike,
    provenance: Optional[Dict[str, Any]] = None, model: Optional[MMDGPlusPlus] = None,
) -> Dict[str, Any]:
    """Train, validate each epoch, keep the best checkpoint by validation HTER.

    Returns:
        ``{"best_checkpoint": path, "best_hter": float, "history": [per-epoch dicts]}``; the checkpoint
        carries the validation EER threshold and the provenance.
    """
    tqdm = require("tqdm", "train").tqdm
    torch.manual_seed(config.seed)
    model = model if model is not None else create_model(model_config)
    _, params, _ = trainable_parameters(model)
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    tracker = ConvergenceTracker()
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=generator,
                        num_workers=config.num_workers, drop_last=len(train_set) > config.batch_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    best = {"best_hter": float("inf"), "best_checkpoint": None, "history": []}
    for epoch in range(config.epochs):
        for batch in tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False):
            train_step(model, batch, optimizer, tracker, config)
        scores, labels = predict(model, val_set)
        threshold = float(np.clip(threshold_at_eer(scores, labels), 1e-6, 1 - 1e-6))
        metrics = compute_metrics(scores, labels, threshold=threshold)
        record = {"epoch": epoch + 1, **{k: float(v) for k, v in metrics.items() if np.isscalar(v)}}
        best["history"].append(record)
        logger.info("epoch %d: val HTER %.4f AUC %.4f", epoch + 1, metrics["hter"], metrics["auc"])
        if metrics["hter"] < best["best_hter"]:
            path = save_checkpoint(out_dir / "best.safetensors", model, threshold=threshold,
                                   provenance={**(provenance or {}), "train_config": asdict(config),
                                               "epoch": epoch + 1, "val_hter": float(metrics["hter"])})
            best.update(best_hter=float(metrics["hter"]), best_checkpoint=str(path))
    (out_dir / "history.json").write_text(json.dumps(best["history"], indent=2))
    return best
