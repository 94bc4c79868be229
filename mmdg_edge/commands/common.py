"""What the commands share: error mapping, interruption, progress bars, options that recur."""
from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
from typing import Any, Callable, Iterable, Iterator, Optional

import click

INTERRUPTED = 130  # the shell's code for a process ended by SIGINT


class Renamed(click.Option):
    """An option whose first spelling is current; the others are older names, still accepted for one
    release but left out of --help (and so of the README's table)."""

    def get_help_record(self, ctx: click.Context):
        current, self.opts = self.opts, self.opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = current


@contextlib.contextmanager
def sdk_errors() -> Iterator[None]:
    """What goes wrong once work has begun is a failure (one line on stderr, exit 1), never a usage error.

    Bad options are refused by click (exit 2) before this runs; a data problem found while working
    (a recording without faces, too few attacks for a target) is exit 1.
    """
    from ..errors import MMDGEdgeError

    try:
        yield
    except (MMDGEdgeError, FileNotFoundError, FileExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def interrupted(summary: Optional[Callable[[], None]] = None) -> None:
    """After Ctrl-C or SIGTERM: print what there is so far, say so, exit 130."""
    if summary is not None:
        summary()
    click.echo("interrupted", err=True)
    sys.exit(INTERRUPTED)


def progress(items: Iterable[Any], total: Optional[int], unit: str, description: str = "") -> Iterable[Any]:
    """A tqdm bar on stderr (kept when done) where tqdm is installed, else the items as they are."""
    if importlib.util.find_spec("tqdm") is None:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, unit=unit, desc=description or None, file=sys.stderr, leave=True)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def require_torch(command: str) -> None:
    """Say what to install before a torch command fails deep inside an import."""
    from ..errors import MissingDependency, require

    try:
        require("torch", "torch")
        require("open_clip", "torch")
    except MissingDependency as exc:
        raise click.ClickException(f"`mmdg-edge {command}` needs torch and open_clip, which this install lacks "
                                   '(a kiosk install has neither): pip install "mmdg-edge[train]"') from exc


def engine_choices() -> list:
    from ..engines import list_engines

    return ["auto", *list_engines()]


def model_options(func: Callable) -> Callable:
    """--model, --engine, --threshold, --profile, --trusted-key, --precision: how a detector is loaded."""
    options = [
        click.option("--model", default="demo", show_default=True,
                     help="Model: demo, FILE.onnx, FILE.plan, FILE.safetensors or a bundle folder (`mmdg-edge bundle`)."),
        click.option("--engine", default="auto", show_default=True, type=click.Choice(engine_choices()),
                     help="Inference engine; auto picks the fastest available and logs why."),
        click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
                     help="Live threshold (default: the device profile's, else the model's)."),
        click.option("--profile", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Device profile JSON from `mmdg-edge calibrate` (a bundle brings its own)."),
        click.option("--trusted-key", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Public key (NAME.pub): refuse any model or profile it did not sign."),
        click.option("--precision", type=click.Choice(["fp32", "int8"]), default="fp32", show_default=True,
                     help="Which model of a bundle to load."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def load_detector(model: str, engine: str, threshold: Optional[float], profile: Optional[str],
                  trusted_key: Optional[str], precision: str, **kwargs: Any) -> Any:
    """A Detector, logging which engine runs and why (JSON on stderr)."""
    from ..detector import Detector
    from ..engines import select_engine

    detector = Detector.load(model, engine=engine, threshold=threshold, profile=profile, trusted_key=trusted_key,
                             precision=precision, **kwargs)
    described = detector.engine.describe()
    if engine == "auto":
        described["reason"] = select_engine("auto", described.get("model", "")).reason
    click.echo("engine: " + json.dumps(described), err=True)
    return detector
