"""Datasets from the synthetic camera, seen through the face aligner exactly as a kiosk camera is.

Framesets whose face the aligner does not find (or finds unreliable) are left out, as a kiosk
would refuse them; the ground truth comes from ``metadata["truth"]``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

from ..align import AlignConfig, FaceAligner
from ..frames import MODALITIES
from ..preprocess import PreprocessConfig, encode_images
from .data import CropDataset
from .protocols import Protocol

logger = logging.getLogger(__name__)

__all__ = ["SyntheticCrops", "render_crops", "create_synthetic_datasets"]


@dataclass
class SyntheticCrops:
    """Aligned crops of synthetic framesets with their ground truth.

    Attributes:
        images: (N, 3, 224, 224, 3) uint8; mask: (N, 3) bool; labels: (N,) 1 = live;
        camera_domains: (N,) the synthetic camera's domain (0-3); attacks: (N,) class names.
    """

    images: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    camera_domains: np.ndarray
    attacks: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def to_dataset(self, domain_index: Dict[int, int], preprocess: PreprocessConfig = PreprocessConfig()) -> CropDataset:
        """A training dataset; ``domain_index`` maps camera domains to the protocol's domain indices."""
        unknown = sorted(set(self.camera_domains.tolist()) - set(domain_index))
        if unknown:
            raise ValueError(f"domain_index: no index for camera domains {unknown}")
        domains = np.array([domain_index[int(d)] for d in self.camera_domains], np.int64)
        return CropDataset(self.images, self.mask, self.labels, domains, preprocess, species=self.attacks)


def render_crops(domains: Sequence[int], count: int, seed: int, classes: Optional[Sequence[str]] = None,
                 align_config: AlignConfig = AlignConfig(), preprocess: PreprocessConfig = PreprocessConfig()
                 ) -> SyntheticCrops:
    """Render ``count`` framesets of the synthetic camera and keep the aligned, encoded faces.

    Args:
        domains: camera domains to draw from.
        count: framesets rendered (fewer crops come back when the aligner refuses some).
        seed: the camera's seed; same seed, same crops.
        classes: subset of the camera's classes; default all.
        align_config: the aligner's settings (as the kiosk's).
        preprocess: the crop encoding (``preprocess.encode_images``, as the detector's).

    Raises:
        ValueError: ``count`` < 1, or the aligner accepted none of the framesets.
    """
    from ..sensors.synthetic import CLASSES, SyntheticCamera

    if count < 1:
        raise ValueError(f"count: expected ≥ 1 framesets, got {count}")
    aligner = FaceAligner(align_config)
    images, masks, labels, doms, attacks = [], [], [], [], []
    for frameset in SyntheticCamera(seed=seed, classes=classes or CLASSES, domains=tuple(domains), num_frames=count):
        result = aligner.align(frameset)
        if result.status != "ok":
            continue
        truth = frameset.metadata["truth"]
        encoded, mask = encode_images([result.crops], preprocess)
        images.append(encoded[0])
        masks.append(mask[0])
        labels.append(1 if truth["label"] == "live" else 0)
        doms.append(int(truth["domain"]))
        attacks.append(truth.get("attack") or "live")
    if not images:
        raise ValueError(f"the aligner found no face in any of the {count} synthetic framesets (domains {list(domains)})")
    logger.info("synthetic domains %s: %d of %d framesets aligned", list(domains), len(images), count)
    return SyntheticCrops(np.stack(images), np.stack(masks), np.array(labels, np.int64), np.array(doms, np.int64),
                          np.array(attacks))


def create_synthetic_datasets(protocol: Protocol, train_count: int = 320, val_count: int = 96, test_count: int = 128,
                              seed: int = 0) -> Dict[str, CropDataset]:
    """Train (sources), val (sources, other seed) and test (targets) datasets of a ``syn:`` protocol.

    Domain indices follow the protocol's order, sources first (``syn:012-3``: camera domain 3 is index 3;
    ``syn:123-0``: camera domains 1, 2, 3 are 0, 1, 2 and the target 0 is 3). ``test_missing`` masks
    those modalities in the test set.
    """
    if not protocol.is_synthetic:
        raise ValueError(f"protocol {protocol.name!r} is not synthetic (its data come from split lists)")
    index = {d: i for i, d in enumerate(protocol.source_domains + protocol.target_domains)}
    splits = {
        "train": render_crops(protocol.source_domains, train_count, 1000 * seed),
        "val": render_crops(protocol.source_domains, val_count, 1000 * seed + 1),
        "test": render_crops(protocol.target_domains, test_count, 1000 * seed + 2),
    }
    datasets = {name: crops.to_dataset(index) for name, crops in splits.items()}
    if protocol.test_missing:
        test = datasets["test"]
        gone = np.array([m in protocol.test_missing for m in MODALITIES])
        test.mask = test.mask & ~gone
        test.images = np.where(gone[None, :, None, None, None], 0, test.images).astype(np.uint8)
    return datasets
