"""The `mmdg-edge` command line: one click group, thin commands over the public API.

Every command imports its heavy modules inside its callback, so `mmdg-edge --help` stays fast
and the kiosk commands never import torch. SDK errors become one line on stderr and exit 1.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import click

from .version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mmdg-edge")
def main() -> None:
    """Multimodal (RGB + depth + IR) face anti-spoofing for kiosks, powered by MMDG++."""


@contextlib.contextmanager
def _sdk_errors() -> Iterator[None]:
    """SDK errors become one line on stderr (exit 1); bad values a usage error (exit 2)."""
    from .errors import MMDGEdgeError

    try:
        yield
    except (MMDGEdgeError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _resolve_checkpoint(value: str) -> str:
    """``demo`` → the bundled demo checkpoint; anything else is a path."""
    if value != "demo":
        return value
    from pathlib import Path

    demo = Path(__file__).parent / "assets" / "demo.safetensors"
    if not demo.is_file():
        raise click.ClickException(f"the bundled demo checkpoint is missing ({demo}); pass --checkpoint PATH")
    return str(demo)


@main.command("export")
@click.option("--checkpoint", required=True, help="Checkpoint (.safetensors) to export, or 'demo' for the bundled one.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="ONNX file to write.")
@click.option("--opset", default=18, show_default=True, type=click.IntRange(min=17),
              help="ONNX opset: 18 or newer, or 17 for older runtimes (converted from 18).")
@click.option("--fp16", is_flag=True, help="FP16 weights and arithmetic inside (FP32 inputs/outputs), for GPU providers.")
@click.option(
    "--int8", type=click.Choice(["dynamic", "static"]), default=None, is_flag=False, flag_value="dynamic",
    help="onnxruntime INT8 for CPU kiosks: 'dynamic' (default when given bare) or 'static' (synthetic-camera calibration).",
)
@click.option("--calibration-count", default=64, show_default=True, type=click.IntRange(min=1),
              help="Framesets from the synthetic camera used to calibrate static INT8.")
def export_command(checkpoint: str, output: str, opset: int, fp16: bool, int8: str, calibration_count: int) -> None:
    """Export a checkpoint to ONNX (visual streams + head, dynamic batch, metadata inside)."""
    from .engines.export import export_onnx

    with _sdk_errors():
        calibration = _calibration_inputs("synthetic", calibration_count) if int8 == "static" else None
        path = export_onnx(_resolve_checkpoint(checkpoint), output, opset=opset, fp16=fp16, int8=int8,
                           calibration=calibration)
    click.echo(str(path))


@main.command("build")
@click.option("--onnx", "onnx_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="ONNX file from `mmdg-edge export` (FP32 or FP16).")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="TensorRT plan to write (sidecar: <plan>.json).")
@click.option("--fp16/--fp32", default=True, show_default=True, help="Allow FP16 kernels.")
@click.option("--min-batch", default=1, show_default=True, type=click.IntRange(min=1), help="Smallest batch the plan accepts.")
@click.option("--opt-batch", default=1, show_default=True, type=click.IntRange(min=1), help="Batch the plan is tuned for.")
@click.option("--max-batch", default=8, show_default=True, type=click.IntRange(min=1), help="Largest batch the plan accepts.")
@click.option("--workspace-mb", default=1024, show_default=True, type=click.IntRange(min=1), help="Builder workspace limit (MiB).")
@click.option("--timing-cache", type=click.Path(dir_okay=False), default=None,
              help="Timing cache file to reuse and update (faster rebuilds).")
@click.option("--dla-core", type=click.IntRange(min=0), default=None, help="DLA core on Jetson (GPU fallback on).")
def build_command(onnx_path: str, output: str, fp16: bool, min_batch: int, opt_batch: int, max_batch: int,
                  workspace_mb: int, timing_cache: str, dla_core: int) -> None:
    """Build a TensorRT plan and its sidecar from an exported ONNX file."""
    from .engines.tensorrt_engine import build_engine

    with _sdk_errors():
        path = build_engine(onnx_path, output, fp16=fp16, min_batch=min_batch, opt_batch=opt_batch,
                            max_batch=max_batch, workspace_mb=workspace_mb, timing_cache=timing_cache,
                            dla_core=dla_core)
    click.echo(str(path))


@main.command("bench")
@click.option("--checkpoint", default="tiny", show_default=True,
              help="Checkpoint (.safetensors), 'demo', or 'tiny'/'paper' for a random-init model of that config.")
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
def bench_command(checkpoint: str, batch_sizes: tuple, iterations: int, warmup: int, threads: int, int8: bool,
                  compile_: bool, threshold: float) -> None:
    """Latency p50/p95 and throughput of every available engine, with ratios to torch eager FP32."""
    from .engines.benchmark import format_table, run_benchmark

    with _sdk_errors():
        rows = run_benchmark(_resolve_checkpoint(checkpoint), batch_sizes=batch_sizes, iterations=iterations,
                             warmup=warmup, threads=threads, int8=int8, compile=compile_, threshold=threshold)
    click.echo(format_table(rows))


def _calibration_inputs(source: str, count: int):
    """``count`` faces from a source through the aligner and the encoder: static INT8 calibration inputs."""
    from .align import FaceAligner
    from .preprocess import encode
    from .sensors import open_source

    aligner, faces = FaceAligner(), []
    with open_source(source) as frames:
        for frameset in frames:
            aligner.reset()
            result = aligner.align(frameset)
            if result.status == "ok":
                faces.append(result.crops)
            if len(faces) == count:
                return encode(faces)
    raise click.ClickException(f"calibration: {source} gave {len(faces)} faces the aligner accepts, {count} needed")


def _engine_choices() -> list:
    from .engines import list_engines

    return ["auto", *list_engines()]


@main.command("live")
@click.option("--source", default="demo", show_default=True,
              help="Frame source: demo, realsense, realsense:SERIAL, FILE.bag, FILE.db3 or synthetic.")
@click.option("--model", default="demo", show_default=True, help="Model: demo, FILE.onnx, FILE.plan or FILE.safetensors.")
@click.option("--engine", default="auto", show_default=True, type=click.Choice(_engine_choices()),
              help="Inference engine; auto picks the fastest available and says why on stderr.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Live threshold (default: device profile, else the model's).")
@click.option("--profile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Device profile JSON from `mmdg-edge calibrate`.")
@click.option("--headless", is_flag=True, help="No window: one JSON line per frameset on stdout, a summary on stderr.")
@click.option("--save-video", type=click.Path(dir_okay=False), default=None, help="Also write the annotated stream to this .mp4.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after this many framesets.")
@click.option("--emitter", type=click.Choice(["on", "off", "interleaved"]), default=None,
              help="RealSense cameras: IR projector on, off, or interleaved (dotted depth + clean IR; default on).")
@click.option("--segments", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Ground-truth segments JSON of the recording (default for --source demo: its demo_segments.json);"
                   " the summary then shows the session decision per segment.")
@click.option("--contact-sheet", type=click.Path(dir_okay=False), default=None,
              help="Headless: also write a PNG of annotated frames (the last of each segment, or every 10th).")
def live_command(source: str, model: str, engine: str, threshold, profile, headless: bool, save_video, max_frames,
                 emitter, segments, contact_sheet) -> None:
    """Camera (or recording) to verdict: the three modalities, face box, score bar and verdict."""
    import itertools
    import sys

    from .detector import Detector
    from .live import LiveSummary, run_headless, run_window
    from .sensors import load_segments, open_source, parse_source_spec

    if headless and save_video is not None:
        raise click.BadParameter("--save-video needs the window mode (drop --headless; or use --contact-sheet)")
    if contact_sheet is not None and not headless:
        raise click.BadParameter("--contact-sheet is for --headless runs (the window mode has --save-video)")
    try:
        with _sdk_errors():
            detector = Detector.load(model, engine=engine, threshold=threshold, profile=profile)
            click.echo(f"engine: {detector.engine.describe()}", err=True)
            summary = LiveSummary()
            if segments is not None or source == "demo":
                summary = LiveSummary.for_segments(load_segments(segments))
            options = {}
            if emitter is not None:
                if parse_source_spec(source)[0] != "realsense":
                    raise click.BadParameter("--emitter applies to RealSense cameras only")
                from .sensors.realsense import RealSenseConfig

                options["config"] = RealSenseConfig(emitter=emitter)
            with open_source(source, **options) as frames:
                # `live` is a viewer: a recording or the synthetic camera is shown as a test, with sessions.
                test = not getattr(frames, "is_realtime", False)
                if test:
                    click.echo(f"{source} is not a live camera: sessions are shown as a test (a kiosk never opens "
                               "a door on a recording)", err=True)
                if headless:  # max_frames inside: a live source keeps its newest-frame pacing
                    run_headless(detector, frames, sys.stdout, max_frames, summary, contact_sheet, allow_recorded=test)
                else:
                    frames = itertools.islice(frames, max_frames) if max_frames else frames
                    summary = run_window(detector, frames, save_video=save_video, allow_recorded=test)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
        return
    click.echo(summary.format_table(), err=True)


@main.command("record")
@click.option("--source", required=True,
              help="Frame source: realsense, realsense:SERIAL, FILE.bag, FILE.db3, synthetic or demo.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="The .db3 recording to write.")
@click.option("--frames", "max_frames", type=click.IntRange(min=1), default=None,
              help="Stop after this many framesets (default: until the source ends or Ctrl-C).")
def record_command(source: str, output: str, max_frames) -> None:
    """Record a source (camera, recording, synthetic camera) to a RealSense .db3 file."""
    import importlib.util
    import itertools
    import sys

    from .sensors import open_source
    from .sensors.recorder import record

    try:
        with _sdk_errors():
            with open_source(source) as frames:
                frames = itertools.islice(frames, max_frames) if max_frames else frames
                if importlib.util.find_spec("tqdm") is not None:
                    from tqdm import tqdm

                    frames = tqdm(frames, total=max_frames, unit="frameset", file=sys.stderr)
                written = record(frames, output)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
        return
    click.echo(f"wrote {written} framesets to {output}", err=True)


@main.command("keygen")
@click.option("--output", required=True, type=click.Path(dir_okay=False),
              help="Key name: writes NAME.key (private, keep it off the kiosk) and NAME.pub (public, for the kiosk).")
def keygen_command(output: str) -> None:
    """Create an Ed25519 key pair for signing models and device profiles."""
    from .signing import create_key_pair

    try:
        key = create_key_pair(f"{output}.key", f"{output}.pub")
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"key {key}: {output}.key (private) and {output}.pub (public)")


@main.command("sign")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The private key (NAME.key from `mmdg-edge keygen`).")
def sign_command(files, key_path: str) -> None:
    """Sign model files and device profiles (writes FILE.sig beside each).

    A .json file is signed as a device profile, anything else as a model. A detector given the
    public key (`--trusted-key NAME.pub`) then refuses any model or profile this key did not sign.
    """
    from .signing import load_private_key, sign_file

    with _sdk_errors():
        key = load_private_key(key_path)
        for path in files:
            click.echo(str(sign_file(path, key, "profile" if path.endswith(".json") else "model")))


@main.command("doctor")
def doctor_command() -> None:
    """What is installed and usable here (cameras, engines, GPUs), with the fix for each missing piece."""
    from .doctor import run_checks

    for check in run_checks():
        mark = "ok " if check.ok else "-- "
        click.echo(f"{mark} {check.name:<14} {check.detail}")
        if not check.ok and check.fix:
            click.echo(f"    fix: {check.fix}")


@main.command("check")
@click.argument("path")
@click.option("--model", default="demo", show_default=True, help="Model: demo, FILE.onnx, FILE.plan or FILE.safetensors.")
@click.option("--engine", default="auto", show_default=True, type=click.Choice(_engine_choices()), help="Inference engine.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Live threshold (default: device profile, else the model's).")
@click.option("--profile", type=click.Path(exists=True, dir_okay=False), default=None, help="Device profile JSON.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="One table row or one JSON object per frameset.")
def check_command(path: str, model: str, engine: str, threshold, profile, output_format: str) -> None:
    """Verdicts for a recording (.bag/.db3) or a folder of NAME_rgb/NAME_depth/NAME_ir images."""
    import json

    from .detector import Detector
    from .sensors import open_source

    with _sdk_errors():
        detector = Detector.load(model, engine=engine, threshold=threshold, profile=profile)
        with open_source(path) as frames:
            if output_format == "table":
                click.echo(f"{'frame':>6}  {'status':<10}{'score':>7}  reason")
            for frameset in frames:
                verdict = detector.check(frameset)
                if output_format == "json":
                    click.echo(json.dumps(verdict.to_dict()))
                else:
                    score = "-" if verdict.score is None else f"{verdict.score:.3f}"
                    click.echo(f"{str(verdict.frame_number):>6}  {verdict.status:<10}{score:>7}  {verdict.reason}")


@main.command("calibrate")
@click.option("--live", "live_path", required=True, help="Live captures on the target camera: recording or image folder.")
@click.option("--attack", "attack_path", required=True, help="Attack captures on the target camera: recording or image folder.")
@click.option("--target-apcer", default=0.01, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Highest share of attacks allowed through on these captures.")
@click.option("--source", default=None, help="Camera spec the profile is for (serial/firmware); default: the captures' camera.")
@click.option("--model", default="demo", show_default=True, help="Model: demo, FILE.onnx, FILE.plan or FILE.safetensors.")
@click.option("--engine", default="auto", show_default=True, type=click.Choice(_engine_choices()), help="Inference engine.")
@click.option("--band", default=0.05, show_default=True, type=click.FloatRange(0, 0.5, max_open=True),
              help="Uncertainty band around the threshold stored in the profile.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="Device profile JSON to write.")
def calibrate_command(live_path, attack_path, target_apcer, source, model, engine, band, output) -> None:
    """Pick the operating point on your own camera and write a device profile."""
    from .calibration import calibrate_scores, collect_scores, create_profile
    from .detector import Detector, DetectorConfig
    from .sensors import open_source

    with _sdk_errors():
        detector = Detector.load(model, engine=engine, threshold=0.5,
                                 config=DetectorConfig(uncertainty_band=0.0, use_physics=False))
        with open_source(live_path) as frames:
            live, live_skipped, serial, firmware = collect_scores(detector, frames, "live")
        with open_source(attack_path) as frames:
            attack, attack_skipped, attack_serial, _ = collect_scores(detector, frames, "attack")
        if attack_serial != serial:
            raise click.ClickException(f"the live captures come from camera {serial!r} and the attacks from "
                                       f"{attack_serial!r}: calibrate one camera at a time")
        if source is not None:
            with open_source(source) as frames:
                first = next(iter(frames), None)
                if first is None:
                    raise click.ClickException(f"--source {source} gave no frameset")
                serial, firmware = first.serial, str(first.metadata.get("firmware", ""))
        report = calibrate_scores(live, attack, target_apcer, band)
        profile = create_profile(report, camera_serial=serial, camera_firmware=firmware,
                                 model_sha256=detector.engine.model_sha256, model_precision=detector.engine.precision)
    profile.save(output)
    click.echo(f"threshold {report.threshold:.4f} (band ±{band}) for camera {serial!r}")
    for name, rate, skipped in (("APCER", report.apcer, attack_skipped), ("BPCER", report.bpcer, live_skipped)):
        kind = "attack" if name == "APCER" else "live"
        click.echo(f"{name} {rate.value:.4f} (95% CI {rate.lower:.4f}-{rate.upper:.4f}) on {rate.trials} {kind} "
                   f"framesets ({skipped} without a usable face)")
    click.echo(f"profile written to {output}")


def _synthetic_sizes(ctx, param, value):
    """``--synthetic-samples TRAIN,VAL,TEST`` → SyntheticSizes (framesets rendered per split)."""
    from .train.experiment import SyntheticSizes

    if value is None:
        return SyntheticSizes()
    try:
        train, val, test = (int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected three counts TRAIN,VAL,TEST such as 320,96,128, got {value!r}") from None
    if min(train, val, test) < 2:
        raise click.BadParameter(f"every split needs at least 2 framesets, got {value!r}")
    return SyntheticSizes(train, val, test)


_SYNTHETIC_SAMPLES = click.option(
    "--synthetic-samples", "sizes", default=None, callback=_synthetic_sizes, metavar="TRAIN,VAL,TEST",
    help="syn: protocols only: framesets rendered per split (default 320,96,128).")


@main.command("train")
@click.option("--protocol", required=True,
              help="Protocol name: CPS-W, CPW-S, CSW-P, PSW-C, CW-PS, PS-CW, flexmodal-*, or syn:TRAIN-TEST (e.g. syn:012-3).")
@click.option("--data-root", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder the split-list image paths are relative to (not needed for syn: protocols).")
@click.option("--protocols-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of the split lists (default: ../shared/data/protocols beside the checkout).")
@click.option("--config", "config_name", type=click.Choice(["paper", "tiny"]), default="paper", show_default=True,
              help="Model size: the paper's ViT-B/16 or the tiny test/demo model.")
@click.option("--pretrained", default=None, help="CLIP weights for --config paper: 'openai' or a local file.")
@click.option("--epochs", default=80, show_default=True, type=click.IntRange(min=1),
              help="Epochs (default: the nearest published prior, the same group's DADM script; neither paper states it).")
@click.option("--lr", default=5e-5, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Adam learning rate (DADM prior, as --epochs).")
@click.option("--weight-decay", default=5e-5, show_default=True, type=click.FloatRange(min=0),
              help="Adam weight decay (DADM prior, as --epochs).")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1),
              help="Global batch size, split over torchrun processes (DADM prior, as --epochs).")
@click.option("--no-regrad", is_flag=True, help="Switch ReGrad off (ablation).")
@click.option("--no-adp", is_flag=True, help="Switch the asymmetric domain prompts off (ablation; with --no-regrad: plain fine-tuning).")
@click.option("--amp", is_flag=True, help="bfloat16 autocast for forward and losses.")
@click.option("--train-backbone", is_flag=True, help="Train the CLIP backbone too (lets a tiny config learn from scratch).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of initialisation, shuffling and synthetic data.")
@click.option("--workers", default=0, show_default=True, type=click.IntRange(min=0), help="DataLoader worker processes.")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Continue from a run's last.safetensors (its .state.pt beside it).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder (best/last checkpoints, history.json).")
@_SYNTHETIC_SAMPLES
def train_command(protocol, data_root, protocols_dir, config_name, pretrained, epochs, lr, weight_decay, batch_size,
                  no_regrad, no_adp, amp, train_backbone, seed, workers, resume, out_dir, sizes) -> None:
    """Train MMDG++ on a protocol; keeps the best checkpoint by validation HTER. Multi-GPU: run under torchrun."""
    import dataclasses

    from .model import MMDGConfig
    from .train.experiment import run_training
    from .train.trainer import TrainConfig

    with _sdk_errors():
        model_config = MMDGConfig.tiny() if config_name == "tiny" else MMDGConfig.paper(pretrained=pretrained)
        if train_backbone:
            model_config = dataclasses.replace(model_config, train_backbone=True)
        train_config = TrainConfig(epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=batch_size,
                                   regrad=not no_regrad, adp=not no_adp, amp=amp, seed=seed, num_workers=workers)
        result = run_training(protocol, model_config, train_config, out_dir, data_root, protocols_dir, sizes,
                              resume=resume)
    if result["best_checkpoint"] is not None:
        click.echo(f"best validation HTER {result['best_hter']:.4f}: {result['best_checkpoint']}")


@main.command("eval")
@click.argument("checkpoint")
@click.option("--protocol", required=True, help="Protocol whose test split is scored (see `mmdg-edge train --help`).")
@click.option("--data-root", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder the split-list image paths are relative to (not needed for syn: protocols).")
@click.option("--protocols-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of the split lists (default: ../shared/data/protocols beside the checkout).")
@click.option("--test-missing", default=None, help="Modalities absent at test: depth, ir or depth,ir (protocol 2).")
@click.option("--roc", type=click.Path(dir_okay=False), default=None, help="ROC plot PNG to write.")
@click.option("--det", type=click.Path(dir_okay=False), default=None, help="DET plot PNG to write.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the synthetic test data (syn: protocols).")
@_SYNTHETIC_SAMPLES
def eval_command(checkpoint, protocol, data_root, protocols_dir, test_missing, roc, det, seed, sizes) -> None:
    """Score a checkpoint (.safetensors, or 'demo') on a protocol's test split at its stored threshold."""
    from .train.experiment import evaluate_checkpoint

    with _sdk_errors():
        result = evaluate_checkpoint(_resolve_checkpoint(checkpoint), protocol, data_root, protocols_dir,
                                     test_missing, roc, sizes, seed=seed, det_path=det)
    click.echo(f"protocol {result['protocol']}  test samples {result['samples']}"
               + (f"  missing {','.join(result['test_missing'])}" if result["test_missing"] else ""))
    for key in ("hter", "auc", "eer", "tpr_at_fpr_1", "threshold"):
        click.echo(f"{key:<14}{result[key]:.4f}")
    for key in ("apcer", "bpcer"):
        rate = result[key]
        click.echo(f"{key:<14}{rate.value:.4f}  ({rate.errors}/{rate.trials}, 95% CI {rate.lower:.4f}-{rate.upper:.4f})")
    from .train.reporting import format_table

    click.echo(format_table(result["iso"]))
    for kind in ("roc", "det"):
        if kind in result:
            click.echo(f"{kind.upper()} plot: {result[kind]}")
