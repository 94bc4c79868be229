"""Image triplets on disk as framesets: ``NAME_rgb.png``, ``NAME_depth.png``, ``NAME_ir.png``.

``open_source(FOLDER)`` returns an ``ImageFolderSource``: for `mmdg-edge check DIR` and calibration
from stills. Depth is a 16-bit PNG in millimetres (z16, depth scale 0.001 m unless given); IR is an
8- or 16-bit grey image; colour is assumed registered to depth (same viewpoint and size). Any of the
three may be missing for a NAME.
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

import numpy as np

from ..errors import SourceError
from ..frames import FrameSet

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
SUFFIXES = {"rgb": "_rgb", "depth": "_depth", "ir": "_ir"}
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _read(path: Path, kind: str) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SourceError(f"{path}: cannot be read as an image")
    if kind == "rgb":
        if image.dtype != np.uint8:
            _wrong(path, kind, image)
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return np.ascontiguousarray(cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB))
    if image.ndim == 3:
        image = image[..., 0]
    if kind == "depth" and image.dtype != np.uint16:
        _wrong(path, kind, image)
    if kind == "ir" and image.dtype not in (np.uint8, np.uint16):
        _wrong(path, kind, image)
    return image


def _wrong(path: Path, kind: str, image: np.ndarray) -> None:
    want = {"rgb": "8-bit colour", "depth": "16-bit grey (millimetres)", "ir": "8- or 16-bit grey"}[kind]
    raise SourceError(f"{path}: {kind} images must be {want}, got {image.dtype} with shape {image.shape}")


def find_triplets(folder: PathLike) -> Dict[str, Dict[str, Path]]:
    """NAME → {modality: path} for every NAME_rgb/_depth/_ir image in ``folder`` (sorted by NAME)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a directory")
    found: Dict[str, Dict[str, Path]] = defaultdict(dict)
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in EXTENSIONS:
            continue
        for kind, suffix in SUFFIXES.items():
            if path.stem.endswith(suffix):
                found[path.stem[: -len(suffix)]][kind] = path
    if not found:
        raise SourceError(f"{folder}: no NAME_rgb / NAME_depth / NAME_ir images found")
    return dict(sorted(found.items()))


def load_triplet(paths: Dict[str, Path], depth_scale_m: float = 0.001, name: Optional[str] = None) -> FrameSet:
    """One FrameSet from up to three image files; a file that does not validate raises SourceError."""
    images = {kind: _read(path, kind) for kind, path in paths.items()}
    try:
        return FrameSet(rgb=images.get("rgb"), depth=images.get("depth"), ir=images.get("ir"),
                        depth_scale_m=depth_scale_m, color_aligned_to_depth="depth" in images and "rgb" in images,
                        origin="images", metadata={"source": "images", "name": name})
    except ValueError as exc:
        raise SourceError(f"{name or paths}: {exc}") from exc


class ImageFolderSource:
    """The triplets of a folder as framesets, in name order. Use as a context manager.

    Args:
        folder: a folder of ``NAME_rgb`` / ``NAME_depth`` / ``NAME_ir`` images.
        depth_scale_m: metres per unit of the depth images.

    Attributes:
        is_realtime: False; stills are read at the consumer's pace.

    Raises:
        SourceError: on open, a missing folder or one without triplets; while iterating, an image
            that cannot be read or does not validate (the message names the file).

    Example:
        >>> with ImageFolderSource("stills") as frames:  # doctest: +SKIP
        ...     names = [frameset.metadata["name"] for frameset in frames]
    """

    is_realtime = False

    def __init__(self, folder: PathLike, depth_scale_m: float = 0.001) -> None:
        self.folder = Path(folder)
        self.depth_scale_m = depth_scale_m
        self._triplets: Optional[Dict[str, Dict[str, Path]]] = None

    def __enter__(self) -> "ImageFolderSource":
        self.open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def open(self) -> None:
        """List the folder's triplets (SourceError when there are none)."""
        self._triplets = find_triplets(self.folder)

    def close(self) -> None:
        """Nothing stays open between framesets; here for the source contract."""
        self._triplets = None

    def __iter__(self) -> Iterator[FrameSet]:
        triplets = self._triplets if self._triplets is not None else find_triplets(self.folder)
        for index, (name, paths) in enumerate(triplets.items()):
            frameset = load_triplet(paths, self.depth_scale_m, name)
            frameset.frame_numbers = {kind: index for kind in paths}
            yield frameset
