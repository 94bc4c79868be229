"""Image-triplet folders as framesets, through ImageFolderSource and open_source(FOLDER)."""
import cv2
import numpy as np
import pytest

from mmdg_edge.errors import SourceError
from mmdg_edge.sensors import open_source
from mmdg_edge.sensors.images import ImageFolderSource, find_triplets


def _write_triplet(folder, name, with_ir=True):
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB order
    cv2.imwrite(str(folder / f"{name}_rgb.png"), rgb[..., ::-1])
    cv2.imwrite(str(folder / f"{name}_depth.png"), np.full((48, 64), 612, np.uint16))
    if with_ir:
        cv2.imwrite(str(folder / f"{name}_ir.png"), np.full((48, 64), 90, np.uint8))


def test_triplets_load_with_their_pixel_values(tmp_path):
    _write_triplet(tmp_path, "b")
    _write_triplet(tmp_path, "a", with_ir=False)
    (tmp_path / "notes.txt").write_text("ignored")
    assert list(find_triplets(tmp_path)) == ["a", "b"]
    first, second = ImageFolderSource(tmp_path)
    assert first.ir is None and first.metadata["name"] == "a" and first.frame_number == 0
    assert second.rgb[0, 0].tolist() == [200, 0, 0]
    assert second.depth.dtype == np.uint16 and second.depth[0, 0] == 612
    assert second.ir[0, 0] == 90 and second.color_aligned_to_depth


def test_open_source_reads_a_folder_as_an_image_source_in_name_order(tmp_path):
    for name in ("b", "c", "a"):
        _write_triplet(tmp_path, name, with_ir=name != "c")
    with open_source(str(tmp_path)) as source:
        assert isinstance(source, ImageFolderSource) and source.is_realtime is False
        framesets = list(source)
    assert [fs.metadata["name"] for fs in framesets] == ["a", "b", "c"]
    assert [fs.frame_number for fs in framesets] == [0, 1, 2]
    assert framesets[2].frame_numbers == {"rgb": 2, "depth": 2}  # c has no IR
    assert all(fs.origin == "images" and fs.received_s is None for fs in framesets)
    assert framesets[0].depth[0, 0] == 612 and framesets[0].rgb[0, 0].tolist() == [200, 0, 0]
    assert [fs.metadata["name"] for fs in ImageFolderSource(tmp_path)] == ["a", "b", "c"]


def test_a_folder_without_triplets_is_refused_when_opened(tmp_path):
    (tmp_path / "notes.txt").write_text("no images")
    with pytest.raises(SourceError, match="no NAME_rgb / NAME_depth / NAME_ir images found"):
        with open_source(str(tmp_path)):
            pass


def test_eight_bit_depth_is_refused_with_the_file_name(tmp_path):
    cv2.imwrite(str(tmp_path / "x_depth.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(SourceError, match=r"x_depth.png: depth images must be 16-bit"):
        list(ImageFolderSource(tmp_path))


def test_corrupt_image_and_empty_folder_are_refused(tmp_path):
    with pytest.raises(SourceError, match="no NAME_rgb"):
        find_triplets(tmp_path)
    (tmp_path / "y_rgb.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match="y_rgb.png: cannot be read"):
        list(ImageFolderSource(tmp_path))


def test_mismatched_depth_and_ir_sizes_are_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "z_depth.png"), np.zeros((4, 4), np.uint16))
    cv2.imwrite(str(tmp_path / "z_ir.png"), np.zeros((5, 4), np.uint8))
    with pytest.raises(SourceError, match="z: FrameSet.ir"):
        list(ImageFolderSource(tmp_path))


@pytest.mark.parametrize("extension", [".png", ".jpg", ".bmp", ".tif"])
def test_the_size_is_read_from_the_header_of_every_format_the_folder_takes(tmp_path, extension):
    from mmdg_edge.sensors.images import declared_size

    path = tmp_path / f"a_rgb{extension}"
    cv2.imwrite(str(path), np.zeros((37, 53, 3), np.uint8))
    assert declared_size(path) == (53, 37)


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    """Issue 21 item 3: a PNG of a few kilobytes decoded to gigabytes; the limit is per source."""
    _write_triplet(tmp_path, "a")
    assert len(list(ImageFolderSource(tmp_path, max_pixels=48 * 64))) == 1
    decoded = []
    monkeypatch.setattr(cv2, "imread", lambda *args: decoded.append(args) or None)
    with pytest.raises(SourceError, match=r"a_(rgb|depth|ir)\.png: 64×48 = 3072 pixels exceeds the limit of 3071"):
        list(ImageFolderSource(tmp_path, max_pixels=48 * 64 - 1))
    assert decoded == []
    with pytest.raises(SourceError, match=r"a_(rgb|depth|ir)\.png: 64×48 = 3072 pixels exceeds the limit of 3071"):
        list(open_source(str(tmp_path), max_pixels=3071))
    with pytest.raises(ValueError, match="ImageFolderSource.max_pixels: expected a positive int, got 0"):
        ImageFolderSource(tmp_path, max_pixels=0)
