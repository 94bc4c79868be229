"""The SHA-256 of a file: how profiles, bundles, signatures and collections name the exact bytes they mean."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Union

__all__ = ["file_sha256"]

PathLike = Union[str, "os.PathLike[str]"]


def file_sha256(path: PathLike) -> str:
    """SHA-256 of a file as 64 hex digits, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
