"""Frame sources: live RealSense cameras, recordings, image folders and the synthetic camera.

``open_source(spec)`` is the one entry point; every source is a context-managed iterator of
FrameSet that says whether it runs in real time (``is_realtime``) and labels its framesets with
their ``origin``. pyrealsense2 is imported only when a camera or recording opens.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from ..assets import DEMO_RECORDING, DEMO_SEGMENTS
from ..errors import SourceError

SPEC_FORMS = ("realsense", "realsense:SERIAL", "FILE.bag", "FILE.db3", "FOLDER", "synthetic", "demo")
RECORDING_SUFFIXES = (".bag", ".db3")


def load_segments(path: Optional[Union[str, Path]] = None) -> List[Dict[str, Any]]:
    """Ground-truth segments of a recording (default: the demo recording's demo_segments.json).

    Returns:
        ``[{"kind", "label", "first_frame", "last_frame"}, ...]`` as written by
        scripts/make_demo_recording.py.

    Raises:
        SourceError: the file is missing or not a segment list.
    """
    path = Path(path) if path is not None else DEMO_SEGMENTS
    try:
        segments = json.loads(path.read_text())["segments"]
        for segment in segments:
            if not {"kind", "label", "first_frame", "last_frame"} <= set(segment):
                raise KeyError(f"a segment lacks kind/label/first_frame/last_frame: {segment}")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise SourceError(f"{path}: not a segment list ({exc})") from exc
    return segments


def _looks_like_path(spec: str) -> bool:
    """A recording's name or a spec with a folder in it (a URL is not a path)."""
    has_folder = "/" in spec or os.sep in spec or spec.startswith(("~", "."))
    return Path(spec).suffix.lower() in RECORDING_SUFFIXES or (has_folder and "://" not in spec)


def parse_source_spec(spec: Union[str, "os.PathLike[str]"]) -> Tuple[str, str]:
    """``(kind, argument)`` for a source spec; kind is realsense, recording, images, synthetic or demo.

    A ``pathlib.Path`` is a file or folder, whatever its name.

    Raises:
        SourceError: a spec that names a file or folder that does not exist.
        ValueError: anything else that is not a valid form, listing the valid forms.
    """
    if isinstance(spec, os.PathLike):
        path = Path(spec)
        if not path.exists():
            raise SourceError(f"no such file or folder: {path}")
        if path.suffix.lower() in RECORDING_SUFFIXES:
            return "recording", str(path)
        if path.is_dir():
            return "images", str(path)
        raise ValueError(f"source: {path} is neither a recording ({', '.join(RECORDING_SUFFIXES)}) nor a folder")
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"source: expected one of {', '.join(SPEC_FORMS)}, got {spec!r}")
    if spec == "realsense":
        return "realsense", ""
    if spec.startswith("realsense:") and spec[len("realsense:"):]:
        return "realsense", spec[len("realsense:"):]
    if spec in ("synthetic", "demo"):
        return spec, ""
    path = Path(spec)
    if _looks_like_path(spec) and not path.exists() and not path.is_symlink():
        raise SourceError(f"no such file or folder: {spec}")
    if path.suffix.lower() in RECORDING_SUFFIXES:
        return "recording", spec
    if path.is_dir():
        return "images", spec
    raise ValueError(f"source: unknown spec {spec!r}; expected one of {', '.join(SPEC_FORMS)}")


def open_source(spec: Union[str, "os.PathLike[str]"], **options: Any):
    """Open a frame source.

    Args:
        spec: ``realsense``, ``realsense:SERIAL``, a ``.bag``/``.db3`` recording, a folder of
            ``NAME_rgb``/``NAME_depth``/``NAME_ir`` images (as a string or a ``pathlib.Path``),
            ``synthetic`` or ``demo``.
        **options: passed to the source (e.g. ``align=False`` for recordings, ``config=`` for cameras,
            ``depth_scale_m=`` for image folders, ``seed=`` for the synthetic camera).

    Returns:
        A context-managed iterator of FrameSet: RealSenseSource, PlaybackSource, ImageFolderSource
        or SyntheticCamera.

    Raises:
        ValueError: an unknown spec.
        SourceError: a file or folder that does not exist ("no such file or folder: ..."), or a source
            that cannot be opened (the message says why).

    Example:
        >>> with open_source("demo") as frames:  # doctest: +SKIP
        ...     for frameset in frames:
        ...         print(frameset.frame_number, frameset.origin)
    """
    kind, argument = parse_source_spec(spec)
    if kind == "realsense":
        from .realsense import RealSenseSource

        return RealSenseSource(serial=argument or None, **options)
    if kind == "recording":
        from .playback import PlaybackSource

        return PlaybackSource(argument, **options)
    if kind == "images":
        from .images import ImageFolderSource

        return ImageFolderSource(argument, **options)
    if kind == "synthetic":
        from .synthetic import SyntheticCamera

        return SyntheticCamera(**options)
    if not DEMO_RECORDING.is_file():
        raise SourceError(
            f"the demo recording {DEMO_RECORDING} is missing; build it with scripts/make_demo_recording.py"
        )
    from .playback import PlaybackSource

    return PlaybackSource(DEMO_RECORDING, **options)
