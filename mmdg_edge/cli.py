"""The `mmdg-edge` command line: one click group, thin commands over the public API.

Every command imports its heavy modules inside its callback, so `mmdg-edge --help` stays fast
and the kiosk commands never import torch. SDK errors become one line on stderr and exit 1.
"""
from __future__ import annotations

import click

from .version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mmdg-edge")
def main() -> None:
    """Multimodal (RGB + depth + IR) face anti-spoofing for kiosks, powered by MMDG++."""
