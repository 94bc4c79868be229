"""Image triplets on disk as framesets: ``NAME_rgb.png``, ``NAME_depth.png``, ``NAME_ir.png``.

``open_source(FOLDER)`` returns an ``ImageFolderSource``: for `mmdg-edge check DIR` and calibration
from stills. Depth is a 16-bit PNG in millimetres (z16, depth scale 0.001 m unless given); IR is an
8- or 16-bit grey image; colour is assumed registered to depth (same viewpoint and size). Any of the
three may be missing for a NAME.
"""
from __future__ import annotations

import logging
import os
import struct
from collections import defaultdict
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from ..errors import SourceError
from ..frames import MAX_PIXELS, FrameSet, check_pixel_count

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
SUFFIXES = {"rgb": "_rgb", "depth": "_depth", "ir": "_ir"}
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn; DHT, JPG and DAC are not frames


def _png_size(head: bytes) -> Optional[Tuple[int, int]]:
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _bmp_size(head: bytes) -> Optional[Tuple[int, int]]:
    if head[:2] != b"BM" or len(head) < 26:
        return None
    width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)  # a negative height is a top-down bitmap


def _jpeg_size(handle: BinaryIO) -> Optional[Tuple[int, int]]:
    handle.seek(0)
    if handle.read(2) != b"\xff\xd8":
        return None
    while True:
        marker = handle.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        if marker[1] in (0x01, 0xFF) or 0xD0 <= marker[1] <= 0xD7:  # standalone markers and fill bytes
            handle.seek(-1 if marker[1] == 0xFF else 0, os.SEEK_CUR)
            continue
        length = struct.unpack(">H", handle.read(2) or b"\0\0")[0]
        if length < 2:
            return None
        if marker[1] in _JPEG_FRAME_MARKERS:
            frame = handle.read(5)
            return (struct.unpack(">H", frame[3:5])[0], struct.unpack(">H", frame[1:3])[0]) if len(frame) == 5 else None
        handle.seek(length - 2, os.SEEK_CUR)


def _tiff_size(handle: BinaryIO) -> Optional[Tuple[int, int]]:
    handle.seek(0)
    head = handle.read(8)
    order = {b"II*\0": "<", b"MM\0*": ">"}.get(head[:4])
    if order is None or len(head) < 8:
        return None
    handle.seek(struct.unpack(order + "I", head[4:8])[0])
    count_bytes = handle.read(2)
    if len(count_bytes) < 2:
        return None
    size: Dict[int, int] = {}
    for _ in range(struct.unpack(order + "H", count_bytes)[0]):
        entry = handle.read(12)
        if len(entry) < 12:
            return None
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257) and kind in (3, 4):  # ImageWidth, ImageLength as SHORT or LONG
            size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[0]
    return (size[256], size[257]) if len(size) == 2 else None


def declared_size(path: Path) -> Tuple[int, int]:
    """(width, height) from an image file's header, read before the image is decoded.

    Raises:
        SourceError: the file is unreadable, or not PNG, JPEG, BMP or TIFF with a size in its header.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(32)
            size = _png_size(head) or _bmp_size(head) or _jpeg_size(handle) or _tiff_size(handle)
    except (OSError, struct.error) as exc:
        raise SourceError(f"{path}: cannot be read as an image ({exc})") from exc
    if size is None:
        raise SourceError(f"{path}: cannot be read as an image (not PNG, JPEG, BMP or TIFF with its size in the header)")
    return size


def _read(path: Path, kind: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    import cv2

    width, height = declared_size(path)
    try:
        check_pixel_count(width, height, max_pixels, str(path))
    except ValueError as exc:
        raise SourceError(str(exc)) from exc
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SourceError(f"{path}: cannot be read as an image")
    if image.shape[:2] != (height, width):
        raise SourceError(f"{path}: decoded as {image.shape[1]}×{image.shape[0]}, its header says {width}×{height}")
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


def load_triplet(paths: Dict[str, Path], depth_scale_m: float = 0.001, name: Optional[str] = None,
                 max_pixels: int = MAX_PIXELS) -> FrameSet:
    """One FrameSet from up to three image files; a file that does not validate, or whose header
    declares more than ``max_pixels`` pixels (checked before decoding), raises SourceError."""
    images = {kind: _read(path, kind, max_pixels) for kind, path in paths.items()}
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
        max_pixels: the most pixels an image may have, read from its header before it is decoded.

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

    def __init__(self, folder: PathLike, depth_scale_m: float = 0.001, max_pixels: int = MAX_PIXELS) -> None:
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
            raise ValueError(f"ImageFolderSource.max_pixels: expected a positive int, got {max_pixels!r}")
        self.folder = Path(folder)
        self.depth_scale_m = depth_scale_m
        self.max_pixels = max_pixels
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
            frameset = load_triplet(paths, self.depth_scale_m, name, self.max_pixels)
            frameset.frame_numbers = {kind: index for kind in paths}
            yield frameset
