"""The `mmdg-edge` command line: one click group whose commands load on first use.

Commands live in ``mmdg_edge.commands`` (kiosk, models, collection, training) and are imported
only when called, so `mmdg-edge --help` stays fast and the kiosk commands never import torch. An
import error in a command module is not swallowed: a broken command fails loudly. Results go to
stdout, logs and progress bars to stderr. Exit codes: 0 done, 1 failed (one line on stderr), 2 bad
usage, 130 interrupted (Ctrl-C or SIGTERM; the summary so far is printed first).
"""
from __future__ import annotations

import importlib
import logging
import signal
import sys
from typing import Any, Dict, List, Optional

import click

from .version import __version__

COMMANDS: Dict[str, str] = {
    "live": "mmdg_edge.commands.kiosk:live_command",
    "check": "mmdg_edge.commands.kiosk:check_command",
    "record": "mmdg_edge.commands.kiosk:record_command",
    "doctor": "mmdg_edge.commands.kiosk:doctor_command",
    "collect": "mmdg_edge.commands.collection:collect_command",
    "forget": "mmdg_edge.commands.collection:forget_command",
    "calibrate": "mmdg_edge.commands.collection:calibrate_command",
    "train": "mmdg_edge.commands.training:train_command",
    "eval": "mmdg_edge.commands.training:eval_command",
    "bundle": "mmdg_edge.commands.training:bundle_command",
    "export": "mmdg_edge.commands.models:export_command",
    "build": "mmdg_edge.commands.models:build_command",
    "bench": "mmdg_edge.commands.models:bench_command",
    "keygen": "mmdg_edge.commands.models:keygen_command",
    "sign": "mmdg_edge.commands.models:sign_command",
}
"""Command name → "module:attribute" (click's "Lazily Loading Subcommands")."""


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is asked for."""

    def list_commands(self, ctx: click.Context) -> List[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name not in COMMANDS:
            return None
        module, _, attribute = COMMANDS[name].partition(":")
        return getattr(importlib.import_module(module), attribute)  # an ImportError here is a bug: let it show

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; Ctrl-C or SIGTERM where the command keeps no summary of its own is exit 130."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            from .commands.common import interrupted

            interrupted()


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (a service stop) ends a command as Ctrl-C does: summary, exit 130


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mmdg-edge")
@click.option("-v", "--verbose", count=True, help="More log detail on stderr (-v: debug).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False), default=None,
              help="Log level of mmdg-edge's own messages (default info: engine choice, epochs, cache hits).")
def main(verbose: int, log_level: Optional[str]) -> None:
    """Multimodal (RGB + depth + IR) face anti-spoofing for kiosks, powered by MMDG++.

    Kiosk: live, check, record, doctor. Your own camera: collect, forget, train --data, eval --data,
    calibrate, bundle. Models: export, build, bench, keygen, sign. `mmdg-edge COMMAND --help` says more.
    """
    level = log_level.upper() if log_level else ("DEBUG" if verbose else "INFO")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("mmdg_edge")
    package.handlers[:] = [handler]
    package.setLevel(level)
    package.propagate = False
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
