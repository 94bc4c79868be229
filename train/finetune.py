"""Fine-tune a checkpoint on a deployer's own collection, and evaluate one on its test subjects.

The collection is a new domain: the model gains one asymmetric-domain-prompt spoof slot for it (the
source domains keep theirs), and trains with ReGrad and the ADPs on the collection's training
subjects, keeping the checkpoint with the best HTER on its validation subjects. Evaluation scores the
test subjects only and reports per attack species (ISO/IEC 30107-3), counting framesets without a
usable face as non-responses.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..calibration import presentation_score
from ..checkpoint import load_checkpoint, read_metadata
from ..collection import (Capture, CaptureCrops, capture_crops, load_manifest, load_or_split, manifest_sha256,
                          splits_for_model)
from ..model import MMDGPlusPlus, create_model
from ..preprocess import PreprocessConfig
from .data import CropDataset
from .trainer import TrainConfig, fit, predict

logger = logging.getLogger(__name__)

__all__ = ["add_domain", "collection_dataset", "finetune_schedule", "finetune_on_collection", "evaluate_on_collection"]

PathLike = Union[str, "os.PathLike[str]"]

# Fine-tuning a checkpoint whose backbone was trained from scratch (the tiny demo model) takes a far
# larger step than one on a frozen CLIP: benchmarks/bench_own_camera.py measures 3 epochs at lr 1e-3.
FROM_SCRATCH_SCHEDULE = {"epochs": 3, "lr": 1e-3}


def finetune_schedule(init: PathLike) -> Dict[str, Any]:
    """Default ``epochs`` and ``lr`` for fine-tuning ``init`` on a collection.

    A checkpoint trained with its backbone (``train_backbone``, as the demo model) gets
    ``FROM_SCRATCH_SCHEDULE``; a frozen-CLIP checkpoint keeps ``TrainConfig``'s defaults (the DADM priors).
    """
    if read_metadata(init)["config"].get("train_backbone"):
        return dict(FROM_SCRATCH_SCHEDULE)
    defaults = TrainConfig()
    return {"epochs": defaults.epochs, "lr": defaults.lr}


def add_domain(model: MMDGPlusPlus) -> Tuple[MMDGPlusPlus, int]:
    """The same model with one more ADP spoof slot, and that new domain's index.

    Every weight is kept; the new slot's context vectors start as the mean of the existing spoof
    slots (a neutral start between the known domains).
    """
    config = dataclasses.replace(model.config, prompt_slots=model.config.prompt_slots + 1, pretrained=None)
    grown = create_model(config)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("prompts.contexts.")}
    missing, unexpected = grown.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("prompts.contexts.") for k in missing):
        raise RuntimeError(f"add_domain: weights do not carry over (missing {missing}, unexpected {unexpected})")
    spoof = [s for s in range(model.config.prompt_slots) if s != model.config.live_slot]
    with torch.no_grad():
        for old, new in zip(model.prompts.contexts, grown.prompts.contexts):
            new[: old.shape[0]] = old
            new[old.shape[0]] = old[spoof].mean(0)
    return grown, len(spoof)


def collection_dataset(folder: PathLike, captures: Sequence[Capture], domain: int,
                       preprocess: PreprocessConfig = PreprocessConfig(),
                       crops: Optional[Sequence[CaptureCrops]] = None) -> CropDataset:
    """The face crops of these captures (``crops``, else read through the cache) as a dataset (label 1 = bona fide)."""
    crops = crops if crops is not None else [capture_crops(folder, c, preprocess=preprocess) for c in captures]
    images, masks, labels, species = [], [], [], []
    for capture, crops in zip(captures, crops):
        images.append(crops.images)
        masks.append(crops.mask)
        labels += [0 if capture.is_attack else 1] * len(crops.images)
        species += [capture.species] * len(crops.images)
    return CropDataset(np.concatenate(images), np.concatenate(masks), np.array(labels), np.full(len(labels), domain),
                       preprocess, species=np.array(species))


def finetune_on_collection(folder: PathLike, init: PathLike, config: TrainConfig, out_dir: PathLike,
                           split_seed: int = 0) -> Dict[str, Any]:
    """Fine-tune ``init`` on the collection's training subjects; the best checkpoint by validation HTER.

    Returns:
        ``trainer.fit``'s result plus ``"splits"`` (the Splits used).
    """
    captures = load_manifest(folder)
    splits = load_or_split(folder, captures, split_seed)
    logger.info("%s", splits.format_table())
    model, metadata = load_checkpoint(init)
    model, domain = add_domain(model)
    preprocess = PreprocessConfig.from_dict(metadata["preprocess"])
    train = collection_dataset(folder, splits.of(captures, "train"), domain, preprocess)
    val = collection_dataset(folder, splits.of(captures, "val"), domain, preprocess)
    provenance = {"collection": str(folder), "manifest_sha256": manifest_sha256(folder), "init": str(init),
                  "init_sha256": metadata["sha256"], "split_seed": split_seed,
                  "subjects_seen": {k: splits.subjects[k] for k in ("train", "val")},
                  "instruments_seen": {k: splits.instruments[k] for k in ("train", "val")}, "train_samples": len(train),
                  "val_samples": len(val), "note": "fine-tuned on the deployer's collection (mmdg-edge train --data)"}
    result = fit(model.config, train, val, config, out_dir, provenance, model=model)
    return {**result, "splits": splits}


def evaluate_on_collection(checkpoint: PathLike, folder: PathLike, split_seed: Optional[int] = None,
                           det_path: Optional[PathLike] = None, split: str = "test") -> Dict[str, Any]:
    """The ISO/IEC 30107-3 report of a checkpoint on the collection's test subjects, at its stored threshold.

    Rates count presentations, as the standard does: each recording is one, decided by
    ``calibration.presentation_score`` (an attack by its highest-scoring frameset, a bona fide one by
    its middle one), and a recording without a usable face is a non-response. The frame-level
    report (framesets are not independent trials) comes beside it. ``split_seed`` defaults to the
    one the checkpoint was fine-tuned with (``splits_for_model``).

    Returns:
        ``{"iso": IsoReport per presentation, "iso_framesets": IsoReport per frameset, "samples":
        presentations, "framesets": framesets, "splits": Splits, "det": path (when written)}``.
    """
    from .reporting import iso_report, save_det_plot

    captures = load_manifest(folder)
    model, metadata = load_checkpoint(checkpoint)
    splits = splits_for_model(folder, captures, metadata["provenance"], split_seed)
    preprocess = PreprocessConfig.from_dict(metadata["preprocess"])
    tested = splits.of(captures, split)
    crops = [capture_crops(folder, capture, preprocess=preprocess) for capture in tested]
    faces = collection_dataset(folder, tested, 0, preprocess, crops)
    face_scores = iter(predict(model, faces)[0].tolist())
    scores: List[float] = []
    labels: List[int] = []
    species: List[str] = []
    responded: List[bool] = []
    presented: List[float] = []
    for capture, capture_crop in zip(tested, crops):
        found = len(capture_crop.images)
        faces = [next(face_scores) for _ in range(found)]
        presented.append(presentation_score(faces, capture.is_attack) if found else float("nan"))
        scores += faces + [float("nan")] * (capture_crop.framesets - found)
        responded += [True] * found + [False] * (capture_crop.framesets - found)
        labels += [0 if capture.is_attack else 1] * capture_crop.framesets
        species += [capture.species] * capture_crop.framesets
    report = iso_report(presented, [0 if c.is_attack else 1 for c in tested], [c.species for c in tested],
                        threshold=metadata["threshold"], responded=[not np.isnan(s) for s in presented])
    per_frameset = iso_report(scores, labels, species, threshold=metadata["threshold"], responded=responded)
    result: Dict[str, Any] = {"iso": report, "iso_framesets": per_frameset, "samples": len(tested),
                              "framesets": len(scores), "splits": splits}
    if det_path is not None:
        kept = np.array(responded)
        result["det"] = str(save_det_plot(np.array(scores)[kept], np.array(labels)[kept], det_path,
                                          threshold=metadata["threshold"], title=f"DET curve, {Path(folder).name} "
                                          f"{split} subjects"))
    return result
