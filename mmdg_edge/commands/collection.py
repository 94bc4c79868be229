"""Your own camera: collect, forget, calibrate. None of them needs torch."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import click

from .common import echo_json, engine_choices, interrupted, progress, sdk_errors


_STEP_KEYS = {"subject", "species", "instrument", "frames"}


def _check_steps(steps: Any, frames: int, source: str, where: str) -> List[Dict[str, Any]]:
    """Every step complete and valid before anything is recorded: a bad step 7 must not cost six takes."""
    from ..collection import check_labels

    if not isinstance(steps, list) or not steps:
        raise click.BadParameter(f"{where}: expected a JSON list of {{\"subject\", \"species\", \"instrument\"?, "
                                 "\"frames\"?}")
    checked = []
    for number, step in enumerate(steps, start=1):
        try:
            if not isinstance(step, dict) or not {"subject", "species"} <= set(step) or set(step) - _STEP_KEYS:
                raise ValueError(f"expected the keys subject, species and optionally instrument, frames; got "
                                 f"{sorted(step) if isinstance(step, dict) else type(step).__name__}")
            step = {"instrument": "", "frames": frames, **step}
            check_labels(step["subject"], step["species"], step["instrument"])
            if isinstance(step["frames"], bool) or not isinstance(step["frames"], int) or step["frames"] < 1:
                raise ValueError(f"frames: expected an int ≥ 1, got {step['frames']!r}")
            if source == "synthetic":
                from ..sensors.synthetic import presentation

                presentation(step["subject"], step["species"], step["instrument"], step["frames"])
        except ValueError as exc:
            raise click.BadParameter(f"{where}, step {number}: {exc}") from exc
        checked.append(step)
    return checked


def _read_plan(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise click.BadParameter(f"{path}: not a plan ({exc})") from exc


@click.command("collect")
@click.option("--data", "folder", required=True, type=click.Path(file_okay=False),
              help="The collection folder (created on first use): recordings/, manifest.jsonl, splits, cache.")
@click.option("--source", default="realsense", show_default=True,
              help="Camera spec (realsense, realsense:SERIAL), or synthetic to try the whole loop without one.")
@click.option("--subject", default=None, help="The subject's id, never a name (e.g. S001).")
@click.option("--species", default=None,
              help="bona_fide, print, replay, mask, or your own attack species (e.g. silicone_mask).")
@click.option("--instrument", default="", help="Attack instrument id (e.g. print-01); none for bona_fide.")
@click.option("--frames", default=30, show_default=True, type=click.IntRange(min=1), help="Framesets to record.")
@click.option("--plan", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A guided sequence: JSON list of {subject, species, instrument, frames}; each step says what "
                   "to present next.")
@click.option("--yes", "no_prompt", is_flag=True, help="Plans: do not wait for Enter before each capture.")
def collect_command(folder: str, source: str, subject: Optional[str], species: Optional[str], instrument: str,
                    frames: int, plan: Optional[str], no_prompt: bool) -> None:
    """Record one labelled presentation (or a planned sequence) into a collection; one manifest row each.

    Prints each recording's path, and on stderr how many of its framesets show no face; a capture
    where most show none is deleted and refused (exit 1). Recordings are never overwritten (each
    gets the next take number). Ctrl-C stops; what was finished is kept (exit 130).
    """
    from ..collection import capture_crops, collect
    from ..sensors import open_source

    if plan is None and (subject is None or species is None):
        raise click.UsageError("give --subject and --species (and --instrument for an attack), or --plan FILE")
    steps = _check_steps(_read_plan(plan) if plan else [{"subject": subject, "species": species,
                                                          "instrument": instrument, "frames": frames}],
                         frames, source, plan or "collect")
    interactive = plan is not None and not no_prompt and source != "synthetic" and sys.stdin.isatty()
    done = 0
    with sdk_errors():
        try:
            for number, step in enumerate(steps, start=1):
                what = f"subject {step['subject']}, {step['species']}" + (
                    f" with {step['instrument']}" if step["instrument"] else "")
                click.echo(f"[{number}/{len(steps)}] present next: {what}, {step['frames']} framesets", err=True)
                if interactive:
                    click.prompt("press Enter when ready", default="", show_default=False, err=True)
                options = {}
                if source == "synthetic":
                    from ..sensors.synthetic import presentation

                    options = presentation(step["subject"], step["species"], step["instrument"], step["frames"])
                with open_source(source, **options) as camera:
                    capture = collect(camera, folder, step["subject"], step["species"], step["instrument"],
                                      step["frames"], progress=lambda items: progress(items, step["frames"], "frameset"))
                click.echo(str(Path(folder) / capture.file))
                faces = len(capture_crops(folder, capture).images)  # the crops collect cached
                click.echo(f"{capture.file}: {capture.frames - faces} of {capture.frames} framesets without a face",
                           err=True)
                done += 1
        except KeyboardInterrupt:
            interrupted(lambda: click.echo(f"{done} of {len(steps)} captures recorded", err=True))


@click.command("forget")
@click.option("--data", "folder", required=True, type=click.Path(exists=True, file_okay=False),
              help="The collection folder.")
@click.option("--subject", required=True, help="The subject's id whose data goes.")
def forget_command(folder: str, subject: str) -> None:
    """Delete one subject from a collection: recordings, cached crops, manifest rows (and the splits, which name them).

    A model trained on the collection before keeps what it learnt: train it again without the subject.
    """
    from ..collection import forget_subject

    with sdk_errors():
        count = forget_subject(folder, subject)
    click.echo(f"deleted {count} recordings of {subject} from {folder}", err=True)


@click.command("calibrate")
@click.option("--data", "folder", type=click.Path(exists=True, file_okay=False), default=None,
              help="A collection: the threshold is chosen on its validation subjects and reported on its test "
                   "subjects.")
@click.option("--live", "live_paths", multiple=True,
              help="Or: live captures on the target camera, one presentation each (a recording or folder); repeat it.")
@click.option("--attack", "attack_paths", multiple=True,
              help="And attack captures on the target camera, one presentation each; repeat it.")
@click.option("--target-apcer", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Highest share of attack presentations allowed through (needs ln 0.025 / ln(1 − target) attack "
                   "recordings: 72 for 0.05).")
@click.option("--band", default=0.05, show_default=True, type=click.FloatRange(0, 0.5, max_open=True),
              help="Uncertainty band around the threshold: the rates count it as not live.")
@click.option("--source", default=None, help="--live/--attack: camera spec the profile is for (default: the captures').")
@click.option("--seed", "split_seed", default=None, type=int,
              help="--data: seed of the splits (default: the one the model was fine-tuned with, else 0).")
@click.option("--model", default="demo", show_default=True, help="Model file to calibrate: demo, FILE.onnx, FILE.plan, "
                                                                  "FILE.safetensors (the profile binds this file).")
@click.option("--engine", default="auto", show_default=True, type=click.Choice(engine_choices()), help="Inference engine.")
@click.option("--trusted-key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Public key: refuse a model it did not sign.")
@click.option("--precision", type=click.Choice(["fp32", "int8"]), default="fp32", show_default=True,
              help="Which model of a bundle to calibrate.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="Device profile JSON to write.")
@click.option("--force", is_flag=True, help="Replace an existing --output file (else it is refused before any work).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="The report as text or JSON on stdout.")
def calibrate_command(folder, live_paths, attack_paths, target_apcer, band, source, split_seed, model, engine, trusted_key,
                      precision, output, force, output_format) -> None:
    """Pick the operating point for your own camera and write a device profile bound to the model file.

    With --data the threshold is chosen on the collection's validation subjects only and reported
    on its test subjects (never on the data it was fitted to). With --live/--attack it is chosen
    and reported on those captures. Rates count presentations (a recording or folder is one, as
    ISO/IEC 30107-3 counts them), with the frame-level rates beside them.
    """
    from ..detector import Detector, DetectorConfig
    from ..outputs import check_output

    captures = bool(live_paths or attack_paths)
    if folder is not None and (captures or source is not None):
        raise click.UsageError("--data calibrates on the collection: --live, --attack and --source are for captures")
    if folder is None and (not live_paths or not attack_paths):
        raise click.UsageError("give --data FOLDER, or --live and --attack captures")
    with sdk_errors():
        check_output(output, force)
        detector = Detector.load(model, engine=engine, threshold=0.5, trusted_key=trusted_key, precision=precision,
                                 config=DetectorConfig(uncertainty_band=0.0, use_physics=False))
        if folder is not None:
            from ..calibration import calibrate_on_collection

            made, held_out = calibrate_on_collection(detector.engine, folder, target_apcer, band, split_seed)
            report: Dict[str, Any] = {"calibration": made.report.to_dict(), "test_subjects": held_out.to_dict()}
            text = held_out.format_table()
        else:
            made = _calibrate_captures(detector, live_paths, attack_paths, target_apcer, band, source)
            report, text = {"calibration": made.report.to_dict()}, ""
        made.save(output, force)
        shortfall = made.report.shortfall()
        if shortfall:
            click.echo(f"warning: {output}: {shortfall}", err=True)
    if output_format == "json":
        echo_json({"profile": output, **report})
        return
    rates = made.report
    click.echo(f"threshold {rates.threshold:.4f} (band ±{band}) for camera {made.camera_serial!r}")
    of = " of the validation subjects" if folder else ""
    for name, rate, frames in (("APCER", rates.apcer, rates.frame_apcer), ("BPCER", rates.bpcer, rates.frame_bpcer)):
        kind = "attack" if name == "APCER" else "live"
        click.echo(f"{name} {rate.value:.4f} (95% CI {rate.lower:.4f}-{rate.upper:.4f}) on {rate.trials} {kind} "
                   f"presentations{of}; per frameset (not independent) {frames.value:.4f} on {frames.trials}")
    if text:
        click.echo(text)
    click.echo(f"profile written to {output}")


def _calibrate_captures(detector: Any, live_paths: Sequence[str], attack_paths: Sequence[str], target_apcer: float,
                        band: float, source: Optional[str]) -> Any:
    from ..calibration import calibrate_scores, collect_scores, create_profile
    from ..sensors import open_source

    scored: Dict[str, List[List[float]]] = {"live": [], "attack": []}
    cameras: Dict[str, str] = {}
    for label, paths in (("live", live_paths), ("attack", attack_paths)):
        for path in paths:
            with open_source(path) as frames:
                scores, _, serial, firmware = collect_scores(detector, progress(frames, None, "frameset", label), label)
            cameras.setdefault(serial, path)
            if len(cameras) > 1:
                raise ValueError(f"{path} comes from camera {serial!r}, {cameras[next(iter(cameras))]} from "
                                 f"{next(iter(cameras))!r}: calibrate one camera at a time")
            if not scores:
                raise ValueError(f"{path}: no frameset with a usable face, so it cannot count as a {label} presentation")
            scored[label].append(scores)
    if source is not None:
        with open_source(source) as frames:
            first = next(iter(frames), None)
            if first is None:
                raise ValueError(f"--source {source} gave no frameset")
            serial, firmware = first.serial, str(first.metadata.get("firmware", ""))
    report = calibrate_scores(scored["live"], scored["attack"], target_apcer, band)
    return create_profile(report, camera_serial=serial, camera_firmware=firmware,
                          model_sha256=detector.engine.model_sha256, model_precision=detector.engine.precision)
