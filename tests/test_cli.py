"""The command line as a new user meets it (issue #16): exit codes, streams, messages and the verdict schema.

Most tests run `mmdg-edge` as a subprocess, as a user or a service would: stdout carries results,
stderr logs and progress, exit codes are 0 done, 1 failed, 2 bad usage, 130 interrupted.
"""
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli_run import EXE, cli as _cli
from mmdg_edge.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[1]


def _streamed(source, count):
    """(verdict, session) of the first ``count`` framesets of ``source`` through the demo detector's stream,
    as `live --headless` shows a test source."""
    from itertools import islice

    from mmdg_edge.detector import Detector
    from mmdg_edge.sensors import open_source

    with open_source(source) as frames:
        stream = Detector.load("demo").stream(frames, allow_recorded=True)
        return [(r.verdict.status, r.session.status) for r in islice(stream, count)]


def _folder(path, count, classes=("live",), seed=1, blank=False):
    from mmdg_edge.sensors.synthetic import SyntheticCamera

    path.mkdir()
    for i, fs in enumerate(SyntheticCamera(seed=seed, classes=classes, domains=(1,), num_frames=count)):
        rgb = np.zeros_like(fs.rgb) if blank else fs.rgb
        cv2.imwrite(str(path / f"face{i:02d}_rgb.png"), rgb[..., ::-1])
        cv2.imwrite(str(path / f"face{i:02d}_depth.png"), fs.depth)
        cv2.imwrite(str(path / f"face{i:02d}_ir.png"), np.zeros_like(fs.ir) if blank else fs.ir)
    return path


# Tracebacks instead of messages.
@pytest.mark.parametrize("args", [["export", "demo", "--output", "x.onnx"],
                                  ["train", "--protocol", "syn:0-1", "--output", "run"],
                                  ["eval", "demo", "--protocol", "syn:0-1"]], ids=lambda a: a[0])
def test_torch_commands_without_torch_say_what_to_install(args, tmp_path):
    result = _cli(*args, block=("torch", "open_clip"), cwd=tmp_path)
    assert result.returncode == 1 and 'pip install "mmdg-edge[train]"' in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_bench_in_a_kiosk_install_times_onnxruntime_and_names_what_it_skipped(tmp_path):
    kiosk = ("torch", "open_clip", "onnx", "onnxscript")  # what `pip install -e .` leaves out
    result = _cli("bench", "--batch", 1, "--iterations", 1, "--warmup", 0, "--format", "json", block=kiosk, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)
    assert [(r["engine"], r["baseline"], r["speedup"]) for r in rows] == [("onnxruntime", "onnxruntime", 1.0)]
    assert rows[0]["config"] == "tiny" and "tiny is timed on the demo model" in result.stderr
    assert 'skipped torch eager: torch is not installed (pip install "mmdg-edge[torch]")' in result.stderr
    assert "skipped onnxruntime int8: quantising needs the onnx package" in result.stderr
    paper = _cli("bench", "--checkpoint", "paper", block=kiosk, cwd=tmp_path)
    assert paper.returncode == 1 and "without torch, bench an ONNX file" in paper.stderr
    assert "Traceback" not in paper.stderr


def test_clip_weights_that_cannot_be_loaded_name_the_local_file_fix(tmp_path):
    from mmdg_edge.errors import CheckpointError
    from mmdg_edge.model import MMDGConfig, create_model

    with pytest.raises(CheckpointError, match="pass a local file of those weights"):
        create_model(MMDGConfig.paper(str(tmp_path / "ViT-B-16.pt")))


def test_window_mode_without_a_display_asks_for_headless():
    result = _cli("live", "--source", "demo", env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert result.returncode == 2 and "--headless" in result.stderr and "Traceback" not in result.stderr


def test_a_saved_video_holds_the_frames_and_an_empty_one_is_not_left_behind(tmp_path):
    video = tmp_path / "demo.avi"
    result = _cli("live", "--source", "demo", "--headless", "--max-frames", 5, "--save-video", video)
    assert result.returncode == 0, result.stderr
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5 and capture.read()[0]
    from mmdg_edge.live import VideoFile

    empty = VideoFile(str(tmp_path / "none.mp4"))
    empty.close()
    assert not (tmp_path / "none.mp4").exists()


# Exit codes and streams.
def test_a_data_problem_found_while_working_is_exit_1_not_a_usage_error(tmp_path):
    live = _folder(tmp_path / "live", 3)
    no_faces = _folder(tmp_path / "attack", 3, classes=("print",), seed=2, blank=True)
    result = _cli("calibrate", "--live", live, "--attack", no_faces, "--target-apcer", "0.5", "--output",
                  tmp_path / "p.json")
    assert result.returncode == 1 and "no frameset with a usable face" in result.stderr
    assert "Usage:" not in result.stderr and not (tmp_path / "p.json").exists()


def test_a_corrupt_recording_is_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.db3"
    bad.write_bytes(b"not a recording" * 10)
    result = _cli("check", bad)
    assert result.returncode == 1 and "bad.db3" in result.stderr and "Traceback" not in result.stderr


def _with_ctrl_c():
    """Give the command Ctrl-C's default disposition: a shell that starts the test run in the
    background (``make test &``) has its children ignore SIGINT, and Python then never raises
    KeyboardInterrupt (what an ignored signal should mean to a command)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(args, signum, tmp_path):
    process = subprocess.Popen([EXE, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path, preexec_fn=_with_ctrl_c)
    first = process.stdout.readline()  # work has begun
    time.sleep(0.3)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    return process.returncode, first + out, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupting_live_prints_the_summary_so_far_and_exits_130(signum, tmp_path):
    code, out, err = _interrupt(["live", "--source", "synthetic", "--headless"], signum, tmp_path)
    assert code == 130 and "framesets:" in err and "interrupted" in err, err[-2000:]
    records = [json.loads(line) for line in out.splitlines()]
    assert records and [(r["status"], r["session"]) for r in records] == _streamed("synthetic", len(records))


def test_interrupting_any_other_command_exits_130_too(tmp_path):
    """Commands without a summary of their own (train, eval, bundle, export, bench, forget, ...)."""
    process = subprocess.Popen([EXE, "bench", "--checkpoint", "paper", "--iterations", "50"], stderr=subprocess.PIPE,
                               text=True, cwd=tmp_path)
    time.sleep(8)  # importing torch and building the model
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "interrupted" in err and "Aborted" not in err, err[-2000:]


def test_interrupting_check_and_record_exit_130_with_what_they_did(tmp_path):
    code, _, err = _interrupt(["check", "synthetic", "--max-frames", 100000, "--format", "json"], signal.SIGINT, tmp_path)
    assert code == 130 and "verdicts:" in err
    process = subprocess.Popen([EXE, "record", "--source", "synthetic", "--output", "take.db3"], stderr=subprocess.PIPE,
                               text=True, cwd=tmp_path, preexec_fn=_with_ctrl_c)
    time.sleep(8)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    written = int(re.search(r"wrote (\d+) framesets", err).group(1))
    assert process.returncode == 130 and written > 0 and (tmp_path / "take.db3").stat().st_size > 0


def test_doctor_exits_1_when_the_kiosk_path_lacks_a_piece_and_names_the_fixes():
    fine = _cli("doctor", "--format", "json")
    checks = {c["name"]: c for c in json.loads(fine.stdout)}
    assert fine.returncode == 0 and checks["onnxruntime"]["ok"] and checks["onnxruntime"]["required"]
    missing = _cli("doctor", block=("onnxruntime",))
    assert missing.returncode == 1 and "!!  onnxruntime" in missing.stdout and "pip install onnxruntime" in missing.stdout
    text = _cli("doctor").stdout
    if "no camera connected" in text:
        assert "fix: plug a D4xx camera" in text


def test_results_on_stdout_logs_and_the_engine_choice_as_json_on_stderr(tmp_path):
    result = _cli("check", REPO / "mmdg_edge" / "assets" / "demo.db3", "--max-frames", 2, "--format", "json")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 2
    engine = json.loads(next(line for line in result.stderr.splitlines() if line.startswith("engine: "))[8:])
    assert engine["engine"] == "onnxruntime" and "CPUExecutionProvider" in engine["reason"]


# Logging.
def test_log_level_and_verbosity_control_what_reaches_stderr():
    default = _cli("check", "synthetic", "--max-frames", 1)
    quiet = _cli("--log-level", "warning", "check", "synthetic", "--max-frames", 1)
    verbose = _cli("-v", "check", "synthetic", "--max-frames", 1)
    assert "INFO mmdg_edge.engines: auto engine" in default.stderr
    assert "INFO" not in quiet.stderr and "DEBUG" in verbose.stderr


def test_export_and_a_contact_sheet_refuse_an_existing_file_unless_forced(tmp_path, monkeypatch):
    """record and keygen refused to overwrite; export and live --contact-sheet overwrote silently."""
    import mmdg_edge.engines.export as export

    monkeypatch.setattr(export, "export_onnx", lambda checkpoint, output, **k: Path(output).write_bytes(b"new"))
    model, sheet = tmp_path / "m.onnx", tmp_path / "sheet.png"
    model.write_bytes(b"old")
    sheet.write_bytes(b"old")
    refused = CliRunner().invoke(main, ["export", "demo", "--output", str(model)])
    assert refused.exit_code == 1 and f"{model} exists" in refused.output and model.read_bytes() == b"old"
    forced = CliRunner().invoke(main, ["export", "demo", "--output", str(model), "--force"])
    assert forced.exit_code == 0 and forced.stdout.strip() == str(model) and model.read_bytes() == b"new"
    kept = CliRunner().invoke(main, ["live", "--source", "demo", "--headless", "--max-frames", "2", "--contact-sheet",
                                     str(sheet)])
    assert kept.exit_code == 1 and f"{sheet} exists" in kept.output and kept.stdout == ""  # refused before any work
    assert sheet.read_bytes() == b"old"
    replaced = CliRunner().invoke(main, ["live", "--source", "demo", "--headless", "--max-frames", "2",
                                         "--contact-sheet", str(sheet), "--force"])
    assert replaced.exit_code == 0 and cv2.imread(str(sheet)) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "sheet.png"]  # no temporary file left


def test_export_of_a_trained_checkpoint_does_not_warn_about_random_weights(tmp_path, tiny_checkpoint):
    result = _cli("export", tiny_checkpoint, "--output", tmp_path / "m.onnx")
    assert result.returncode == 0 and result.stdout.strip() == str(tmp_path / "m.onnx")
    assert "No pretrained weights loaded" not in result.stderr


# One shape per answer.
def test_check_and_live_print_records_of_the_shipped_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from mmdg_edge.records import load_schema

    schema = load_schema()
    checked = _cli("check", _folder(tmp_path / "faces", 2), "--format", "json")
    live = _cli("live", "--source", "demo", "--headless", "--max-frames", 6)
    records = [json.loads(line) for line in checked.stdout.splitlines() + live.stdout.splitlines()]
    assert len(records) == 8
    for record in records:
        jsonschema.validate(record, schema)
    assert [r["name"] for r in records[:2]] == ["face00", "face01"] and records[0]["session"] is None
    assert [(r["status"], r["session"]) for r in records[2:]] == _streamed("demo", 6)
    assert records[2]["session"] == "pending" and records[2]["skipped"] == 0  # one verdict opens no session
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**records[0], "frame": 0}, schema)  # the old live field is not part of it


def test_bench_calibrate_and_doctor_answer_in_json(monkeypatch, tmp_path):
    import mmdg_edge.engines.benchmark as benchmark

    row = benchmark.BenchRow("tiny", "onnxruntime", "fp32", "cpu", 1, 1.0, 2.0, 3.0, 1.5, 0.0, 1.0)
    monkeypatch.setattr(benchmark, "run_benchmark", lambda *a, **k: [row])
    result = CliRunner().invoke(main, ["bench", "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["device"] == "cpu"
    assert "config: tiny (random init)" in result.stderr  # says which model size the figures are for


# Consistent flags.
@pytest.mark.parametrize("old,new", [(["export", "--checkpoint", "demo"], ["export", "demo"]),
                                     (["record", "--frames", "2"], ["record", "--max-frames", "2"])])
def test_old_spellings_still_work_hidden_for_one_release(old, new, tmp_path, monkeypatch):
    import mmdg_edge.engines.export as export

    monkeypatch.setattr(export, "export_onnx", lambda checkpoint, output, **k: output)
    for number, args in enumerate((old, new)):
        extra = ["--output", str(tmp_path / f"{number}.{'onnx' if args[0] == 'export' else 'db3'}")]
        extra += ["--source", "synthetic"] if args[0] == "record" else []
        result = CliRunner().invoke(main, [*args, *extra])
        assert result.exit_code == 0, result.output
    help_text = CliRunner().invoke(main, [old[0], "--help"]).output
    assert old[1] not in help_text.replace(new[1], "")


def test_every_format_option_offers_text_and_json_with_text_by_default():
    formats = {name: param for name in COMMANDS for param in main.get_command(None, name).params
               if "--format" in param.opts}
    assert {"check", "calibrate", "doctor", "bench", "eval"} <= set(formats)
    assert all(list(p.type.choices) == ["text", "json"] and p.default == "text" for p in formats.values())


def test_train_takes_output_and_model_size_with_the_old_spellings_hidden():
    help_text = CliRunner().invoke(main, ["train", "--help"]).output
    assert "--output" in help_text and "--model-size" in help_text
    assert "--out " not in help_text and "--config" not in help_text


# Progress.
def test_long_work_shows_a_kept_progress_bar_on_stderr(tmp_path):
    result = _cli("record", "--source", "synthetic", "--output", tmp_path / "r.db3", "--max-frames", 5)
    assert result.returncode == 0 and "5/5" in result.stderr and result.stdout.strip() == str(tmp_path / "r.db3")


# Smaller traps.
def test_check_names_image_files_refuses_missing_paths_and_endless_sources(tmp_path):
    table = _cli("check", _folder(tmp_path / "faces", 2))
    assert [line.split()[0] for line in table.stdout.splitlines()[1:]] == ["face00", "face01"]
    mistyped = _cli("check", "/mistyped/folder")
    assert mistyped.returncode == 1 and "no such file or folder: /mistyped/folder" in mistyped.stderr
    endless = _cli("check", "synthetic")
    assert endless.returncode == 2 and "--max-frames" in endless.stderr


def test_small_things_a_user_meets(tmp_path):
    """Issue 21 item 10: upper-case log levels, the model loaded before a missing source was found, and
    `bench_engines.py --iterations 5` (as its help reads) dying with a traceback."""
    import importlib.util

    assert CliRunner().invoke(main, ["--log-level", "INFO", "doctor", "--help"]).exit_code == 0
    mistyped = CliRunner().invoke(main, ["check", str(tmp_path / "nope.db3"), "--model", str(tmp_path / "none.onnx")])
    assert mistyped.exit_code == 1 and "nope.db3" in mistyped.output and "none.onnx" not in mistyped.output
    spec = importlib.util.spec_from_file_location("bench_engines", REPO / "benchmarks" / "bench_engines.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.parse_iterations("5") == {bench.ANY_CONFIG: 5}
    assert bench.parse_iterations("tiny=10,paper=5") == {"tiny": 10, "paper": 5}
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_engines.py"), "--iterations", "five"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "expected N or CONFIG=N" in result.stderr and "Traceback" not in result.stderr


def test_record_never_overwrites(tmp_path):
    taken = tmp_path / "taken.db3"
    taken.write_bytes(b"keep me")
    result = _cli("record", "--source", "synthetic", "--output", taken, "--max-frames", 2)
    assert result.returncode == 1 and "never overwritten" in result.stderr and taken.read_bytes() == b"keep me"


def test_calibration_refuses_mixed_labels_and_too_few_attacks():
    from mmdg_edge.calibration import calibrate_scores, collect_scores
    from mmdg_edge.detector import Detector, DetectorConfig
    from mmdg_edge.sensors.synthetic import SyntheticCamera

    with pytest.raises(ValueError, match="vetoes decide before the engine"):  # vetoed attacks would go missing
        collect_scores(Detector.load("demo"), SyntheticCamera(seed=3, num_frames=6), "attack")
    model_alone = Detector.load("demo", config=DetectorConfig(use_physics=False))
    with pytest.raises(ValueError, match="labelled 'attack'"):
        collect_scores(model_alone, SyntheticCamera(seed=3, num_frames=6), "live")
    with pytest.raises(ValueError, match="at least 368"):
        calibrate_scores([0.9] * 20, [0.1] * 20, 0.01)


def test_calibrate_refuses_a_collection_mixed_with_captures(tmp_path):
    result = CliRunner().invoke(main, ["calibrate", "--data", str(tmp_path), "--live", str(tmp_path), "--output",
                                       str(tmp_path / "p.json")])
    assert result.exit_code == 2 and "--data calibrates on the collection" in result.output


def test_eval_refuses_a_one_class_split_before_scoring(monkeypatch, tiny_checkpoint):
    import mmdg_edge.train.experiment as experiment
    from mmdg_edge.train.data import CropDataset

    only_live = CropDataset(np.zeros((2, 3, 224, 224, 3), np.uint8), np.ones((2, 3), bool), np.ones(2), np.zeros(2))
    monkeypatch.setattr(experiment, "load_datasets", lambda *a, **k: {"test": only_live})
    monkeypatch.setattr("mmdg_edge.train.trainer.predict", lambda *a, **k: pytest.fail("scored a one-class split"))
    result = CliRunner().invoke(main, ["eval", str(tiny_checkpoint), "--protocol", "syn:0-1"])
    assert result.exit_code == 1 and "holds only live samples" in result.output


def test_resuming_a_copied_run_finds_the_copy_s_own_best_checkpoint(tmp_path):
    import shutil

    from mmdg_edge.model import MMDGConfig
    from mmdg_edge.train.experiment import SyntheticSizes, run_training
    from mmdg_edge.train.trainer import TrainConfig

    config = TrainConfig(epochs=1, batch_size=8, lr=1e-3)
    run_training("syn:0-1", MMDGConfig.tiny(), config, tmp_path / "run", sizes=SyntheticSizes(16, 12, 12))
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    shutil.rmtree(tmp_path / "run")
    result = run_training("syn:0-1", MMDGConfig.tiny(), TrainConfig(epochs=2, batch_size=8, lr=1e-3), tmp_path / "copy",
                          sizes=SyntheticSizes(16, 12, 12), resume=tmp_path / "copy" / "last.safetensors")
    assert Path(result["best_checkpoint"]).parent == tmp_path / "copy"


def test_a_corrupt_trainer_state_is_one_line_not_a_traceback(tmp_path, tiny_checkpoint):
    import shutil

    shutil.copyfile(tiny_checkpoint, tmp_path / "last.safetensors")
    (tmp_path / "last.state.pt").write_bytes(np.random.default_rng(0).bytes(200))
    result = _cli("train", "--protocol", "syn:0-1", "--model-size", "tiny", "--epochs", "2", "--resume",
                  tmp_path / "last.safetensors", "--output", tmp_path)
    assert result.returncode == 1 and "not a trainer state file" in result.stderr
    assert "Traceback" not in result.stderr and "weights_only" not in result.stderr


def test_outside_a_checkout_the_split_lists_must_be_given(monkeypatch, tmp_path):
    import mmdg_edge.train.experiment as experiment

    monkeypatch.setattr(experiment, "__file__", str(tmp_path / "site-packages" / "mmdg_edge" / "train" / "experiment.py"))
    with pytest.raises(FileNotFoundError, match="--protocols-dir"):
        experiment.default_protocols_dir()


# The README's command table is what --help says.
def test_the_readme_command_table_matches_the_commands_and_their_options():
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `mmdg-edge (\w+)([^`]*)` \|", table, flags=re.M)
    assert sorted(name for name, _ in rows) == sorted(COMMANDS)
    for name, usage in rows:
        command = main.get_command(None, name)
        options = {opt for param in command.params if not getattr(param, "hidden", False) for opt in param.opts}
        for option in re.findall(r"--[\w-]+", usage):
            assert option in options, (name, option)
