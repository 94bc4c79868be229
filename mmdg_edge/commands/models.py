"""Model commands: export, build, bench, keygen, sign."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import click

from .common import echo_json, progress, require_torch, sdk_errors


def _one_of(positional: Optional[str], alias: Optional[str], name: str) -> str:
    """The positional argument, or its older option spelling (kept hidden for one release)."""
    if positional and alias and positional != alias:
        raise click.BadParameter(f"{name} given twice ({positional!r} and {alias!r})")
    value = positional or alias
    if not value:
        raise click.UsageError(f"missing argument {name.upper()}")
    return value


def resolve_checkpoint(value: str) -> str:
    """``demo`` → the bundled demo checkpoint; anything else is a path."""
    from ..assets import DEMO_CHECKPOINT, bundled

    return str(bundled(DEMO_CHECKPOINT, "reinstall mmdg-edge, or pass a checkpoint path")) if value == "demo" else value


@click.command("export")
@click.argument("checkpoint", required=False)
@click.option("--checkpoint", "checkpoint_option", hidden=True, help="Old spelling of CHECKPOINT.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="ONNX file to write.")
@click.option("--opset", default=18, show_default=True, type=click.IntRange(min=17),
              help="ONNX opset: 18 or newer, or 17 for older runtimes (converted from 18).")
@click.option("--fp16", is_flag=True, help="FP16 weights and arithmetic inside (FP32 inputs/outputs), for GPU providers.")
@click.option(
    "--int8", type=click.Choice(["dynamic", "static"]), default=None, is_flag=False, flag_value="dynamic",
    help="onnxruntime INT8 for CPU kiosks: 'dynamic' (default when given bare) or 'static' (activation ranges from "
         "--calibration-source).")
@click.option("--calibration-source", default="synthetic", show_default=True,
              help="Static INT8: where the calibration faces come from (a recording or folder of your camera, or "
                   "the synthetic camera).")
@click.option("--calibration-count", default=64, show_default=True, type=click.IntRange(min=1),
              help="Static INT8: faces to calibrate on.")
@click.option("--force", is_flag=True, help="Replace an existing --output file (else it is refused before any work).")
def export_command(checkpoint, checkpoint_option, output: str, opset: int, fp16: bool, int8: str,
                   calibration_source: str, calibration_count: int, force: bool) -> None:
    """Export a checkpoint (.safetensors, or 'demo') to ONNX: visual streams + head, dynamic batch, metadata inside.

    Prints the written file's path on stdout. An existing --output is refused unless --force.
    """
    checkpoint = resolve_checkpoint(_one_of(checkpoint, checkpoint_option, "checkpoint"))
    if fp16 and int8:
        raise click.BadParameter("--fp16 and --int8: choose one precision; INT8 is quantised from the FP32 graph")
    require_torch("export")
    from ..engines.export import export_onnx
    from ..outputs import check_output, replacing

    with sdk_errors():
        check_output(output, force)
        steps = progress(["calibration faces", "export"] if int8 == "static" else ["export"], None, "step", "export")
        calibration = None
        for step in steps:
            if step == "calibration faces":
                calibration = _calibration_inputs(calibration_source, calibration_count)
            else:
                with replacing(output, force) as temporary:
                    export_onnx(checkpoint, temporary, opset=opset, fp16=fp16, int8=int8, calibration=calibration)
    click.echo(output)


def _calibration_inputs(source: str, count: int):
    """``count`` faces from a source through the aligner and the encoder: static INT8 calibration inputs."""
    from ..align import FaceAligner
    from ..preprocess import encode
    from ..sensors import open_source

    aligner, faces = FaceAligner(), []
    with open_source(source) as frames:
        for frameset in frames:
            result = aligner.align(frameset)
            if result.status == "ok":
                faces.append(result.crops)
            if len(faces) == count:
                return encode(faces)
    raise click.ClickException(f"calibration: {source} gave {len(faces)} faces the aligner accepts, {count} needed")


@click.command("build")
@click.argument("onnx_path", metavar="ONNX", required=False)
@click.option("--onnx", "onnx_option", hidden=True, help="Old spelling of ONNX.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="TensorRT plan to write (sidecar: <plan>.json).")
@click.option("--fp16/--fp32", default=True, show_default=True, help="Allow FP16 kernels.")
@click.option("--min-batch", default=1, show_default=True, type=click.IntRange(min=1), help="Smallest batch the plan accepts.")
@click.option("--opt-batch", default=1, show_default=True, type=click.IntRange(min=1), help="Batch the plan is tuned for.")
@click.option("--max-batch", default=8, show_default=True, type=click.IntRange(min=1), help="Largest batch the plan accepts.")
@click.option("--workspace-mb", default=1024, show_default=True, type=click.IntRange(min=1), help="Builder workspace limit (MiB).")
@click.option("--timing-cache", type=click.Path(dir_okay=False), default=None,
              help="Timing cache file to reuse and update (faster rebuilds).")
@click.option("--dla-core", type=click.IntRange(min=0), default=None, help="DLA core on Jetson (GPU fallback on).")
def build_command(onnx_path, onnx_option, output: str, fp16: bool, min_batch: int, opt_batch: int, max_batch: int,
                  workspace_mb: int, timing_cache: str, dla_core: int) -> None:
    """Build a TensorRT plan and its sidecar from an exported ONNX file (on the target GPU or Jetson)."""
    from pathlib import Path

    onnx_path = _one_of(onnx_path, onnx_option, "onnx")
    if not Path(onnx_path).is_file():
        raise click.BadParameter(f"no such ONNX file: {onnx_path}")
    if not min_batch <= opt_batch <= max_batch:
        raise click.BadParameter(f"expected --min-batch ≤ --opt-batch ≤ --max-batch (min_batch ≤ opt_batch ≤ max_batch), "
                                 f"got {min_batch}, {opt_batch}, {max_batch}")
    from ..engines.tensorrt_engine import build_engine

    with sdk_errors():
        path = build_engine(onnx_path, output, fp16=fp16, min_batch=min_batch, opt_batch=opt_batch,
                            max_batch=max_batch, workspace_mb=workspace_mb, timing_cache=timing_cache,
                            dla_core=dla_core)
    click.echo(str(path))


@click.command("bench")
@click.option("--checkpoint", default="tiny", show_default=True,
              help="Checkpoint (.safetensors), an FP32 .onnx file, 'demo', or 'tiny'/'paper' for a random-init model "
                   "of that size (tiny: fast, but too small for INT8 to pay off; paper: the README's table, minutes).")
@click.option("--batch", "batch_sizes", multiple=True, type=click.IntRange(min=1), default=(1, 8), show_default=True,
              help="Batch size to time (repeat the option for several).")
@click.option("--iterations", default=5, show_default=True, type=click.IntRange(min=1), help="Timed calls per engine and batch.")
@click.option("--warmup", default=1, show_default=True, type=click.IntRange(min=0), help="Untimed calls first.")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(min=0),
              help="CPU threads for torch and onnxruntime alike (0 = their defaults).")
@click.option("--int8/--no-int8", default=True, show_default=True, help="Include onnxruntime dynamic INT8.")
@click.option("--compile", "compile_", is_flag=True, help="Include torch.compile (slow warm-up).")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Verdict threshold for the agreement column (default: median of the FP32 scores).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="A table, or a JSON list of rows.")
def bench_command(checkpoint: str, batch_sizes: tuple, iterations: int, warmup: int, threads: int, int8: bool,
                  compile_: bool, threshold: float, output_format: str) -> None:
    """Latency p50/p95 and throughput of every available engine, with ratios to torch eager FP32 in the same run.

    Without torch (a kiosk install) the onnxruntime engines run against onnxruntime FP32, on an ONNX
    file (demo, FILE.onnx; tiny is timed on the demo model). Every engine left out is named on stderr
    with the reason.
    """
    import dataclasses

    from ..engines.benchmark import PRESETS, format_table, run_benchmark

    click.echo(f"config: {checkpoint}{' (random init)' if checkpoint in PRESETS else ''}; exporting and timing, "
               "this takes a while", err=True)
    with sdk_errors():
        rows = run_benchmark(resolve_checkpoint(checkpoint), batch_sizes=batch_sizes, iterations=iterations,
                             warmup=warmup, threads=threads, int8=int8, compile=compile_, threshold=threshold)
    if output_format == "json":
        echo_json([dataclasses.asdict(row) for row in rows])
    else:
        click.echo(format_table(rows))


@click.command("keygen")
@click.option("--output", required=True, type=click.Path(dir_okay=False),
              help="Key name: writes NAME.key (private, keep it off the kiosk) and NAME.pub (public, for the kiosk).")
def keygen_command(output: str) -> None:
    """Create an Ed25519 key pair for signing models, device profiles and bundles."""
    from ..signing import create_key_pair

    with sdk_errors():
        key = create_key_pair(f"{output}.key", f"{output}.pub")
    click.echo(f"{output}.key")
    click.echo(f"{output}.pub")
    click.echo(f"key {key}: {output}.key is private (keep it off the kiosk), {output}.pub goes to the kiosk", err=True)


@click.command("sign")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The private key (NAME.key from `mmdg-edge keygen`).")
@click.option("--force", is_flag=True, help="Replace existing signatures (else an existing FILE.sig is refused).")
def sign_command(files, key_path: str, force: bool) -> None:
    """Sign bundles, model files and device profiles (writes FILE.sig beside each; prints their paths).

    A folder is a bundle: its models, profiles and bundle.json are signed. A file named bundle.json
    is signed as a bundle index, any other .json file as a device profile, anything else as a model;
    a TensorRT plan is signed with its sidecar (PLAN.json), which sets its threshold and
    preprocessing. A detector given the public key (`--trusted-key NAME.pub`) then refuses any of
    them this key did not sign.
    """
    from ..outputs import check_output
    from ..signing import load_private_key, sign_file, signature_path

    with sdk_errors():
        key = load_private_key(key_path)
        targets = [target for path in files for target in _to_sign(Path(path))]
        for target, _ in targets:  # all refusals before the first signature is written
            check_output(signature_path(target), force)
        for target, role in targets:
            click.echo(str(sign_file(target, key, role, force)))


def _to_sign(path: Path) -> Tuple[Tuple[Path, str], ...]:
    """What `sign PATH` signs, with the role: a folder as a bundle (``bundle.files_to_sign``),
    bundle.json as a bundle index, another .json as a device profile, except a TensorRT plan's sidecar
    (PLAN.json), which is part of its model; a model together with every file its engine reads."""
    from ..bundle import BUNDLE_FILE, files_to_sign
    from ..engines import PLAN_SUFFIXES, model_files

    if path.is_dir():
        return tuple(files_to_sign(path))
    if path.name == BUNDLE_FILE:
        return ((path, "bundle"),)
    if path.suffix.lower() == ".json":
        return ((path, "model" if Path(path.stem).suffix.lower() in PLAN_SUFFIXES else "profile"),)
    return tuple((file, "model") for file in model_files(path))
