"""collect and forget answer for what they did: faces that are not there, subjects that are not there."""
import json

import pytest
from click.testing import CliRunner

from mmdg_edge import sensors
from mmdg_edge.cli import main
from mmdg_edge.collection import collect, load_manifest
from mmdg_edge.sensors.synthetic import Segment, render_sequence


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
