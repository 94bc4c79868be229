"""Frame sources: live RealSense cameras, recordings, image folders and the synthetic camera.

``open_source(spec)`` is the one entry point; every source is a context-managed iterator of
FrameSet. pyrealsense2 is imported only when a camera or recording opens.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from ..errors import SourceError

SPEC_FORMS = ("realsense", "realsense:SERIAL", "FILE.bag", "FILE.db3", "synthetic", "demo")
DEMO_RECORDING = Path(__file__).resolve().parent.parent / "mmdg_edge" / "assets" / "demo.db3"


def load_segments(path: Optional[Union[str, Path]] = None) -> List[Dict[str, Any]]:
    """Ground-truth segments of a recording (default: the demo recording's demo_segments.json).

    Returns:
        ``[{"kind", "label", "first_frame", "last_frame"}, ...]`` as written by
        scripts/make_demo_recording.py.

    Raises:
        SourceError: the file is missing or not a segment list.
    """
    path = Path(path) if path is not None else DEMO_RECORDING.with_name("demo_segments.json")
    try:
        segments = json.loads(path.read_text())["segments"]
        for segment in segments:
            if not {"kind", "label", "first_frame", "last_frame"} <= set(segment):
                raise KeyError(f"a segment lacks kind/label/first_frame/last_frame: {segment}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"{path}: not a segment list ({exc})") from exc
    return segments


def parse_source_spec(spec: str) -> Tuple[str, str]:
    """``(kind, argument)`` for a source spec; kind is realsense, recording, synthetic or demo.

    Raises:
        ValueError: anything else, listing the valid forms.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"source: expected one of {', '.join(SPEC_FORMS)}, got {spec!r}")
    if spec == "realsense":
        return "realsense", ""
    if spec.startswith("realsense:") and spec[len("realsense:"):]:
        return "realsense", spec[len("realsense:"):]
    if spec in ("synthetic", "demo"):
        return spec, ""
    if Path(spec).suffix.lower() in (".bag", ".db3"):
        return "recording", spec
    raise ValueError(f"source: unknown spec {spec!r}; expected one of {', '.join(SPEC_FORMS)}")


def open_source(spec: str, **options: Any):
    """Open a frame source.

    Args:
        spec: ``realsense``, ``realsense:SERIAL``, a ``.bag``/``.db3`` recording, ``synthetic`` or ``demo``.
        **options: passed to the source (e.g. ``align=False`` for recordings, ``config=`` for cameras,
            ``seed=`` for the synthetic camera).

    Returns:
        A context-managed iterator of FrameSet.

    Raises:
        ValueError: an unknown spec.
        SourceError: the source cannot be opened (the message says why).

    Example:
        >>> with open_source("demo") as frames:  # doctest: +SKIP
        ...     for frameset in frames:
        ...         print(frameset.frame_number)
    """
    kind, argument = parse_source_spec(spec)
    if kind == "realsense":
        from .realsense import RealSenseSource

        return RealSenseSource(serial=argument or None, **options)
    if kind == "recording":
        from .playback import PlaybackSource

        return PlaybackSource(argument, **options)
    if kind == "synthetic":
        from .synthetic import SyntheticCamera

        return SyntheticCamera(**options)
    if not DEMO_RECORDING.is_file():
        raise SourceError(
            f"the demo recording {DEMO_RECORDING} is missing; build it with scripts/make_demo_recording.py"
        )
    from .playback import PlaybackSource

    return PlaybackSource(DEMO_RECORDING, **options)
