"""Installation layout: subpackages map into mmdg_edge, the core imports no torch, the CLI answers."""
import subprocess
import sys

from click.testing import CliRunner

import mmdg_edge
from mmdg_edge.cli import main


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120)


def test_subpackages_install_under_mmdg_edge_only():
    result = _run(
        "import importlib.util, mmdg_edge.sensors, mmdg_edge.engines, mmdg_edge.train;"
        "print([importlib.util.find_spec(n) is None for n in ('sensors', 'engines', 'train')])"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[True, True, True]"


def test_core_import_does_not_import_torch():
    result = _run("import sys, mmdg_edge, mmdg_edge.frames, mmdg_edge.preprocess, mmdg_edge.checkpoint;"
                  "print('torch' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_version_and_help():
    runner = CliRunner()
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and mmdg_edge.__version__ in result.output
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0 and "anti-spoofing" in result.output


def test_every_command_has_help():
    runner = CliRunner()
    for name in main.commands:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output
