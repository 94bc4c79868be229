"""Collections: one row per recording, the source's origin, splits dealt by tied subject groups, and
collect and forget answering for what they did (faces that are not there, subjects that are not)."""
import hashlib
import json
from dataclasses import asdict

import pytest
from click.testing import CliRunner

from mmdg_edge import sensors
from mmdg_edge.cli import main
from mmdg_edge.collection import Capture, collect, forget_subject, load_manifest, split_collection, tied_groups
from mmdg_edge.sensors.synthetic import Segment, render_sequence

SPLITS = ("train", "val", "test")


def _row(subject, species, instrument, sha256=None):
    name = f"{subject}-{species}-{instrument or 'self'}"
    digest = sha256 or hashlib.sha256(name.encode()).hexdigest()
    return Capture(f"recordings/{name}.db3", digest, subject, species, instrument, "SN", "", 1, "", "0")


def _paired_site():
    """Six subjects; each pair shares one print, one replay phone and one mask."""
    rows = []
    for pair, (a, b) in enumerate((("S1", "S2"), ("S3", "S4"), ("S5", "S6")), start=1):
        for subject in (a, b):
            rows.append(_row(subject, "bona_fide", ""))
            rows += [_row(subject, kind, f"{kind}-{pair}") for kind in ("print", "replay", "mask")]
    return rows


def test_subjects_tied_by_shared_instruments_are_split_together():
    """Issue 21 item 8: subjects were dealt first and instruments followed, so this site could not be
    split ("the val split has ['live'] captures") although a disjoint split exists."""
    rows = _paired_site()
    assert [members for members, _ in tied_groups(rows)] == [["S1", "S2"], ["S3", "S4"], ["S5", "S6"]]
    for seed in range(8):
        splits = split_collection(rows, seed)
        assert sorted(len(splits.subjects[s]) for s in SPLITS) == [2, 2, 2]
        assert sorted(f for s in SPLITS for f in splits.captures[s]) == sorted(c.file for c in rows)  # none left out
        for split in SPLITS:
            held = splits.of(rows, split)
            assert {c.label for c in held} == {"live", "attack"}
            assert {c.subject for c in held} == set(splits.subjects[split])
            assert {c.instrument for c in held if c.is_attack} == set(splits.instruments[split])
        assert len({tuple(splits.subjects[s]) for s in SPLITS}) == 3


def test_when_no_disjoint_split_exists_the_refusal_says_which_instruments_tie_which_subjects():
    rows = _paired_site() + [_row("S2", "print", "print-2"), _row("S4", "mask", "mask-3")]  # the pairs now chain
    with pytest.raises(ValueError, match=r"leaves 1 group\(s\) of subjects for three splits \(mask-1 ties S1, S2; .*"
                                         r"mask-3 ties S4, S5, S6; .*print-2 ties S2, S3, S4; "):
        split_collection(rows, 0)


def _manifest(folder, rows):
    (folder / "recordings").mkdir(parents=True)
    for row in rows:
        (folder / row.file).write_bytes(b"same bytes")
    (folder / "manifest.jsonl").write_text("".join(json.dumps(asdict(r)) + "\n" for r in rows))


def test_one_recording_listed_under_two_subjects_is_refused_and_forget_deletes_nothing(tmp_path):
    """Issue 21 item 7: one file under two subject ids landed in train and a held-out split, and forgetting
    one id deleted the file the other still listed."""
    first = _row("S1", "bona_fide", "")
    second = Capture(first.file, first.sha256, "S2", "bona_fide", "", "SN", "", 1, "", "0")
    _manifest(tmp_path, [first])
    (tmp_path / "manifest.jsonl").write_text((tmp_path / "manifest.jsonl").read_text() + json.dumps(asdict(second)) + "\n")
    with pytest.raises(ValueError, match=r"manifest.jsonl:2: recordings/S1-bona_fide-self.db3 is already listed on "
                                         r"line 1 \(subject S1\)"):
        load_manifest(tmp_path, verify=False)
    with pytest.raises(ValueError, match="already listed on line 1"):
        forget_subject(tmp_path, "S2")
    assert (tmp_path / first.file).read_bytes() == b"same bytes"


def test_one_recording_copied_under_another_name_is_refused(tmp_path):
    digest = "ab" * 32
    _manifest(tmp_path, [_row("S1", "bona_fide", "", digest), _row("S2", "bona_fide", "", digest)])
    with pytest.raises(ValueError, match=r"manifest.jsonl:2: .*S2-bona_fide-self.db3 has the SHA-256 of "
                                         r"recordings/S1-bona_fide-self.db3 on line 1"):
        load_manifest(tmp_path, verify=False)


def test_collect_refuses_a_replayed_recording_and_labels_the_synthetic_camera(tmp_path):
    """Issue 21 items 7 and 10: `collect` filed a replayed recording as a new subject, and the manifest
    did not record where a capture came from."""
    from mmdg_edge.sensors import open_source
    from mmdg_edge.sensors.synthetic import presentation

    folder = tmp_path / "site"
    with open_source("demo") as replayed:
        with pytest.raises(ValueError, match="got a frameset of origin 'recording'"):
            collect(replayed, folder, "S009", "bona_fide", frames=2)
    assert list((folder / "recordings").iterdir()) == [] and not (folder / "manifest.jsonl").exists()
    with open_source("synthetic", **presentation("S001", "bona_fide", "", 2)) as camera:
        capture = collect(camera, folder, "S001", "bona_fide", frames=2)
    assert capture.origin == "synthetic"
    assert json.loads((folder / "manifest.jsonl").read_text())["origin"] == "synthetic"
    assert load_manifest(folder) == [capture]


class _Scripted:
    """A source whose framesets are a scripted sequence: live framesets, then nobody in view."""

    is_realtime = False

    def __init__(self, faces, empty):
        segments = [Segment("live", faces, distance_start_m=0.55)] if faces else []
        self.framesets = render_sequence(segments + ([Segment("empty", empty)] if empty else []), seed=3)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None

    def __iter__(self):
        return iter(self.framesets)


def test_collect_reports_framesets_without_a_face_and_refuses_a_capture_of_mostly_none(tmp_path, monkeypatch):
    scripts, open_file = iter([(5, 1), (2, 4)]), sensors.open_source
    monkeypatch.setattr(sensors, "open_source", lambda spec, **options: _Scripted(*next(scripts))
                        if spec == "realsense" else open_file(spec, **options))  # the camera, not the recordings
    folder = tmp_path / "data"
    first = CliRunner().invoke(main, ["collect", "--data", str(folder), "--subject", "S001", "--species",
                                      "bona_fide", "--frames", "6"])
    assert first.exit_code == 0, first.output
    assert "recordings/S001_bona_fide_01.db3: 1 of 6 framesets without a face" in first.stderr
    second = CliRunner().invoke(main, ["collect", "--data", str(folder), "--subject", "S001", "--species",
                                       "bona_fide", "--frames", "6"])
    assert second.exit_code == 1
    assert "S001_bona_fide_02.db3: 4 of 6 framesets show no face" in second.stderr and "deleted" in second.stderr
    assert [c.file for c in load_manifest(folder)] == ["recordings/S001_bona_fide_01.db3"]
    assert sorted(p.name for p in (folder / "recordings").iterdir()) == ["S001_bona_fide_01.db3"]
    assert len(list((folder / "cache").glob("*.npz"))) == 1  # the refused take's crops went with it


def test_collect_keeps_a_capture_where_most_framesets_show_a_face(tmp_path):
    capture = collect(_Scripted(3, 3), tmp_path, "S001", "bona_fide", frames=6)
    assert capture.frames == 6 and len(load_manifest(tmp_path)) == 1


def test_forget_of_a_subject_the_collection_does_not_hold_fails_and_deletes_nothing(tmp_path):
    folder = tmp_path / "data"
    collect(_Scripted(2, 0), folder, "S001", "bona_fide", frames=2)
    before = (folder / "manifest.jsonl").read_text()
    result = CliRunner().invoke(main, ["forget", "--data", str(folder), "--subject", "S099"])
    assert result.exit_code == 1
    assert "subject 'S099': no recordings of it" in result.stderr and "its subjects: S001" in result.stderr
    assert (folder / "manifest.jsonl").read_text() == before
    assert json.loads(before)["subject"] == "S001"
    assert CliRunner().invoke(main, ["forget", "--data", str(folder), "--subject", "S001"]).exit_code == 0
    assert (folder / "manifest.jsonl").read_text() == "" and not any((folder / "recordings").iterdir())


def test_a_source_that_shows_nobody_is_refused_before_it_reaches_the_manifest(tmp_path):
    with pytest.raises(ValueError, match="2 of 2 framesets show no face"):
        collect(_Scripted(0, 2), tmp_path, "S001", "bona_fide", frames=2)
    assert not (tmp_path / "manifest.jsonl").exists()
