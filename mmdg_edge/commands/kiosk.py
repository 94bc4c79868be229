"""Kiosk commands: live, check, record, doctor. None of them imports torch."""
from __future__ import annotations

import json
import logging
import sys
from typing import Optional

import click

from .common import Renamed, echo_json, interrupted, load_detector, model_options, progress, sdk_errors

logger = logging.getLogger(__name__)


@click.command("live")
@click.option("--source", default="demo", show_default=True,
              help="Frame source: demo, realsense, realsense:SERIAL, FILE.bag, FILE.db3, FOLDER or synthetic.")
@model_options
@click.option("--headless", is_flag=True, help="No window: one JSON verdict record per frameset on stdout, a summary "
                                               "on stderr.")
@click.option("--save-video", type=click.Path(dir_okay=False), default=None,
              help="Also write the annotated stream to this video (.mp4, or .avi where mp4 has no encoder).")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after this many framesets.")
@click.option("--emitter", type=click.Choice(["on", "off", "interleaved"]), default=None,
              help="RealSense cameras: IR projector on, off, or interleaved (dotted depth + clean IR; default on).")
@click.option("--segments", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Ground-truth segments JSON of the recording (default for --source demo: its demo_segments.json);"
                   " the summary then shows the session decision per segment.")
@click.option("--contact-sheet", type=click.Path(dir_okay=False), default=None,
              help="Headless: also write a PNG of annotated frames (the last of each segment, or every 10th).")
@click.option("--force", is_flag=True, help="Replace an existing --save-video or --contact-sheet file (else it is "
                                            "refused before any work).")
def live_command(source: str, model: str, engine: str, threshold, profile, trusted_key, precision, headless: bool,
                 save_video, max_frames, emitter, segments, contact_sheet, force: bool) -> None:
    """Camera (or recording) to verdicts: a window with the three modalities, face box, score and verdict.

    A recording, folder or the synthetic camera is shown as a test: its sessions are shown as a
    live camera's would be, although a kiosk never opens a door on one. Ctrl-C stops with the
    summary so far (exit 130).
    """
    import itertools

    from ..live import LiveSummary, VideoFile, has_display, run_headless, run_window
    from ..sensors import load_segments, open_source, parse_source_spec

    if contact_sheet is not None and not headless:
        raise click.BadParameter("--contact-sheet is for --headless runs (the window mode has --save-video)")
    if not headless and not has_display():
        raise click.UsageError("no display to open a window on (DISPLAY is not set): add --headless")
    with sdk_errors():
        detector = load_detector(model, engine, threshold, profile, trusted_key, precision)
        summary = LiveSummary.for_segments(load_segments(segments)) if segments or source == "demo" else LiveSummary()
        options = {}
        if emitter is not None:
            if parse_source_spec(source)[0] != "realsense":
                raise click.BadParameter("--emitter applies to RealSense cameras only")
            from ..sensors.realsense import RealSenseConfig

            options["config"] = RealSenseConfig(emitter=emitter)
        if contact_sheet is not None:
            from ..outputs import check_output

            check_output(contact_sheet, force)
        video = VideoFile(save_video, force=force) if save_video is not None else None
        try:
            with open_source(source, **options) as frames:
                test = not frames.is_realtime
                if test:
                    click.echo(f"{source} is not a live camera: its sessions are shown as a test", err=True)
                if headless:  # max_frames inside: a real-time source keeps its newest-frame pacing
                    run_headless(detector, frames, sys.stdout, max_frames, summary, contact_sheet, test, video,
                                 force=force)
                else:
                    frames = itertools.islice(frames, max_frames) if max_frames else frames
                    run_window(detector, frames, summary=summary, video=video, allow_recorded=test)
        except KeyboardInterrupt:
            interrupted(lambda: click.echo(summary.format_table(), err=True))
        finally:
            if video is not None:
                video.close()
    click.echo(summary.format_table(), err=True)


@click.command("check")
@click.argument("source")
@model_options
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="Stop after this many framesets (an endless source such as synthetic needs it).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="One table row, or one JSON verdict record (verdict.schema.json), per frameset.")
def check_command(source: str, model: str, engine: str, threshold, profile, trusted_key, precision,
                  max_frames: Optional[int], output_format: str) -> None:
    """Verdict of every frameset of a recording, a folder of NAME_rgb/NAME_depth/NAME_ir images, or any source.

    Each frameset is checked on its own (no session). Ctrl-C stops with the counts so far (exit 130).
    """
    import itertools
    from collections import Counter

    from ..records import verdict_record
    from ..sensors import open_source

    counts: Counter = Counter()

    def tally() -> None:
        click.echo("verdicts: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"), err=True)

    with sdk_errors():
        if source == "synthetic" and max_frames is None:
            raise click.BadParameter("the synthetic camera never ends: add --max-frames N")
        try:
            with open_source(source) as frames:  # a missing source is refused before the model is loaded
                detector = load_detector(model, engine, threshold, profile, trusted_key, precision)
                if output_format == "text":
                    click.echo(f"{'frameset':<16}{'status':<11}{'score':>7}  reason")
                for frameset in itertools.islice(frames, max_frames):
                    verdict = detector.check(frameset)
                    logger.debug("frameset %s: %s in %s", verdict.frame_number, verdict.status,
                                 ", ".join(f"{k} {v:.1f} ms" for k, v in verdict.timings_ms.items()))
                    counts[verdict.status] += 1
                    record = verdict_record(verdict, frameset)
                    if output_format == "json":
                        click.echo(json.dumps(record))
                    else:
                        label = record["name"] or str(verdict.frame_number)
                        score = "-" if verdict.score is None else f"{verdict.score:.3f}"
                        click.echo(f"{label:<16}{verdict.status:<11}{score:>7}  {verdict.reason}")
        except KeyboardInterrupt:
            interrupted(tally)
    tally()


@click.command("record")
@click.option("--source", required=True,
              help="Frame source: realsense, realsense:SERIAL, FILE.bag, FILE.db3, FOLDER, synthetic or demo.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="The .db3 recording to write (never "
                                                                                "overwritten).")
@click.option("--max-frames", "--frames", "max_frames", cls=Renamed, type=click.IntRange(min=1), default=None,
              help="Stop after this many framesets (default: until the source ends or Ctrl-C).")
def record_command(source: str, output: str, max_frames) -> None:
    """Record a source (camera, recording, synthetic camera) to a RealSense .db3 file.

    Ctrl-C ends the recording: what was recorded is kept, and the command exits 130.
    """
    import itertools
    from pathlib import Path

    from ..sensors import open_source
    from ..sensors.recorder import record

    if Path(output).exists():
        raise click.ClickException(f"{output} exists; recordings are never overwritten: choose another name")
    stopped = []

    def until_interrupted(frames):
        try:
            yield from frames
        except KeyboardInterrupt:
            stopped.append(True)

    with sdk_errors():
        with open_source(source) as frames:
            frames = itertools.islice(frames, max_frames) if max_frames else frames
            written = record(until_interrupted(progress(frames, max_frames, "frameset")), output)
    click.echo(output)
    click.echo(f"wrote {written} framesets", err=True)
    if stopped:
        interrupted()


@click.command("doctor")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="A line per check, or JSON.")
def doctor_command(output_format: str) -> None:
    """What is installed and usable here (cameras, engines, GPUs), with the fix for each missing piece.

    Exits 1 when something the kiosk path needs (OpenCV with its cascades, onnxruntime) is missing.
    """
    from ..doctor import run_checks

    checks = run_checks()
    if output_format == "json":
        echo_json([{"name": c.name, "ok": c.ok, "required": c.required, "detail": c.detail, "fix": c.fix}
                   for c in checks])
    else:
        for check in checks:
            mark = "ok " if check.ok else ("!! " if check.required else "-- ")
            click.echo(f"{mark} {check.name:<14} {check.detail}")
            if not check.ok and check.fix:
                click.echo(f"    fix: {check.fix}")
    if any(c.required and not c.ok for c in checks):
        sys.exit(1)
