"""`mmdg-edge live` pieces: headless JSON lines and summary, the window panel, doctor."""
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from mmdg_edge.align import AlignResult
from mmdg_edge.cli import main
from mmdg_edge.detector import Detector
from mmdg_edge.frames import FaceCrops, FaceQuality, FrameSet, Verdict
from mmdg_edge.live import BANNER_HEIGHT, BANNER_LINES, LiveSummary, banner_lines, render_panel, run_headless

BOX = (40.0, 30.0, 120.0, 110.0)


class _FaceOnEvenFrames:
    """A face (a fixed colour crop) on even frame numbers, none on odd ones."""

    def __init__(self):
        quality = FaceQuality(80.0, 0.6, 50.0, 0.9, True)
        self.crops = FaceCrops(np.full((224, 224, 3), 128, np.uint8), None, None, BOX, BOX, quality)

    def align(self, frameset, prior=None):
        if frameset.frame_number % 2:
            return AlignResult("no_face", "no face found")
        return AlignResult("ok", "", self.crops, 1)


def _frames(n):
    for i in range(n):
        noise = np.random.default_rng(i).integers(0, 256, (160, 200, 3), dtype=np.uint8)  # a blank stream is refused
        yield FrameSet(rgb=noise, timestamps_ms={"rgb": 33.0 * i},
                       frame_numbers={"rgb": i}, metadata={"truth": {"label": "live", "attack": None}})


def test_headless_prints_one_json_line_per_frameset_and_summarises(tiny_onnx):
    from mmdg_edge.detector import DetectorConfig
    from mmdg_edge.engines import create_engine

    detector = Detector(create_engine("onnxruntime", tiny_onnx), _FaceOnEvenFrames(), threshold=0.5,
                        config=DetectorConfig(required=("rgb",)))
    out = io.StringIO()
    summary = run_headless(detector, _frames(6), out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["frame_number"] for line in lines] == list(range(6))
    assert [line["status"] for line in lines][1::2] == ["no_face"] * 3
    assert all(line["score"] is not None for line in lines[0::2])
    assert summary.framesets == 6 and summary.verdicts["no_face"] == 3
    assert sum(summary.by_truth["live"].values()) == 6
    assert "framesets: 6" in summary.format_table()


def test_panel_has_three_tiles_a_banner_and_the_verdict_colour():
    frameset = FrameSet(rgb=np.zeros((120, 160, 3), np.uint8), depth=np.full((120, 160), 700, np.uint16))
    panel = render_panel(frameset, Verdict("attack", "model score 0.1 < 0.5", score=0.1, threshold=0.5, box=BOX))
    assert panel.shape == (BANNER_HEIGHT + 240, 3 * 320, 3)
    assert tuple(panel[2, -2]) == (40, 40, 220)  # attack red (BGR) in the banner corner


def test_a_long_reason_is_drawn_whole_on_a_half_size_contact_sheet_tile():
    """The demo's replay verdicts (two vetoes, 149 characters) were cut at 90 characters."""
    import cv2

    reason = ("ATTACK  physical veto: depth relief 1.8 mm < 8 mm: the face is flat (a photo or screen); IR level "
              "0.024 < 0.08: the face reflects no near-infrared (a screen)")
    width = 3 * 424 - 20  # the demo recording's panel, less the margins
    lines = banner_lines(reason, width)
    assert " ".join(lines) == " ".join(reason.split()) and 1 < len(lines) <= BANNER_LINES
    assert all(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0] <= width for line in lines)
    endless = banner_lines("word " * 400, width)
    assert len(endless) == BANNER_LINES and endless[-1].endswith(" ...")
    frameset = FrameSet(rgb=np.zeros((120, 160, 3), np.uint8), depth=np.full((120, 160), 700, np.uint16))
    short, long = (render_panel(frameset, Verdict("attack", text, score=0.1, threshold=0.5))
                   for text in ("model score 0.1 < 0.5", reason))
    assert short.shape == long.shape  # a video's frames keep one size


def test_summary_starts_empty():
    assert LiveSummary().format_table().startswith("framesets: 0")


def test_doctor_lists_every_backend():
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0
    for name in ("opencv", "onnxruntime", "pyrealsense2", "torch", "tensorrt"):
        assert name in result.output


def test_live_with_a_missing_model_fails_cleanly(tmp_path):
    result = CliRunner().invoke(main, ["live", "--source", "synthetic", "--model", str(tmp_path / "nope.onnx"),
                                       "--headless"])
    assert result.exit_code == 1 and "no such file" in result.output


def test_make_demo_path_runs_headless_with_json_lines_a_segment_summary_and_a_contact_sheet(tmp_path):
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(main, ["live", "--source", "demo", "--headless", "--contact-sheet", str(sheet)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["frame_number"] for line in lines] == list(range(36))  # playback keeps the first frameset
    assert sum(line["opened"] for line in lines) == 2  # one door opening per live person, none on the attacks
    assert "framesets: 36" in result.stderr and "sessions are shown as a test" in result.stderr
    rows = [line.split() for line in result.stderr.splitlines() if line.split()[:1] in (["live"], ["print"], ["replay"])
            and "-" in line.split()[1]]
    assert [row[0] for row in rows] == ["live", "print", "replay", "live"] and all(row[-1] == "yes" for row in rows)
    import cv2

    image = cv2.imread(str(sheet))
    # four half-size panels (banner + 240 px high, three 424 px tiles wide), two per row
    assert image is not None and image.shape[:2] == (2 * ((BANNER_HEIGHT + 240) // 2), 2 * 3 * 424 // 2)


def test_segment_summary_by_hand():
    summary = LiveSummary.for_segments([{"kind": "live", "label": "live", "first_frame": 0, "last_frame": 2},
                                        {"kind": "print", "label": "attack", "first_frame": 3, "last_frame": 4}])
    for frame, status, session in [(0, "live", "pending"), (1, "live", "live"), (2, "uncertain", "live"),
                                   (3, "live", "live"), (4, "attack", "live"), (9, "attack", "attack")]:
        summary.add(SimpleNamespace(frameset=None, verdict=Verdict(status, "", frame_number=frame),
                                    session=SimpleNamespace(status=session)))
    live, attack = summary.segments
    assert (live.framesets, live.verdicts["live"], live.session, live.decided_after, live.correct) == (3, 2, "live", 2, True)
    assert (attack.framesets, attack.session, attack.correct) == (2, "live", False)  # a live session on a print
    table = summary.format_table()
    assert "frame 2" in table and table.splitlines()[-1].endswith("NO")


def test_live_options_that_do_not_fit_the_source_or_mode_are_refused(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for args, message in [(["--headless", "--emitter", "off"], "RealSense cameras only"),
                          (["--contact-sheet", "x.png"], "for --headless runs"),
                          ([], "no display to open a window on")]:
        result = CliRunner().invoke(main, ["live", "--source", "demo", *args])
        assert result.exit_code == 2 and message in result.output, result.output


def test_a_vetoed_attack_without_a_score_is_recorded_drawn_printed_and_counted(tmp_path):
    """The demo recording's print (framesets 10-18) is vetoed before the engine: score None everywhere."""
    jsonschema = pytest.importorskip("jsonschema", reason="the dev extra validates records")
    from mmdg_edge.records import load_schema
    from mmdg_edge.sensors import open_source

    out, sheet = io.StringIO(), tmp_path / "sheet.png"
    with open_source("demo") as frames:
        summary = run_headless(Detector.load("demo", engine="onnxruntime"), frames, out, max_frames=14,
                               allow_recorded=True, contact_sheet=str(sheet))
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    for record in records:
        jsonschema.validate(record, load_schema())
    vetoed = records[10:]
    assert all(r["status"] == "attack" and r["score"] is None and r["reason"].startswith("physical veto: the nose")
               for r in vetoed), vetoed
    assert [r["session"] for r in vetoed] == ["pending", "pending", "attack", "attack"]  # 3 attack votes decide
    assert summary.verdicts["attack"] == 4 and sum(summary.verdicts.values()) == 14 and sheet.stat().st_size > 0
    frameset = FrameSet(rgb=np.zeros((120, 160, 3), np.uint8))
    scored, unscored = (render_panel(frameset, Verdict("attack", "physical veto: flat", score=score, threshold=0.5))
                        for score in (0.9, None))
    bar = BANNER_HEIGHT - 18 + 6
    assert (scored[bar, 20] == 255).all() and not (unscored[bar, 20] == 255).all()  # an empty score bar
    printed = CliRunner().invoke(main, ["check", "demo", "--max-frames", "11"]).output.splitlines()
    assert printed[-2].split()[:3] == ["10", "attack", "-"] and "physical veto" in printed[-2]
