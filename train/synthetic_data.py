"""Datasets from the synthetic camera, seen through the face aligner exactly as a kiosk camera is.

Framesets whose face the aligner does not find (or finds unreliable) are left out, as a kiosk
would refuse them; the ground truth comes from ``metadata["truth"]``. ``render_crops`` draws a
fresh random scene per frameset; ``render_presentations`` stages given people and instruments,
each for a few framesets, so splits can keep people and instruments apart.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np

from ..align import AlignConfig, FaceAligner
from ..frames import MODALITIES
from ..preprocess import PreprocessConfig, encode_images
from .data import CropDataset
from .protocols import Protocol

if TYPE_CHECKING:
    from ..frames import FrameSet
    from ..sensors.synthetic import Instrument, Subject

logger = logging.getLogger(__name__)

__all__ = ["SyntheticCrops", "Presentation", "render_crops", "render_presentations", "create_synthetic_datasets"]


@dataclass
class SyntheticCrops:
    """Aligned crops of synthetic framesets with their ground truth.

    Attributes:
        images: (N, 3, 224, 224, 3) uint8; mask: (N, 3) bool; labels: (N,) 1 = live;
        camera_domains: (N,) the synthetic camera's domain (an index of ``DOMAINS``); attacks: (N,)
        class names; presentations: (N,) which presentation each crop shows (``render_crops``: the
        frameset's index, each frameset being its own scene).
    """

    images: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    camera_domains: np.ndarray
    attacks: np.ndarray
    presentations: np.ndarray

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
    camera = SyntheticCamera(seed=seed, classes=classes or CLASSES, domains=tuple(domains), num_frames=count)
    crops = _align_all(enumerate(camera), align_config, preprocess)
    if crops is None:
        raise ValueError(f"the aligner found no face in any of the {count} synthetic framesets (domains {list(domains)})")
    logger.info("synthetic domains %s: %d of %d framesets aligned", list(domains), len(crops), count)
    return crops


@dataclass(frozen=True)
class Presentation:
    """One presentation: ``subject``'s face before the camera for ``num_frames`` framesets in capture
    domain ``domain`` (an index of ``DOMAINS``), bona fide (``instrument`` None) or shown by
    ``instrument`` (a print, screen or mask of that face); in a room lit as ``lighting`` says (one of
    ``LIGHTINGS``), the head turned by ``yaw_deg`` and tilted by ``pitch_deg`` (people and masks
    only), at ``distance_m`` (None: drawn from the domain's range)."""

    subject: "Subject"
    instrument: Optional["Instrument"]
    domain: int
    num_frames: int = 4
    lighting: str = "room"
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    distance_m: Optional[float] = None

    def __post_init__(self) -> None:
        from ..sensors.synthetic import DOMAINS, Instrument, Segment, Subject

        if not isinstance(self.subject, Subject):
            raise ValueError(f"Presentation.subject: expected a Subject, got {type(self.subject).__name__}")
        if self.instrument is not None and not isinstance(self.instrument, Instrument):
            raise ValueError(f"Presentation.instrument: expected None (bona fide) or an Instrument, got "
                             f"{type(self.instrument).__name__}")
        if isinstance(self.domain, bool) or not isinstance(self.domain, (int, np.integer)) \
                or not 0 <= self.domain < len(DOMAINS):
            raise ValueError(f"Presentation.domain: expected an int in 0..{len(DOMAINS) - 1}, got {self.domain!r}")
        if isinstance(self.num_frames, bool) or not isinstance(self.num_frames, int) or self.num_frames < 1:
            raise ValueError(f"Presentation.num_frames: expected an int ≥ 1, got {self.num_frames!r}")
        if self.distance_m is not None and (isinstance(self.distance_m, bool) or not isinstance(
                self.distance_m, (int, float, np.integer, np.floating)) or not 0.2 <= self.distance_m <= 3.0):
            raise ValueError(f"Presentation.distance_m: expected None or 0.2..3.0 m, got {self.distance_m!r}")
        try:  # the room and the pose as the scene checks them
            Segment(self.kind, self.num_frames, lighting=self.lighting, yaw_deg=self.yaw_deg, pitch_deg=self.pitch_deg)
        except ValueError as exc:
            raise ValueError(f"Presentation: {exc}") from None

    @property
    def kind(self) -> str:
        """The scene's kind: "live", or the instrument's ("print", "replay", "mask")."""
        return "live" if self.instrument is None else self.instrument.kind


def render_presentations(presentations: Sequence[Presentation], seed: int, align_config: AlignConfig = AlignConfig(),
                         preprocess: PreprocessConfig = PreprocessConfig()) -> SyntheticCrops:
    """Stage each presentation (one scripted segment) and keep the aligned, encoded faces.

    Each presentation is its own scene: a room, a place in the image and a distance drawn from its
    domain's range, all from (``seed``, its index); its framesets differ by the head's sway and the
    sensor noise, as a person standing before a kiosk for a moment. A presentation none of whose
    framesets the aligner accepts has no crop (a kiosk would refuse it).

    Args:
        presentations: what to stage; the crops' ``presentations`` are indices into this sequence.
        seed: same seed, same crops.
        align_config: the aligner's settings (as the kiosk's).
        preprocess: the crop encoding (``preprocess.encode_images``, as the detector's).

    Raises:
        ValueError: no presentations, or the aligner accepted none of the framesets.
        TypeError: an item that is not a ``Presentation``.

    Example:
        >>> from mmdg_edge.sensors.synthetic import create_instrument, create_subject
        >>> crops = render_presentations([Presentation(create_subject(0), None, 0, 2),
        ...                               Presentation(create_subject(1), create_instrument("mask", 2), 4, 2)], seed=0)
        >>> crops.presentations.tolist(), crops.labels.tolist(), crops.camera_domains.tolist()
        ([0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 4, 4])
    """
    from ..sensors.synthetic import DOMAINS, Segment, render_sequence

    presentations = list(presentations)
    if not presentations:
        raise ValueError("presentations: expected at least one Presentation")
    for index, item in enumerate(presentations):
        if not isinstance(item, Presentation):
            raise TypeError(f"presentations[{index}]: expected a Presentation, got {type(item).__name__}")

    def framesets() -> Iterator[Tuple[int, "FrameSet"]]:
        for index, item in enumerate(presentations):
            rng = np.random.default_rng([seed, index])
            distance_m = float(rng.uniform(*DOMAINS[item.domain].distance_m))
            if item.distance_m is not None:
                distance_m = item.distance_m
            segment = Segment(item.kind, item.num_frames, domain=int(item.domain), distance_start_m=distance_m,
                              subject=item.subject, instrument=item.instrument, yaw_deg=item.yaw_deg,
                              pitch_deg=item.pitch_deg, lighting=item.lighting)
            for frameset in render_sequence([segment], seed=int(rng.integers(2**31))):
                yield index, frameset

    crops = _align_all(framesets(), align_config, preprocess)
    if crops is None:
        raise ValueError(f"the aligner found no face in any of the {len(presentations)} presentations")
    logger.info("%d presentations: %d crops aligned", len(presentations), len(crops))
    return crops


def _align_all(framesets: Iterable[Tuple[int, "FrameSet"]], align_config: AlignConfig,
               preprocess: PreprocessConfig) -> Optional[SyntheticCrops]:
    """The aligned, encoded faces of (presentation index, frameset) pairs; None when no face was accepted."""
    aligner = FaceAligner(align_config)
    images, masks, labels, domains, attacks, shown = [], [], [], [], [], []
    for presentation, frameset in framesets:
        result = aligner.align(frameset)
        if result.status != "ok":
            continue
        truth = frameset.metadata["truth"]
        encoded, mask = encode_images([result.crops], preprocess)
        images.append(encoded[0])
        masks.append(mask[0])
        labels.append(1 if truth["label"] == "live" else 0)
        domains.append(int(truth["domain"]))
        attacks.append(truth.get("attack") or "live")
        shown.append(presentation)
    if not images:
        return None
    return SyntheticCrops(np.stack(images), np.stack(masks), np.array(labels, np.int64), np.array(domains, np.int64),
                          np.array(attacks), np.array(shown, np.int64))


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
