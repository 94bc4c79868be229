"""Your own camera, end to end on synthetic subjects: collect → train → eval → calibrate → bundle → load.

One small collection (5 subjects × 4 species, 6 framesets each) is recorded once for the module;
every step runs through the `mmdg-edge` commands as a deployer would.
"""
import json
import shutil
from dataclasses import asdict

import numpy as np
import pytest
from click.testing import CliRunner


from mmdg_edge.cli import main
from mmdg_edge.collection import (
    Capture, capture_crops, collect, forget_subject, load_manifest, load_or_split, split_collection,
)

pytestmark = pytest.mark.slow
# Subjects whose every capture collect accepts (it refuses one whose framesets mostly show no face,
# tests/test_collection.py: the face detector finds none on S007's print).
SUBJECTS = ["S001", "S002", "S003", "S005", "S006"]


def _plan():
    steps = []
    for i, subject in enumerate(SUBJECTS, start=1):
        steps.append({"subject": subject, "species": "bona_fide"})
        steps += [{"subject": subject, "species": kind, "instrument": f"{kind}-{i:02d}"} for kind in ("print", "replay", "mask")]
    return steps


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own") / "data"
    plan = folder.parent / "plan.json"
    plan.write_text(json.dumps(_plan()))
    result = _run("collect", "--data", folder, "--source", "synthetic", "--plan", plan, "--frames", 6)
    assert len(result.stdout.split()) == 20  # one recording path per capture
    return folder


def test_the_manifest_holds_one_verified_row_per_recording(collection):
    captures = load_manifest(collection)
    assert len(captures) == 20 and {c.subject for c in captures} == set(SUBJECTS)
    assert all(c.frames == 6 and c.camera_serial == "SYNTH-1" and len(c.sha256) == 64 for c in captures)
    assert {(c.species, c.instrument) for c in captures if c.subject == "S002"} == {
        ("bona_fide", ""), ("print", "print-02"), ("replay", "replay-02"), ("mask", "mask-02")}


def test_splits_share_no_subject_and_no_instrument(collection):
    captures = load_manifest(collection)
    for seed in range(5):
        splits = split_collection(captures, seed)
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            assert not set(splits.subjects[a]) & set(splits.subjects[b])
            assert not set(splits.instruments[a]) & set(splits.instruments[b])
            got_a = {c.subject for c in splits.of(captures, a)} | {c.instrument for c in splits.of(captures, a)} - {""}
            got_b = {c.subject for c in splits.of(captures, b)} | {c.instrument for c in splits.of(captures, b)} - {""}
            assert not got_a & got_b


def _row(subject, species, instrument):
    return Capture(f"recordings/{subject}-{species}-{instrument}.db3", "0" * 64, subject, species, instrument, "SN", "", 1, "", "0")


def test_an_instrument_shown_by_every_subject_leaves_no_disjoint_split_and_the_refusal_names_it():
    rows = [_row(s, "bona_fide", "") for s in ("S1", "S2", "S3", "S4", "S5")]
    rows += [_row(s, "print", f"print-{s}") for s in ("S1", "S2", "S3", "S4", "S5")]
    rows += [_row(s, kind, "phone-01") for s, kind in (("S1", "replay"), ("S2", "mask"), ("S3", "replay"),
                                                         ("S4", "mask"), ("S5", "replay"))]  # one artefact, any species
    with pytest.raises(ValueError, match=r"1 group\(s\) of subjects for three splits \(phone-01 ties S1, S2, S3, S4, "
                                         r"S5\)"):
        split_collection(rows, 0)


@pytest.mark.parametrize("field, value", [("file", "../victim.db3"), ("file", "/etc/passwd"), ("file", 5),
                                          ("sha256", "*"), ("frames", 0)])
def test_a_manifest_row_that_points_outside_the_collection_is_refused(tmp_path, field, value):
    victim = tmp_path / "victim.db3"
    victim.write_bytes(b"not theirs")
    folder = tmp_path / "data"
    folder.mkdir()
    row = {**asdict(_row("S1", "bona_fide", "")), field: value}
    (folder / "manifest.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=f"manifest.jsonl:1: not a capture row .*{field}"):
        forget_subject(folder, "S1")
    assert victim.read_bytes() == b"not theirs"


def test_a_recording_that_fails_midway_leaves_no_file_and_forget_finishes_what_it_started(tmp_path):
    from mmdg_edge.sensors import open_source
    from mmdg_edge.sensors.synthetic import presentation

    folder = tmp_path / "data"

    def breaks_after_two():
        with open_source("synthetic", **presentation("S001", "bona_fide", "", 6)) as camera:
            for number, frameset in enumerate(camera):
                if number == 2:
                    raise KeyboardInterrupt
                yield frameset

    with pytest.raises(KeyboardInterrupt):
        collect(breaks_after_two(), folder, "S001", "bona_fide", frames=6)
    assert list((folder / "recordings").iterdir()) == []  # the partial video of a person is gone
    with open_source("synthetic", **presentation("S001", "bona_fide", "", 2)) as camera:
        kept = collect(camera, folder, "S001", "bona_fide", frames=2)
    (folder / "recordings" / "S001_bona_fide_07.db3").write_bytes(b"left by a crash")  # no row lists it
    (folder / kept.file).unlink()  # as if an earlier forget stopped after deleting it
    assert forget_subject(folder, "S001") == 1
    assert list((folder / "recordings").iterdir()) == [] and (folder / "manifest.jsonl").read_text() == ""


def test_a_damaged_crop_cache_file_is_rebuilt(collection, tmp_path, caplog):
    copy = tmp_path / "copy"
    shutil.copytree(collection, copy, ignore=shutil.ignore_patterns("cache"))
    capture = load_manifest(copy)[0]
    first = capture_crops(copy, capture)
    cached = next((copy / "cache").glob(f"{capture.sha256}-*.npz"))
    cached.write_bytes(cached.read_bytes()[:100])
    with caplog.at_level("WARNING"):
        again = capture_crops(copy, capture)
    assert "unreadable" in caplog.text and np.array_equal(again.images, first.images)
    assert np.array_equal(capture_crops(copy, capture).images, first.images)  # rewritten whole


def test_splits_need_both_classes_in_every_split():
    rows = [_row(s, "bona_fide", "") for s in ("S1", "S2", "S3")] + [_row("S1", "print", "p1")]
    with pytest.raises(ValueError, match="needs bona fide and attack recordings"):
        split_collection(rows, 0)


def test_the_whole_loop_ends_in_a_bundle_the_kiosk_loads_and_that_refuses_a_changed_model(collection, tmp_path, caplog):
    run = tmp_path / "run"
    best = _run("train", "--data", collection, "--init", "demo", "--epochs", 1, "--batch-size", 8, "--output", run)
    checkpoint = best.stdout.strip()
    assert (collection / "splits.json").is_file()
    assert checkpoint.endswith("best.safetensors")
    assert "crop cache hit" in best.stderr and "crop cache miss" not in best.stderr  # collect cropped every capture

    first = _run("eval", checkpoint, "--data", collection, "--format", "json")
    evaluated = _run("eval", checkpoint, "--data", collection, "--det", tmp_path / "det.png", "--format", "json")
    report = json.loads(evaluated.stdout)
    assert report["iso"] == json.loads(first.stdout)["iso"]  # the cached crops score as the fresh ones
    splits = load_or_split(collection, load_manifest(collection))
    assert report["samples"] == len(splits.captures["test"])  # presentations: the test subjects' recordings
    assert report["framesets"] == 6 * len(splits.captures["test"])  # and their framesets, no more
    assert set(report["iso"]["apcer_per_species"]) == {"print", "replay", "mask"}
    assert {name: r["trials"] for name, r in report["iso"]["apcer_per_species"].items()} == {
        "print": 1, "replay": 1, "mask": 1}  # one recording each: one presentation, however many framesets
    assert report["iso_framesets"]["bpcer"]["trials"] + report["iso_framesets"]["bona_fide_non_response"]["errors"] == 6
    assert "crop cache hit" in evaluated.stderr and "crop cache miss" not in evaluated.stderr  # the second run
    assert (tmp_path / "det.png").stat().st_size > 1000

    _run("keygen", "--output", tmp_path / "kiosk")
    bundle = tmp_path / "bundle"
    _run("bundle", checkpoint, "--data", collection, "--output", bundle, "--target-apcer", "0.75",
         "--key", tmp_path / "kiosk.key")
    index = json.loads((bundle / "bundle.json").read_text())
    held_out = json.loads((bundle / "report.json").read_text())
    assert held_out["fp32"]["test_subjects"]["bpcer"]["trials"] > 0 and index["manifest_sha256"]
    from mmdg_edge import Detector
    from mmdg_edge import BundleError
    from mmdg_edge.digest import file_sha256

    assert index["models"]["int8"]["model"]["sha256"] == file_sha256(bundle / "model.int8.onnx")
    detector = Detector.load(bundle, precision="int8", trusted_key=tmp_path / "kiosk.pub")
    assert detector.profile.model_sha256 == detector.engine.model_sha256 and detector.engine.precision == "int8"
    fp32 = json.loads((bundle / "profile.json").read_text())["report"]["threshold"]
    checked = _run("check", collection / load_manifest(collection)[0].file, "--model", bundle, "--format", "json")
    assert [json.loads(line)["threshold"] for line in checked.stdout.splitlines()] == [pytest.approx(fp32)] * 6

    from mmdg_edge.checkpoint import read_metadata

    captures, trained = load_manifest(collection), read_metadata(checkpoint)["provenance"]["subjects_seen"]["train"]
    other = next(seed for seed in range(1, 50) if set(split_collection(captures, seed).subjects["test"]) & set(trained))
    for command in (["eval", checkpoint], ["bundle", checkpoint, "--output", tmp_path / "leaky"]):
        refused = CliRunner().invoke(main, [str(a) for a in command + ["--data", collection, "--seed", other]])
        assert refused.exit_code == 1 and "which the model saw in its train split" in refused.output, refused.output
    assert not (tmp_path / "leaky").exists()

    changed = tmp_path / "changed"
    shutil.copytree(bundle, changed)
    data = bytearray((changed / "model.onnx").read_bytes())
    data[-1] ^= 1
    (changed / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="modified after it was bundled"):
        Detector.load(changed)


def test_a_bundle_that_cannot_be_made_leaves_nothing_behind(collection, tmp_path):
    from mmdg_edge.assets import DEMO_CHECKPOINT
    from mmdg_edge.train.bundle import create_bundle

    with pytest.raises(ValueError, match="at least 368 are needed"):
        create_bundle(DEMO_CHECKPOINT, collection, tmp_path / "bundle", target_apcer=0.01)
    assert not (tmp_path / "bundle").exists()  # so the next try, with a reachable target, can write it


def test_a_target_the_validation_attacks_cannot_show_is_refused_before_the_export(collection, tmp_path, monkeypatch):
    from mmdg_edge.assets import DEMO_CHECKPOINT
    from mmdg_edge.train import bundle as bundling

    monkeypatch.setattr(bundling, "export_onnx", lambda *args, **kwargs: pytest.fail("exported before refusing"))
    with pytest.raises(ValueError) as refused:
        bundling.create_bundle(DEMO_CHECKPOINT, collection, tmp_path / "bundle", target_apcer=0.05)
    splits = load_or_split(collection, load_manifest(collection))
    recorded = sum(1 for f in splits.captures["val"] if "bona_fide" not in f)
    assert str(refused.value).startswith(f"{recorded} attack presentations (recordings) of the validation subjects "
                                         "cannot show an APCER of 5.00%")
    assert f"{recorded} can show {1 - 0.025 ** (1 / recorded):.1%} at best" in str(refused.value)
    assert not (tmp_path / "bundle").exists()


def test_calibrate_chooses_on_validation_subjects_and_reports_on_test_subjects(collection, tmp_path):
    result = _run("calibrate", "--data", collection, "--target-apcer", "0.75", "--output", tmp_path / "p.json",
                  "--format", "json")
    report = json.loads(result.stdout)
    splits = load_or_split(collection, load_manifest(collection))
    val_attacks = sum(1 for f in splits.captures["val"] if "bona_fide" not in f)
    assert report["calibration"]["apcer"]["trials"] == val_attacks  # recordings (presentations), not framesets
    assert report["calibration"]["frame_apcer"]["trials"] <= 6 * val_attacks
    assert report["test_subjects"]["bpcer"]["trials"] + report["test_subjects"]["non_response"]["errors"] >= 1
    few = CliRunner().invoke(main, ["calibrate", "--data", str(collection), "--target-apcer", "0.01", "--output",
                                    str(tmp_path / "q.json")])
    assert few.exit_code == 1 and "at least 368 are needed" in few.output and not (tmp_path / "q.json").exists()


def test_collect_refuses_names_bad_labels_and_never_overwrites(collection, tmp_path):
    with pytest.raises(ValueError, match="looks like a name"):
        collect([], tmp_path, "Jane_Doe", "bona_fide")
    with pytest.raises(ValueError, match="attacks need one"):
        collect([], tmp_path, "S001", "print")
    again = _run("collect", "--data", collection, "--source", "synthetic", "--subject", "S001", "--species",
                 "bona_fide", "--frames", 2)
    assert again.stdout.strip().endswith("S001_bona_fide_02.db3")  # the next take, the first one untouched
    assert len(load_manifest(collection)) == 21


@pytest.mark.parametrize("bad_step", [{"subject": 1, "species": "bona_fide"}, {"subject": "S002", "species": "print"},
                                      {"subject": "S002", "species": "bona_fide", "frame": 2},
                                      {"subject": "S002", "species": "bona_fide", "frames": "2"}, "S002"])
def test_a_plan_is_checked_whole_before_anything_is_recorded(tmp_path, bad_step):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"subject": "S001", "species": "bona_fide"}, bad_step]))
    result = CliRunner().invoke(main, ["collect", "--data", str(tmp_path / "data"), "--source", "synthetic", "--plan",
                                       str(plan), "--frames", "2"])
    assert result.exit_code == 2 and "step 2" in result.output and not (tmp_path / "data").exists(), result.output


def test_forget_deletes_a_subjects_recordings_cache_and_rows(collection, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(collection, copy)
    files = [c.file for c in load_manifest(copy) if c.subject == "S003"]
    _run("forget", "--data", copy, "--subject", "S003")
    assert all(not (copy / f).exists() for f in files)
    assert "S003" not in {c.subject for c in load_manifest(copy)}
    assert not any("S003" in line for line in (copy / "manifest.jsonl").read_text().splitlines())
    hashes = {json.loads(line)["sha256"] for line in (collection / "manifest.jsonl").read_text().splitlines()
              if json.loads(line)["subject"] == "S003"}
    assert not any(p.name.split("-")[0] in hashes for p in (copy / "cache").glob("*.npz"))
    assert np.all([c.subject != "S003" for c in load_manifest(copy)])


@pytest.mark.parametrize("command, option", [("train", ["--resume", "{file}"]), ("train", ["--pretrained", "openai"]),
                                             ("train", ["--train-backbone"]), ("eval", ["--roc", "roc.png"]),
                                             ("eval", ["--test-missing", "ir"])])
def test_protocol_only_options_are_refused_with_a_collection_not_ignored(tmp_path, command, option):
    (tmp_path / "last.safetensors").write_bytes(b"")
    args = [a.format(file=tmp_path / "last.safetensors") for a in option]
    target = ["--output", tmp_path / "run"] if command == "train" else []
    result = CliRunner().invoke(main, [command] + ([] if command == "train" else ["demo"]) + ["--data", str(tmp_path)]
                                + args + [str(a) for a in target])
    assert result.exit_code == 2 and f"{option[0]}: for --protocol runs only" in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_train_on_a_collection_picks_the_schedule_of_the_model_it_starts_from(tmp_path, monkeypatch, tiny_model):
    """The demo model (trained from scratch) fine-tunes at lr 1e-3 for 3 epochs; a frozen-CLIP checkpoint
    keeps the DADM priors; an explicit --epochs/--lr wins."""
    from mmdg_edge.checkpoint import save_checkpoint
    from mmdg_edge.train import finetune

    used = []
    monkeypatch.setattr(finetune, "finetune_on_collection", lambda folder, init, config, out, seed: used.append(config)
                        or {"best_checkpoint": str(out), "best_hter": 0.0})
    frozen = save_checkpoint(tmp_path / "frozen.safetensors", tiny_model)
    assert not tiny_model.config.train_backbone
    demo = _run("train", "--data", tmp_path, "--output", tmp_path / "a")
    _run("train", "--data", tmp_path, "--init", frozen, "--output", tmp_path / "b")
    _run("train", "--data", tmp_path, "--epochs", 5, "--output", tmp_path / "c")
    assert [(c.epochs, c.lr) for c in used] == [(3, 1e-3), (80, 5e-5), (5, 1e-3)]
    assert "3 epochs at lr 0.001" in demo.stderr
