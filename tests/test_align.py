"""Face aligner: real face photos, the real D435 office recording, depth encodings, bad input."""
import cv2
import numpy as np
import pytest

from mmdg_edge.align import AlignConfig, FaceAligner, choose_face, crop_square, map_box_to_depth, square_box
from mmdg_edge.frames import Extrinsics, FrameSet, Intrinsics

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the astronaut face photo")
ASTRONAUT = skimage_data.astronaut()
FACE_512 = (177.0, 66.0, 272.0, 161.0)  # Haar box of the astronaut's face in the 512×512 original


def _pasted(size, x, y):
    frame = np.zeros((480, 640, 3), np.uint8)
    photo = cv2.resize(ASTRONAUT, (size, size), interpolation=cv2.INTER_AREA)
    h, w = min(size, 480 - y), min(size, 640 - x)
    frame[y : y + h, x : x + w] = photo[:h, :w]
    s = size / 512
    face = (x + FACE_512[0] * s, y + FACE_512[1] * s, x + FACE_512[2] * s, y + FACE_512[3] * s)
    return frame, face


@pytest.mark.parametrize("size,x,y", [(300, 0, 0), (400, 100, 40), (480, 160, 0), (512, 20, -30)])
def test_real_face_photo_is_found_and_the_crop_is_centred(size, x, y):
    if y < 0:
        frame, face = _pasted(size, x, 0)
        frame = np.roll(frame, y, axis=0)
        face = (face[0], face[1] + y, face[2], face[3] + y)
    else:
        frame, face = _pasted(size, x, y)
    result = FaceAligner(AlignConfig(smoothing=0.0)).align(FrameSet(rgb=frame))
    assert result.status == "ok", result.reason
    box = result.crops.box
    centre, expected = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]), np.array(
        [(face[0] + face[2]) / 2, (face[1] + face[3]) / 2])
    assert np.abs(centre - expected).max() < 0.1 * (face[2] - face[0])
    assert result.crops.mask.tolist() == [True, False, False] and result.num_faces == 1
    assert result.crops.rgb.shape == (224, 224, 3)


def test_office_recording_without_a_person_has_no_face(d435_bag):
    from mmdg_edge.sensors import open_source

    with open_source(str(d435_bag)) as source:
        results = [FaceAligner().align(fs) for fs in source]
    assert results and all(r.status == "no_face" for r in results)


def _with_depth(depth_mm, ir=None):
    frame, face = _pasted(400, 120, 40)
    return FrameSet(rgb=frame, depth=depth_mm, ir=ir, color_aligned_to_depth=True), face


def test_planar_face_gives_a_flat_depth_crop_and_a_relief_a_graded_one():
    yy, xx = np.mgrid[0:480, 0:640]
    planar, face = _with_depth(np.full((480, 640), 650, np.uint16))
    cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    relief = 650 + 60 * (((xx - cx) / 80.0) ** 2 + ((yy - cy) / 100.0) ** 2) - 35 * np.exp(
        -((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 12.0**2))
    relief = np.rint(relief).astype(np.uint16)
    relief[int(cy), int(cx) - 30 : int(cx) - 20] = 0  # a hole on the cheek
    aligner = FaceAligner(AlignConfig(smoothing=0.0))
    flat = aligner.align(planar)
    graded = aligner.align(_with_depth(relief)[0])
    flat_values = flat.crops.depth[..., 0]
    assert flat_values.min() == flat_values.max() == 128  # the face depth maps to mid-grey
    centre = graded.crops.depth[80:144, 80:144, 0]
    assert centre.max() - centre[centre > 0].min() > 25  # nose brighter than cheeks: ~1 mm per level
    assert (graded.crops.depth[..., 0] == 0).any()  # the hole stays 0
    assert graded.crops.quality.distance_m == pytest.approx(0.65, abs=0.03)


def test_dark_rgb_falls_back_to_ir():
    frame, _ = _pasted(400, 120, 40)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    frameset = FrameSet(rgb=(frame // 20).astype(np.uint8), ir=grey)
    result = FaceAligner().align(frameset)
    assert result.status == "ok" and result.reason == "face found in IR"
    assert result.crops.mask.tolist() == [True, False, True]


@pytest.mark.parametrize(
    "frameset,status",
    [
        (FrameSet(depth=np.full((48, 64), 600, np.uint16)), "no_face"),
        (FrameSet(rgb=np.zeros((480, 640, 3), np.uint8)), "no_face"),
        (FrameSet(rgb=np.full((480, 640, 3), 255, np.uint8)), "no_face"),
    ],
)
def test_frames_without_a_face_give_a_reason(frameset, status):
    result = FaceAligner().align(frameset)
    assert result.status == status and result.reason and result.crops is None


def test_invalid_frameset_is_an_error_not_a_crash():
    frameset = FrameSet(rgb=np.zeros((4, 4, 3), np.uint8))
    frameset.depth = np.full((4, 4), np.nan)
    result = FaceAligner().align(frameset)
    assert result.status == "error" and "FrameSet.depth" in result.reason


def test_geometry_helpers_by_hand():
    assert square_box((10, 20, 30, 60), 1.5) == (-10.0, 10.0, 50.0, 70.0)
    assert choose_face([(0, 0, 10, 10), (100, 100, 130, 130), (5, 5, 35, 35)], 200, 200) == (100, 100, 130, 130)
    image = np.arange(16, dtype=np.uint8).reshape(4, 4)
    crop = crop_square(image, (-2.0, -2.0, 2.0, 2.0), cv2.INTER_NEAREST)
    assert crop[0, 0] == 0 and crop[-1, -1] == image[1, 1]  # zero padding outside the image


def test_box_maps_into_depth_pixels_through_the_extrinsics():
    intr = Intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0)
    frameset = FrameSet(rgb=np.zeros((480, 640, 3), np.uint8), depth=np.zeros((480, 640), np.uint16),
                        intrinsics={"rgb": intr, "depth": intr},
                        depth_to_color=Extrinsics(translation=(0.05, 0.0, 0.0)))
    box = map_box_to_depth((300.0, 220.0, 340.0, 260.0), 0.5, frameset)
    # colour sits 5 cm to the right: at 0.5 m that is 500·0.05/0.5 = 50 px
    assert box == pytest.approx((250.0, 220.0, 290.0, 260.0))


@pytest.mark.slow
def test_synthetic_faces_are_found_in_at_least_95_percent_of_200_framesets():
    from mmdg_edge.sensors.synthetic import SyntheticCamera
    from mmdg_edge.temporal import box_iou

    aligner = FaceAligner(AlignConfig(smoothing=0.0))
    hits = 0
    for fs in SyntheticCamera(seed=5, num_frames=200):
        result = aligner.align(fs)
        if result.status == "ok" and box_iou(result.crops.box, fs.metadata["truth"]["box"]) >= 0.5:
            hits += 1
            assert result.depth_box == result.crops.box  # registered streams: the same box in depth and IR
    assert hits >= 190, hits
