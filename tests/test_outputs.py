"""Outputs never follow a link, never replace a file unasked, and never destroy what they did not write."""
import os

import pytest
from click.testing import CliRunner

from mmdg_edge.cli import main
from mmdg_edge.live import VideoFile
from mmdg_edge.signing import create_key_pair, load_private_key, sign_file

VICTIM = b"an unrelated file the user keeps\n"


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "precious.txt"
    path.write_bytes(VICTIM)
    return path


def test_a_video_of_a_run_that_showed_nothing_leaves_an_existing_file_alone(tmp_path):
    """Issue 21 item 4: `live --save-video FILE` deleted an existing FILE when a mistyped --source showed nothing."""
    video = tmp_path / "kept.avi"
    video.write_bytes(VICTIM)
    result = CliRunner().invoke(main, ["live", "--source", str(tmp_path / "typo.db3"), "--headless",
                                       "--save-video", str(video), "--force"])
    assert result.exit_code == 1 and "typo.db3" in result.output
    assert video.read_bytes() == VICTIM
    result = CliRunner().invoke(main, ["live", "--source", "demo", "--headless", "--max-frames", "2",
                                       "--save-video", str(video)])
    assert result.exit_code == 1 and f"{video} exists" in result.output and "--force" in result.output
    assert video.read_bytes() == VICTIM
    assert sorted(os.listdir(tmp_path)) == ["kept.avi"]  # no temporary file left behind
    VideoFile(str(tmp_path / "never.avi")).close()
    assert sorted(os.listdir(tmp_path)) == ["kept.avi"]


def test_sign_never_writes_through_a_link_nor_over_a_signature_unasked(tmp_path, victim):
    """Issue 21 item 4: `sign` wrote FILE.sig through a planted link and silently replaced signatures."""
    create_key_pair(tmp_path / "k.key", tmp_path / "k.pub")
    key = load_private_key(tmp_path / "k.key")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"model bytes")
    (tmp_path / "model.onnx.sig").symlink_to(victim)
    with pytest.raises(FileExistsError, match=r"model\.onnx\.sig exists \(a symbolic link\).*--force"):
        sign_file(model, key, "model")
    assert victim.read_bytes() == VICTIM
    result = CliRunner().invoke(main, ["sign", str(model), "--key", str(tmp_path / "k.key")])
    assert result.exit_code == 1 and "model.onnx.sig exists" in result.output
    assert victim.read_bytes() == VICTIM
    sign_file(model, key, "model", force=True)  # replaces the link itself, never its target
    assert victim.read_bytes() == VICTIM and not (tmp_path / "model.onnx.sig").is_symlink()
    first = (tmp_path / "model.onnx.sig").read_bytes()
    result = CliRunner().invoke(main, ["sign", str(model), "--key", str(tmp_path / "k.key")])
    assert result.exit_code == 1 and (tmp_path / "model.onnx.sig").read_bytes() == first


def test_a_profile_output_is_checked_before_any_work_and_never_followed(tmp_path, victim):
    """Issue 21 item 4: `calibrate --output` followed links."""
    output = tmp_path / "profile.json"
    output.symlink_to(victim)
    result = CliRunner().invoke(main, ["calibrate", "--live", "synthetic", "--attack", "synthetic",
                                       "--output", str(output)])
    assert result.exit_code == 1 and "profile.json exists (a symbolic link)" in result.output
    assert "engine:" not in result.output  # refused before the model was loaded
    assert victim.read_bytes() == VICTIM


def test_write_output_renames_a_finished_file_into_place(tmp_path, victim):
    from mmdg_edge.outputs import check_output, write_output

    link = tmp_path / "out.json"
    link.symlink_to(victim)
    write_output(link, "{}\n", force=True)
    assert link.read_text() == "{}\n" and not link.is_symlink() and victim.read_bytes() == VICTIM
    assert oct(link.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(FileExistsError, match="is a directory"):
        check_output(tmp_path, force=True)
    assert sorted(os.listdir(tmp_path)) == ["out.json", "precious.txt"]
