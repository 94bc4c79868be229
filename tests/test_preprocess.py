"""Crop encodings and engine input tensors against hand computations."""
import numpy as np
import pytest

from mmdg_edge.frames import FaceCrops, FaceQuality
from mmdg_edge.preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    PreprocessConfig,
    encode,
    encode_depth,
    encode_images,
    encode_ir,
    images_to_input,
)
from mmdg_edge.preprocess import _depth_levels, _percentiles


def test_depth_is_encoded_relative_to_the_face_near_bright_holes_zero():
    depth = np.array([[600, 0, 725], [475, 1000, 300]], np.uint16)  # millimetres
    out = encode_depth(depth, 0.001, center_m=0.6, config=PreprocessConfig(depth_window_m=0.25))
    # level = 0.5 + (0.6 - z) / 0.25 → 1 + clip(level) * 254
    expected = np.array([[128, 0, 1], [255, 1, 255]], np.uint8)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("top", [1, 3000, 65535])
def test_depth_looked_up_per_value_is_the_pixel_arithmetic_bit_for_bit(top):
    """encode_depth encodes each value a uint16 crop can hold up to its largest once and looks its pixels
    up: the same levels as the per-pixel arithmetic (the encoding the demo model was trained with)."""
    rng = np.random.default_rng(1)
    for center_m, scale in ((0.6, 0.001), (1.37, 0.00025), (0.41, 0.0001)):
        depth = rng.integers(0, top + 1, (224, 224), dtype=np.uint16)
        depth[0, :3] = 0, top, top // 2
        config = PreprocessConfig(depth_window_m=0.25)
        np.testing.assert_array_equal(encode_depth(depth, scale, center_m, config),
                                      _depth_levels(depth, scale, center_m, config))
    assert encode_depth(np.zeros((2, 2), np.uint16), 0.001, 0.6).tolist() == [[0, 0], [0, 0]]


def test_ir_is_stretched_between_robust_percentiles():
    ir = np.arange(101, dtype=np.uint16).reshape(1, 101) * 10
    out = encode_ir(ir, PreprocessConfig(ir_low_percentile=10, ir_high_percentile=90))
    assert out[0, 10] == 0 and out[0, 90] == 255 and out[0, 50] == 128
    assert out[0, 0] == 0 and out[0, 100] == 255
    np.testing.assert_array_equal(encode_ir(np.full((4, 4), 77, np.uint8)), np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize("dtype, top", [(np.uint8, 256), (np.uint16, 1024), (np.uint16, 65536)])
def test_ir_percentiles_from_the_histogram_are_numpys_bit_for_bit(dtype, top):
    """encode_ir counts an integer crop's order statistics instead of sorting it: the same values as
    np.percentile on float32 (the encoding the demo model was trained with), ties and all."""
    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 101, 224 * 224):
        for ir in (rng.integers(0, top, size).astype(dtype),
                   np.clip(rng.normal(top / 3, top / 20, size), 0, top - 1).astype(dtype)):
            for q in ((1.0, 99.0), (0.0, 100.0), (37.5, 62.5)):
                expected = np.percentile(ir.astype(np.float32), q)
                np.testing.assert_array_equal(_percentiles(ir, q), expected)
            low, high = np.percentile(ir.astype(np.float32), (1.0, 99.0))
            if high - low > 1e-6:
                reference = np.rint(np.clip((ir.astype(np.float32) - low) * np.float32(255.0 / (high - low)), 0, 255))
                np.testing.assert_array_equal(encode_ir(ir), reference.astype(np.uint8))


def test_images_to_input_normalises_with_clip_statistics_and_zeroes_masked():
    images = np.zeros((1, 3, 224, 224, 3), np.uint8)
    images[0, 0, 5, 7] = (255, 0, 128)
    images[0, 2] = 200
    crops, mask = images_to_input(images, np.array([[True, True, False]]))
    assert crops.shape == (1, 3, 3, 224, 224) and crops.dtype == np.float32
    for c, value in enumerate((255, 0, 128)):
        assert crops[0, 0, c, 5, 7] == pytest.approx((value / 255 - CLIP_MEAN[c]) / CLIP_STD[c], abs=1e-5)
    assert crops[0, 1, 0, 0, 0] == pytest.approx(-CLIP_MEAN[0] / CLIP_STD[0], abs=1e-5)
    assert not crops[0, 2].any()
    assert mask.tolist() == [[True, True, False]]


def test_images_to_input_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="images: expected"):
        images_to_input(np.zeros((1, 3, 112, 112, 3), np.uint8), np.ones((1, 3), bool))
    with pytest.raises(ValueError, match="mask: expected"):
        images_to_input(np.zeros((2, 3, 224, 224, 3), np.uint8), np.ones((1, 3), bool))


def test_config_round_trip_and_unknown_keys():
    config = PreprocessConfig(depth_window_m=0.3)
    assert PreprocessConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"unknown keys \['x'\]"):
        PreprocessConfig.from_dict({**config.to_dict(), "x": 1})


def _raw_crops(rng, depth=True, ir16=False):
    quality = FaceQuality(120.0, 0.6 if depth else None, 50.0, 0.9 if depth else None, True)
    ir = rng.integers(0, 65535 if ir16 else 255, (224, 224), dtype=np.uint16 if ir16 else np.uint8)
    return FaceCrops(rgb=rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
                     depth=rng.integers(400, 800, (224, 224), dtype=np.uint16) if depth else None, ir=ir,
                     box=(0.0, 0.0, 10.0, 10.0), depth_box=(0.0, 0.0, 10.0, 10.0), quality=quality)


def test_encode_is_the_hand_encoding_of_every_modality():
    crops = _raw_crops(np.random.default_rng(0))
    inputs, mask = encode([crops])
    config = PreprocessConfig()
    expected = [crops.rgb, encode_depth(crops.depth, 0.001, 0.6)[..., None].repeat(3, -1),
                encode_ir(crops.ir)[..., None].repeat(3, -1)]
    for m, image in enumerate(expected):
        for c in range(3):
            want = (image[..., c] / 255.0 - config.mean[c]) / config.std[c]
            np.testing.assert_allclose(inputs[0, m, c], want, atol=1e-5)
    assert mask.tolist() == [[True, True, True]] and inputs.flags["C_CONTIGUOUS"]


def test_encode_equals_the_cached_path_bit_for_bit_and_zeroes_absent_modalities(monkeypatch):
    rng = np.random.default_rng(1)
    crops = [_raw_crops(rng), _raw_crops(rng, depth=False, ir16=True)]
    empty = np.empty

    def used_memory(*args, **kwargs):  # what np.empty may hand out: whatever was there before
        out = empty(*args, **kwargs)
        out.fill(np.nan if out.dtype.kind == "f" else 7)
        return out

    monkeypatch.setattr(np, "empty", used_memory)
    direct, mask = encode(crops)
    monkeypatch.undo()
    cached, cached_mask = images_to_input(*encode_images(crops))
    np.testing.assert_array_equal(direct, cached)
    np.testing.assert_array_equal(mask, cached_mask)
    assert mask.tolist() == [[True, True, True], [True, False, True]] and not direct[1, 1].any()
