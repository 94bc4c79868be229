"""FrameSet / FaceCrops / Verdict validation names the bad field."""
import numpy as np
import pytest

from mmdg_edge.frames import Extrinsics, FaceCrops, FaceQuality, FrameSet, Verdict

RGB = np.zeros((48, 64, 3), np.uint8)
DEPTH = np.zeros((48, 64), np.uint16)
IR = np.zeros((48, 64), np.uint8)


def test_valid_frameset_reports_present_streams():
    fs = FrameSet(rgb=RGB, depth=DEPTH, timestamps_ms={"depth": 5.0, "rgb": 7.0}, frame_numbers={"depth": 3})
    assert fs.present == (True, True, False)
    assert fs.timestamp_ms == 7.0 and fs.frame_number == 3


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"rgb": np.zeros((48, 64), np.uint8)}, r"FrameSet.rgb: expected shape H×W×3"),
        ({"rgb": RGB.astype(np.float32)}, r"FrameSet.rgb: expected dtype uint8, got float32"),
        ({"depth": np.full((48, 64), np.nan, np.float32)}, r"FrameSet.depth: expected dtype uint16"),
        ({"depth": np.zeros((0, 64), np.uint16)}, r"FrameSet.depth: the image is empty"),
        ({"ir": IR.astype(np.int32)}, r"FrameSet.ir: expected dtype uint8 or uint16"),
        ({"depth": DEPTH, "ir": np.zeros((40, 64), np.uint8)}, r"FrameSet.ir: shape \(40, 64\) differs from depth"),
        ({"rgb": np.zeros((10, 10, 3), np.uint8), "depth": DEPTH, "color_aligned_to_depth": True}, "FrameSet.rgb"),
        ({"depth_scale_m": float("nan")}, "FrameSet.depth_scale_m"),
        ({"timestamps_ms": {"rgb": float("inf")}}, r"FrameSet.timestamps_ms\['rgb'\]"),
        ({"rgb": [[1, 2, 3]]}, "FrameSet.rgb: expected a numpy array, got list"),
    ],
)
def test_invalid_frameset_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FrameSet(**kwargs)


def test_validate_catches_fields_changed_after_construction():
    fs = FrameSet(depth=DEPTH)
    fs.depth = DEPTH.astype(np.float64)
    with pytest.raises(ValueError, match="FrameSet.depth"):
        fs.validate()


def test_extrinsics_need_nine_and_three_values():
    with pytest.raises(ValueError, match="rotation needs 9"):
        Extrinsics(rotation=(1.0, 0.0), translation=(0.0, 0.0, 0.0))
    rot, t = Extrinsics(translation=(0.01, 0.0, 0.0)).matrix()
    np.testing.assert_array_equal(rot, np.eye(3))
    np.testing.assert_array_equal(t, [0.01, 0.0, 0.0])


def _quality():
    return FaceQuality(face_size_px=120.0, distance_m=0.6, blur=50.0, depth_coverage=0.9, passed=True)


def test_face_crops_validate_shapes_and_derive_the_mask():
    rgb, grey = np.zeros((224, 224, 3), np.uint8), np.zeros((224, 224), np.uint8)
    box = (0.0, 0.0, 10.0, 10.0)
    crops = FaceCrops(rgb, None, grey, box, box, _quality())
    assert crops.modalities == ("rgb", "ir") and crops.mask.tolist() == [True, False, True]
    with pytest.raises(ValueError, match="FaceCrops.depth"):
        FaceCrops(rgb, grey[:100].astype(np.uint16), grey, box, box, _quality())
    with pytest.raises(ValueError, match="FaceCrops.depth"):
        FaceCrops(rgb, grey, grey, box, box, _quality())  # depth must stay raw uint16
    with pytest.raises(ValueError, match="at least one"):
        FaceCrops(None, None, None, box, box, _quality())
    no_distance = FaceQuality(120.0, None, 50.0, 0.0, True)
    with pytest.raises(ValueError, match="distance_m"):
        FaceCrops(rgb, grey.astype(np.uint16), None, box, box, no_distance)


def test_verdict_status_is_checked_and_serialisable():
    verdict = Verdict("attack", "depth relief 2 mm", score=0.1, threshold=0.5, modalities=("rgb",), quality=_quality())
    assert not verdict.is_live
    assert verdict.to_dict()["quality"]["distance_m"] == 0.6
    with pytest.raises(ValueError, match="Verdict.status"):
        Verdict("maybe", "")


def test_validate_refuses_a_frame_over_the_pixel_limit_and_the_detector_takes_its_own():
    """Issue 21 item 3: a 10000×10000 frameset spent 17 s and 2 GB inside check."""
    from mmdg_edge.detector import Detector, DetectorConfig
    from mmdg_edge.frames import MAX_PIXELS

    assert MAX_PIXELS == 4096 * 4096 > 3840 * 2160
    wide = FrameSet(depth=np.zeros((4096, 4097), np.uint16))  # built freely: a reader may allow more
    wide.validate(max_pixels=None)
    with pytest.raises(ValueError, match=r"FrameSet.depth: 4097×4096 = 16781312 pixels exceeds the limit of 16777216"):
        wide.validate()
    FrameSet(depth=np.zeros((4096, 4096), np.uint16)).validate()
    detector = Detector.load("demo", engine="onnxruntime", config=DetectorConfig(max_pixels=100))
    verdict = detector.check(FrameSet(depth=np.zeros((10, 11), np.uint16)))
    assert verdict.status == "unreliable" and "10 = 110 pixels exceeds the limit of 100" in verdict.reason
    with pytest.raises(ValueError, match="DetectorConfig.max_pixels: expected a positive int, got 0"):
        DetectorConfig(max_pixels=0)
