"""Load a benchmark or script file of the repository as a module (they are not in a package)."""
import contextlib
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def loaded(relative: str):
    """The module at ``REPO / relative``, registered in ``sys.modules`` while in use (its dataclasses
    look their module up there)."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]
