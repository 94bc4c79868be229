"""Running `mmdg-edge` as a user does: a subprocess, optionally with packages made unimportable
(a kiosk or train install lacks the dev extra's packages; torch-free installs lack torch)."""
import os
import subprocess
import sys
from pathlib import Path

EXE = str(Path(sys.executable).parent / "mmdg-edge")


def _blocking(*modules):
    """Python code that makes ``modules`` unimportable, then runs the CLI with the given argv."""
    names = repr(tuple(modules))
    return (f"import sys\nclass Block:\n    def find_spec(self, name, path=None, target=None):\n"
            f"        if name.split('.')[0] in {names}:\n            raise ImportError('blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\nfrom mmdg_edge.cli import main\nsys.argv[0] = 'mmdg-edge'\nmain()\n")


def cli(*args, block=(), env=None, timeout=300, cwd=None):
    command = [sys.executable, "-c", _blocking(*block), *map(str, args)] if block else [EXE, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})
