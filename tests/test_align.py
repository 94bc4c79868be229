"""Face aligner: real face photos, the real D435 office recording, raw crops and face regions, bad input."""
import cv2
import numpy as np
import pytest

from mmdg_edge.align import AlignConfig, Detection, FaceAligner, choose_face, crop_square, face_distance_m
from mmdg_edge.frames import Extrinsics, FrameSet, Intrinsics
from mmdg_edge.geometry import box_iou, inner_box, map_box_to_color, map_box_to_depth, region, square_box

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


@pytest.mark.parametrize("size,x,y", [(340, 0, 0), (400, 100, 40), (480, 160, 0), (512, 20, -30)])
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


def test_depth_crop_is_raw_and_the_face_region_gives_distance_and_coverage():
    yy, xx = np.mgrid[0:480, 0:640]
    _, face = _with_depth(np.full((480, 640), 650, np.uint16))
    cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    relief = 650 + 60 * (((xx - cx) / 80.0) ** 2 + ((yy - cy) / 100.0) ** 2) - 35 * np.exp(
        -((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 12.0**2))
    relief = np.rint(relief).astype(np.uint16)
    relief[int(cy) - 5 : int(cy) + 5, int(cx) - 30 : int(cx) - 20] = 0  # a hole on the cheek
    frameset = _with_depth(relief)[0]
    crops = FaceAligner(AlignConfig(smoothing=0.0)).align(frameset).crops
    assert crops.depth.dtype == np.uint16 and crops.depth.shape == (224, 224)  # raw millimetres, not encoded
    assert set(np.unique(crops.depth)) <= set(np.unique(relief))  # nearest-neighbour: no values blended
    expected = region(relief, inner_box(crops.depth_box))
    np.testing.assert_array_equal(crops.depth_region, expected)  # the face's centre, full resolution
    assert crops.quality.distance_m == pytest.approx(face_distance_m(expected, 0.001))
    assert crops.quality.depth_coverage == pytest.approx((expected > 0).mean())
    assert 0.6 < crops.quality.distance_m < 0.7 and crops.quality.depth_coverage < 1.0


def test_a_face_without_depth_on_its_centre_has_no_depth_crop():
    depth = np.full((480, 640), 650, np.uint16)
    frameset, face = _with_depth(depth)
    depth[int(face[1]):int(face[3]), int(face[0]):int(face[2])] = 0
    crops = FaceAligner().align(frameset).crops
    assert crops.depth is None and crops.quality.distance_m is None and crops.quality.depth_coverage == 0.0
    assert not crops.quality.passed and any("depth covers 0%" in f for f in crops.quality.failures)


def test_dark_rgb_falls_back_to_ir():
    frame, _ = _pasted(400, 120, 40)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    frameset = FrameSet(rgb=(frame // 20).astype(np.uint8), ir=grey)
    result = FaceAligner().align(frameset)
    assert result.status == "ok" and result.reason == "face found in IR"
    # a face too dark to see in colour is absent there, not a black crop for the model
    assert result.crops.mask.tolist() == [False, False, True] and result.crops.ir.dtype == np.uint8


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


def test_a_non_frameset_is_an_error_not_a_crash():
    result = FaceAligner().align({"rgb": np.zeros((4, 4, 3), np.uint8)})
    assert result.status == "error" and "expected a FrameSet" in result.reason


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


def test_smoothing_does_not_average_a_face_with_one_that_moved_away():
    aligner = FaceAligner(AlignConfig(track=False))  # smoothing on, as in a stream
    before, _ = _pasted(512, 40, 0)
    after, face = _pasted(512, 80, 0)  # the face box moves 40 px of its 95: IoU 0.41 with the last one
    assert aligner.align(FrameSet(rgb=before)).status == "ok"
    box = aligner.align(FrameSet(rgb=after)).crops.box
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    assert abs(centre[0] - (face[0] + face[2]) / 2) < 0.1 * (face[2] - face[0])  # not halfway back (20 px)


@pytest.mark.slow
def test_synthetic_faces_are_found_in_at_least_95_percent_of_200_framesets():
    from mmdg_edge.sensors.synthetic import SyntheticCamera

    aligner = FaceAligner(AlignConfig(smoothing=0.0))
    hits = 0
    for fs in SyntheticCamera(seed=5, num_frames=200):
        result = aligner.align(fs)
        if result.status == "ok" and box_iou(result.crops.box, fs.metadata["truth"]["box"]) >= 0.5:
            hits += 1
            assert result.crops.depth_box == result.crops.box  # registered streams: the same box in depth and IR
    assert hits >= 190, hits


class _Recording:
    """Wraps a detector and records the size of every image it is given."""

    def __init__(self, inner):
        self.inner, self.sizes = inner, []
        self.wants_color = getattr(inner, "wants_color", False)
        self.takes_size_range = getattr(inner, "takes_size_range", False)

    def __call__(self, image, **kwargs):
        self.sizes.append(image.shape[:2])
        return self.inner(image, **kwargs)


def test_tracking_searches_a_small_window_and_keeps_the_full_search_boxes():
    from mmdg_edge.align import HaarFaceDetector
    from mmdg_edge.sensors.synthetic import Segment, render_sequence

    frames = list(render_sequence([Segment("live", 24, distance_start_m=0.8, distance_end_m=0.6)], seed=2))
    tracked = _Recording(HaarFaceDetector())
    tracker = FaceAligner(AlignConfig(smoothing=0.0, full_search_every=10), tracked)
    searcher = FaceAligner(AlignConfig(smoothing=0.0, track=False))
    for fs in frames:
        a, b = tracker.align(fs), searcher.align(fs)
        assert a.status == b.status == "ok"
        assert box_iou(a.crops.box, fs.metadata["truth"]["box"]) >= 0.5
        assert box_iou(a.crops.box, b.crops.box) >= 0.7
    full = [s for s in tracked.sizes if s[1] == 160]
    windows = [s for s in tracked.sizes if s[1] != 160]
    assert len(full) == 3  # frames 0, 11 and 22: one full search, then ten tracked frames
    assert len(windows) == 21 and max(h * w for h, w in windows) <= (2 * 40) ** 2  # twice a 40 px face a side


def _fixed(detections):
    """A detector callable that reports ``detections`` (640×480 pixels) in the image it is given."""
    return lambda image: [d.scaled(image.shape[1] / 640) for d in detections]


def test_eye_landmarks_level_the_crop():

    angle = 20.0  # the eye line is tilted clockwise in the image (y grows downwards)
    rgb = np.zeros((480, 640, 3), np.uint8)
    c, t = np.array([320.0, 240.0]), np.radians(angle)
    direction = np.array([np.cos(t), np.sin(t)])
    p0, p1 = c - 150 * direction, c + 150 * direction
    cv2.line(rgb, tuple(int(v) for v in p0), tuple(int(v) for v in p1), (255, 255, 255), 3)
    eyes = np.array([c - 30 * direction, c + 30 * direction, c, c + (0, 30), c + (10, 40)])
    box = (260.0, 180.0, 380.0, 300.0)
    drawing = AlignConfig(min_blur=0.0, dark_rgb_level=0.0, min_rgb_contrast=0.0)  # a line on black is no face
    aligner = FaceAligner(drawing, _fixed([Detection(box, 1.0, eyes)]))
    result = aligner.align(FrameSet(rgb=rgb))
    assert result.status == "ok", result.reason
    rows = np.nonzero(result.crops.rgb[..., 0] > 128)[0]
    assert rows.size > 100 and rows.max() - rows.min() <= 8  # the line is now horizontal
    assert abs(rows.mean() - 112) <= 2
    plain = FaceAligner(drawing, _fixed([Detection(box)])).align(FrameSet(rgb=rgb))
    rows = np.nonzero(plain.crops.rgb[..., 0] > 128)[0]
    assert rows.max() - rows.min() > 40  # without landmarks the crop keeps the tilt


def test_yunet_needs_an_existing_model_file_it_can_load(tmp_path):
    from mmdg_edge.align import YuNetFaceDetector

    with pytest.raises(FileNotFoundError, match="model_path"):
        YuNetFaceDetector(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx model")
    with pytest.raises(ValueError, match="cannot load"):
        YuNetFaceDetector(junk)


def test_box_maps_to_colour_and_back():
    color = Intrinsics(640, 480, 615.0, 612.0, 318.0, 244.0)
    depth = Intrinsics(640, 480, 385.0, 385.0, 321.0, 237.0)
    c, s = np.cos(0.05), np.sin(0.05)
    frameset = FrameSet(rgb=np.zeros((480, 640, 3), np.uint8), depth=np.zeros((480, 640), np.uint16),
                        intrinsics={"rgb": color, "depth": depth},
                        depth_to_color=Extrinsics(rotation=(c, 0, s, 0, 1, 0, -s, 0, c), translation=(0.015, 0.001, 0.0)))
    box = (250.0, 180.0, 370.0, 300.0)
    in_depth = map_box_to_depth(box, 0.7, frameset)
    assert in_depth[2] - in_depth[0] < box[2] - box[0]  # the depth camera's focal length is shorter
    # The way back deprojects at the same distance, which the rotation changed by < 1 mm: < 0.1 px off.
    assert map_box_to_color(in_depth, 0.7, frameset) == pytest.approx(box, abs=0.1)


def test_more_faces_than_allowed_fail_quality_and_bad_detector_output_is_an_error():
    frame, face = _pasted(340, 0, 0)
    other = (400.0, 300.0, 440.0, 340.0)
    detector = _fixed([Detection(face), Detection(other)])
    two = FaceAligner(AlignConfig(max_faces=1, min_blur=0.0), detector).align(FrameSet(rgb=frame))
    assert two.status == "ok" and two.num_faces == 2
    assert not two.crops.quality.passed and "2 faces in view > 1" in two.crops.quality.failures
    assert two.crops.box == pytest.approx(face)  # the largest face is the one cropped
    bad = FaceAligner(detector=lambda image: [(10.0, 10.0, float("nan"), 40.0)]).align(FrameSet(rgb=frame))
    assert bad.status == "error" and "finite box" in bad.reason


def test_full_search_looks_for_small_faces_only_when_the_coarse_pass_finds_none():
    calls = []

    def detector(image, size_range=None):
        calls.append((image.shape[1], size_range))
        return []

    detector.takes_size_range = True
    result = FaceAligner(AlignConfig(detect_width=160, min_face_px=60), detector).align(
        FrameSet(rgb=np.full((480, 640, 3), 90, np.uint8)))
    assert result.status == "no_face"
    # 160 px wide finds faces ≥ 36·640/160 = 144 px; then 36/60 of the frame for faces from 60 px up to 1.1 × 144 px
    assert calls == [(160, None), (384, (24, int(np.ceil(1.1 * 36 * 0.6 / 0.25))))]


def test_a_face_found_in_colour_but_dark_on_the_crop_is_unreliable_not_a_crash():
    """A backlit face: the scene is bright (colour is searched), the face region itself is black."""
    rgb = np.full((480, 640, 3), 200, np.uint8)
    rgb[140:340, 220:420] = 10
    frameset = FrameSet(rgb=rgb, depth=np.full((480, 640), 600, np.uint16), ir=np.full((480, 640), 120, np.uint8),
                        color_aligned_to_depth=True)
    aligner = FaceAligner(detector=lambda image: [(image.shape[1] * 0.35, image.shape[0] * 0.3,
                                                   image.shape[1] * 0.65, image.shape[0] * 0.7)])
    result = aligner.align(frameset)
    assert result.status == "unreliable" and "colour face is too dark" in result.reason
