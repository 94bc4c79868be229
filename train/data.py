"""Training datasets: benchmark split lists under a data root, and in-memory crops.

Every sample leaves through ``mmdg_edge.preprocess.images_to_input``, exactly as crops do at
inference, and comes as ``{"crops", "mask", "label", "domain"}`` (label 1 = live).

How the benchmark images map onto the SDK's crop encoding (the list images are already face crops):
- RGB: as stored (BGR on disk → RGB), resized to 224×224.
- Depth, 8-bit: the datasets ship a relative depth map of the face, near = bright, which is what
  ``preprocess.encode_depth`` produces from metric depth, so it is kept as is (resized).
  Depth, 16-bit: taken as millimetres and encoded by ``encode_depth`` around the median face depth.
- IR, 8- or 16-bit: ``preprocess.encode_ir`` (percentile contrast stretch), as at inference.
- PADISI (``.npz`` lists): one archive per sample with arrays ``rgb`` (H×W×3, RGB order), ``depth``
  and ``ir`` (H×W), encoded as above.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..errors import require
from ..frames import CROP_SIZE, MODALITIES
from ..preprocess import PreprocessConfig, encode_depth, encode_ir, gray_to_rgb, images_to_input
from .protocols import Protocol, SplitList

logger = logging.getLogger(__name__)

__all__ = ["ListSample", "read_split_list", "CropDataset", "ListDataset", "create_list_dataset",
           "create_protocol_datasets"]

PathLike = Union[str, "os.PathLike[str]"]
_NPZ_KEYS = ("rgb", "depth", "ir")
_MISSING_SHOWN = 5


@dataclass(frozen=True)
class ListSample:
    """One line of a split list: image paths (rgb, depth, ir) or one ``.npz``, and the live label."""

    paths: Tuple[str, ...]
    label: int


def read_split_list(path: PathLike) -> List[ListSample]:
    """Parse a 4-column ("RGB DEPTH IR LABEL") or 2-column ("NPZ<TAB>LABEL") split list.

    Blank lines and Windows line ends are tolerated (the C/S/W lists use CRLF and have no final newline).

    Raises:
        FileNotFoundError: the list does not exist.
        ValueError: a line has another column count or a label other than 0/1 (file and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split list {path} does not exist")
    samples = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (2, 4) or fields[-1] not in ("0", "1"):
            raise ValueError(f"{path}:{number}: expected 'RGB DEPTH IR LABEL' or 'NPZ LABEL' with label 0/1, "
                             f"got {line.strip()!r}")
        samples.append(ListSample(tuple(fields[:-1]), int(fields[-1])))
    return samples


class CropDataset:
    """Aligned uint8 crops in memory (e.g. from the synthetic camera through the aligner).

    Args:
        images: (N, 3, 224, 224, 3) uint8 crops in modality order.
        mask: (N, 3) bool presence.
        labels: (N,) 1 = live, 0 = attack.
        domains: (N,) domain index (a training sample's ADP spoof slot).
        preprocess: the crop encoding, as in the checkpoint.
        species: (N,) attack species names ("live" for live samples) for per-species reports, or None.
    """

    def __init__(self, images: np.ndarray, mask: np.ndarray, labels: np.ndarray, domains: np.ndarray,
                 preprocess: PreprocessConfig = PreprocessConfig(), species: Optional[np.ndarray] = None) -> None:
        n = len(images)
        if not (len(mask) == len(labels) == len(domains) == n) or n == 0:
            raise ValueError(f"CropDataset: images, mask, labels and domains need the same non-zero length, got "
                             f"{n}, {len(mask)}, {len(labels)}, {len(domains)}")
        self.images, self.mask = np.asarray(images), np.asarray(mask, bool)
        self.labels, self.domains = np.asarray(labels, np.int64), np.asarray(domains, np.int64)
        self.preprocess = preprocess
        if species is not None and len(species) != n:
            raise ValueError(f"CropDataset: species needs one entry per sample ({n}), got {len(species)}")
        self.species = None if species is None else np.asarray(species)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Dict:
        return _sample(self.images[index], self.mask[index], int(self.labels[index]), int(self.domains[index]),
                       self.preprocess)


def _sample(images: np.ndarray, mask: np.ndarray, label: int, domain: int, preprocess: PreprocessConfig) -> Dict:
    torch = require("torch", "train")
    crops, mask = images_to_input(images[None], np.asarray(mask, bool)[None], preprocess)
    return {"crops": torch.from_numpy(crops[0]), "mask": torch.from_numpy(mask[0]),
            "label": torch.tensor(label), "domain": torch.tensor(domain)}


class ListDataset:
    """Samples of split lists, read from ``data_root`` on demand.

    Args:
        samples: parsed list lines.
        domains: one domain index per sample.
        data_root: the folder the list paths are relative to.
        missing: modality names removed from every sample (zeroed and masked), e.g. ("depth",).
        preprocess: the crop encoding.

    Raises:
        FileNotFoundError: at construction, if any listed file is absent: one error with the count
            and the first few paths, rather than a crash inside a DataLoader worker.
    """

    def __init__(self, samples: Sequence[ListSample], domains: Sequence[int], data_root: PathLike,
                 missing: Sequence[str] = (), preprocess: PreprocessConfig = PreprocessConfig()) -> None:
        if len(samples) != len(domains) or not samples:
            raise ValueError(f"ListDataset: samples and domains need the same non-zero length, got "
                             f"{len(samples)} and {len(domains)}")
        unknown = [m for m in missing if m not in MODALITIES]
        if unknown:
            raise ValueError(f"missing: expected modality names from {list(MODALITIES)}, got {unknown}")
        self.root = Path(data_root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"data root {self.root} is not a folder")
        absent = [p for s in samples for p in s.paths if not (self.root / p).is_file()]
        if absent:
            shown = ", ".join(absent[:_MISSING_SHOWN])
            raise FileNotFoundError(f"{len(absent)} listed image file(s) missing under {self.root}, e.g. {shown}")
        self.samples, self.domains = list(samples), np.asarray(domains, np.int64)
        self.labels = np.array([sample.label for sample in self.samples], np.int64)
        self.present = np.array([m not in missing for m in MODALITIES])
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Dict:
        sample = self.samples[index]
        images = np.stack(self._load(sample))
        images[~self.present] = 0
        return _sample(images, self.present, sample.label, int(self.domains[index]), self.preprocess)

    def _load(self, sample: ListSample) -> List[np.ndarray]:
        if len(sample.paths) == 1:
            path = self.root / sample.paths[0]
            with np.load(path) as archive:
                absent = [k for k in _NPZ_KEYS if k not in archive.files]
                if absent:
                    raise ValueError(f"{path}: expected arrays {list(_NPZ_KEYS)}, missing {absent} "
                                     f"(has {archive.files})")
                rgb, depth, ir = (np.asarray(archive[k]) for k in _NPZ_KEYS)
        else:
            rgb, depth, ir = (self._read(p) for p in sample.paths)
            rgb = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_BGR2RGB) if rgb.ndim == 3 else rgb
        return [_resize(_as_rgb(rgb)), _resize(gray_to_rgb(_encode_depth(_as_gray(depth), self.preprocess))),
                _resize(gray_to_rgb(encode_ir(_as_gray(ir), self.preprocess)))]

    def _read(self, relative: str) -> np.ndarray:
        image = cv2.imread(str(self.root / relative), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"{self.root / relative}: not a readable image")
        return image


def _as_gray(image: np.ndarray) -> np.ndarray:
    # Some datasets store depth/IR as 3 identical channels.
    return image[..., 0] if image.ndim == 3 else image


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise ValueError(f"RGB image: expected uint8, got {image.dtype}")
    return gray_to_rgb(image) if image.ndim == 2 else image[..., :3]


def _encode_depth(depth: np.ndarray, preprocess: PreprocessConfig) -> np.ndarray:
    if depth.dtype == np.uint8:
        return depth
    valid = depth[depth > 0]
    centre_m = float(np.median(valid)) * 1e-3 if valid.size else 0.0
    return encode_depth(depth, 1e-3, centre_m, preprocess)


def _resize(image: np.ndarray) -> np.ndarray:
    if image.shape[:2] == (CROP_SIZE, CROP_SIZE):
        return np.ascontiguousarray(image)
    return cv2.resize(image, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)


def create_list_dataset(lists: Sequence[SplitList], protocols_dir: PathLike, data_root: PathLike,
                        missing: Sequence[str] = (), preprocess: PreprocessConfig = PreprocessConfig()) -> ListDataset:
    """Concatenate split lists into one dataset; each sample gets its list's domain index."""
    samples, domains = [], []
    for split in lists:
        parsed = read_split_list(Path(protocols_dir) / split.path)
        samples += parsed
        domains += [split.domain_of(s.paths[0]) for s in parsed]
    return ListDataset(samples, domains, data_root, missing, preprocess)


def create_protocol_datasets(protocol: Protocol, protocols_dir: PathLike, data_root: PathLike,
                             splits: Sequence[str] = ("train", "val", "test"),
                             preprocess: PreprocessConfig = PreprocessConfig()) -> Dict[str, ListDataset]:
    """The datasets of a list protocol, by split name; the test split drops ``protocol.test_missing``.

    Raises:
        ValueError: a synthetic protocol (use ``synthetic_data.create_synthetic_datasets``) or a bad split.
        FileNotFoundError: a list or any listed image is missing.
    """
    if protocol.is_synthetic:
        raise ValueError(f"protocol {protocol.name!r} is synthetic: it has no split lists")
    bad = [s for s in splits if s not in ("train", "val", "test")]
    if bad:
        raise ValueError(f"splits: expected names from ['train', 'val', 'test'], got {bad}")
    return {s: create_list_dataset(getattr(protocol, s), protocols_dir, data_root,
                                   protocol.test_missing if s == "test" else (), preprocess) for s in splits}
