"""Writing the files a user names: never through a symbolic link, never over a file unasked, never half.

A kiosk's files sit beside each other (models, profiles, signatures); a write that followed a link
planted there, or replaced a file the user did not name, would destroy one of them. So an output is
written to a temporary file in its folder and renamed over the name (a rename replaces a link, never
its target), and an existing output is refused unless the caller passes ``force``.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

__all__ = ["PendingOutput", "check_output", "replacing", "write_output"]

PathLike = Union[str, "os.PathLike[str]"]


def check_output(path: PathLike, force: bool = False) -> Path:
    """Refuse an output that exists (a link included, even a dangling one) unless ``force``; call it
    before the work that produces the output.

    Raises:
        FileExistsError: the output exists and ``force`` is False, or it is a directory.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise FileExistsError(f"{path} is a directory; name a file to write")
    if os.path.lexists(path) and not force:
        kind = "a symbolic link" if path.is_symlink() else "a file"
        raise FileExistsError(f"{path} exists ({kind}); it is not replaced unless you pass --force (force=True)")
    return path


class PendingOutput:
    """A temporary file beside ``path`` (same suffix, so writers that pick a format by it still do)
    that ``commit`` renames over ``path`` and ``discard`` removes; for writers that stay open, e.g. a video.

    Raises:
        FileExistsError: as ``check_output``, on creation and again at ``commit``.
    """

    def __init__(self, path: PathLike, force: bool = False) -> None:
        self.path, self.force = check_output(path, force), force
        descriptor, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=self.path.suffix,
                                                 dir=self.path.parent)
        os.close(descriptor)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a profile or signature from the kiosk's user
        self.temporary = Path(temporary)

    def commit(self) -> Path:
        check_output(self.path, self.force)
        os.replace(self.temporary, self.path)
        return self.path

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.temporary.unlink()


@contextlib.contextmanager
def replacing(path: PathLike, force: bool = False) -> Iterator[Path]:
    """A temporary path to write, renamed over ``path`` when the block ends without an error and
    removed otherwise (``PendingOutput``)."""
    pending = PendingOutput(path, force)
    try:
        yield pending.temporary
        pending.commit()
    finally:
        pending.discard()


def write_output(path: PathLike, data: Union[bytes, str], force: bool = False) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file and a rename; returns ``path``."""
    with replacing(path, force) as temporary:
        temporary.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)
