"""Face aligner: real face photos, the real D435 office recording, landmark-drawn crops and face regions,
tracking from a prior, bad input."""
import cv2
import numpy as np
import pytest

from mmdg_edge.align import AlignConfig, Detection, FaceAligner, HaarFaceDetector, TrackPrior, choose_face, \
    crop_rotated, face_distance_m
from mmdg_edge.face_mesh import FACE_OVAL, NOSE_TIP
from mmdg_edge.frames import Extrinsics, FrameSet, Intrinsics
from mmdg_edge.geometry import box_iou, map_box_to_color, map_box_to_depth

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the astronaut face photo")
ASTRONAUT = skimage_data.astronaut()
FACE_512 = (177.0, 66.0, 272.0, 161.0)  # Haar box of the astronaut's face in the 512×512 original


def _pasted(size, x, y, frame=None):
    frame = np.zeros((480, 640, 3), np.uint8) if frame is None else frame
    photo = cv2.resize(ASTRONAUT, (size, size), interpolation=cv2.INTER_AREA)
    h, w = min(size, 480 - y), min(size, 640 - x)
    frame[y : y + h, x : x + w] = photo[:h, :w]
    s = size / 512
    face = (x + FACE_512[0] * s, y + FACE_512[1] * s, x + FACE_512[2] * s, y + FACE_512[3] * s)
    return frame, face


@pytest.fixture(scope="module")
def aligner():
    return FaceAligner()


@pytest.mark.parametrize("size,x,y", [(340, 0, 0), (400, 100, 40), (480, 160, 0), (560, 20, -60)])
def test_real_face_photo_is_found_and_the_crop_is_centred_on_its_landmarks(aligner, size, x, y):
    if y < 0:
        frame, face = _pasted(size, x, 0)
        frame = np.roll(frame, y, axis=0)
        face = (face[0], face[1] + y, face[2], face[3] + y)
    else:
        frame, face = _pasted(size, x, y)
    result = aligner.align(FrameSet(rgb=frame))
    assert result.status == "ok", result.reason
    width = face[2] - face[0]
    nose = result.landmarks[NOSE_TIP, :2]
    assert abs(nose[0] - (face[0] + face[2]) / 2) < 0.1 * width  # the nose tip: on the box's midline,
    assert 0.0 < nose[1] - (face[1] + face[3]) / 2 < 0.3 * width  # a little below its centre (the eyes)
    assert box_iou(result.crops.box, face) > 0.4  # the landmarks' silhouette, not the detector's box
    assert 0.5 * width < result.crops.quality.face_size_px < 1.2 * width
    assert abs(result.crops.quality.yaw_deg) < 10 and abs(result.crops.quality.roll_deg) < 10
    assert result.crops.mask.tolist() == [True, False, False] and result.num_faces == 1
    assert result.crops.rgb.shape == (224, 224, 3)


def test_office_recording_without_a_person_has_no_face(aligner, d435_bag):
    from mmdg_edge.sensors import open_source

    with open_source(str(d435_bag)) as source:
        results = [aligner.align(fs) for fs in source]
    assert results and all(r.status == "no_face" for r in results)


def _with_depth(depth_mm, ir=None):
    frame, face = _pasted(400, 120, 40)
    return FrameSet(rgb=frame, depth=depth_mm, ir=ir, color_aligned_to_depth=True), face


def test_the_face_region_is_the_landmarks_face_not_the_wall_behind_its_box(aligner):
    """A head at 0.65 m whose silhouette leaves wall (2.5 m) inside its bounding box: the wall is not
    in the region the depth coverage, the distance and the physics see (finding 3)."""
    frameset, _ = _with_depth(np.full((480, 640), 2500, np.uint16))
    landmarks = aligner.align(frameset).landmarks
    head = np.zeros((480, 640), np.uint8)
    cv2.fillPoly(head, [np.round(landmarks[list(FACE_OVAL), :2]).astype(np.int32)], 1)
    depth = np.where(head > 0, 650, 2500).astype(np.uint16)
    box = landmarks[list(FACE_OVAL), :2]
    x0, y0, x1, y1 = box[:, 0].min(), box[:, 1].min(), box[:, 0].max(), box[:, 1].max()
    assert (depth[int(y0):int(y1), int(x0):int(x1)] == 2500).mean() > 0.1  # the box holds wall ...
    crops = aligner.align(_with_depth(depth)[0]).crops
    assert crops.depth_region.size > 1000 and crops.depth_region.max() == 650  # ... the region none
    assert crops.quality.distance_m == pytest.approx(0.65) and crops.quality.depth_coverage == 1.0
    assert crops.depth.dtype == np.uint16 and set(np.unique(crops.depth)) <= {0, 650, 2500}  # raw, unblended
    assert np.isfinite(crops.shape_depth_m).all() and np.allclose(crops.shape_depth_m, 0.65)
    assert crops.metres_per_px is None  # no intrinsics in this frameset


def test_depth_holes_lower_the_coverage_and_leave_nan_at_their_landmarks(aligner):
    frameset, _ = _with_depth(np.full((480, 640), 650, np.uint16))
    landmarks = aligner.align(frameset).landmarks
    depth = np.full((480, 640), 650, np.uint16)
    nx, ny = np.round(landmarks[NOSE_TIP, :2]).astype(int)
    depth[ny - 6:ny + 7, nx - 6:nx + 7] = 0
    crops = aligner.align(_with_depth(depth)[0]).crops
    assert 0.9 < crops.quality.depth_coverage < 1.0
    assert crops.quality.depth_coverage == pytest.approx((crops.depth_region > 0).mean())
    assert np.isnan(crops.shape_depth_m[0])  # the nose tip sat in the hole


def test_a_face_without_depth_has_no_depth_crop(aligner):
    crops = aligner.align(_with_depth(np.zeros((480, 640), np.uint16))[0]).crops
    assert crops.depth is None and crops.quality.distance_m is None and crops.quality.depth_coverage == 0.0
    assert not crops.quality.passed and any("depth covers 0%" in f for f in crops.quality.failures)


def test_intrinsics_give_the_metres_a_pixel_spans_at_the_face(aligner):
    intr = Intrinsics(640, 480, 400.0, 400.0, 320.0, 240.0)
    frameset, _ = _with_depth(np.full((480, 640), 800, np.uint16))
    frameset.intrinsics = {"depth": intr}
    assert aligner.align(frameset).crops.metres_per_px == pytest.approx(0.8 / 400.0)


def test_dark_rgb_falls_back_to_ir(aligner):
    frame, _ = _pasted(400, 120, 40)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    result = aligner.align(FrameSet(rgb=(frame // 20).astype(np.uint8), ir=grey))
    assert result.status == "ok" and result.reason == "face found in IR" and result.source == "IR"
    # a face too dark to see in colour is absent there, not a black crop for the model
    assert result.crops.mask.tolist() == [False, False, True] and result.crops.ir.dtype == np.uint8


@pytest.mark.parametrize("frameset", [
    FrameSet(depth=np.full((48, 64), 600, np.uint16)),
    FrameSet(rgb=np.zeros((480, 640, 3), np.uint8)),
    FrameSet(rgb=np.full((480, 640, 3), 255, np.uint8)),
], ids=["depth only", "black", "white"])
def test_frames_without_a_face_give_a_reason(aligner, frameset):
    result = aligner.align(frameset)
    assert result.status == "no_face" and result.reason and result.crops is None


def test_a_non_frameset_is_an_error_not_a_crash(aligner):
    result = aligner.align({"rgb": np.zeros((4, 4, 3), np.uint8)})
    assert result.status == "error" and "expected a FrameSet" in result.reason


def test_geometry_helpers_by_hand():
    assert choose_face([(0, 0, 10, 10), (100, 100, 130, 130), (5, 5, 35, 35)], 200, 200) == (100, 100, 130, 130)
    image = np.arange(16, dtype=np.uint8).reshape(4, 4) + 1
    crop = crop_rotated(image, (0.0, 0.0), 4.0, 0.0, cv2.INTER_NEAREST)  # centred on the top-left corner
    assert crop[0, 0] == 0 and crop[-1, -1] == image[2, 2]  # zero outside the image; 4 px a side about (0, 0)
    assert face_distance_m(np.array([0, 600, 610, 620], np.uint16), 0.001) == pytest.approx(0.61)


def test_face_distance_counts_to_numpys_median_of_the_valid_depth():
    rng = np.random.default_rng(0)
    for size in (1, 2, 3, 10, 11, 5000):
        for high in (2, 700, 65535):
            depth = rng.integers(0, high, size).astype(np.uint16)
            valid = depth[depth > 0]
            expected = float(np.median(valid)) * 0.001 if valid.size else None
            assert face_distance_m(depth, 0.001) == expected
            assert face_distance_m(depth.reshape(1, -1), 0.001) == expected
    assert face_distance_m(np.zeros((3, 3), np.uint16), 0.001) is None
    assert face_distance_m(np.array([], np.uint16), 0.001) is None


def test_a_tilted_face_is_levelled_by_its_eye_line(aligner):
    upright, _ = _pasted(400, 120, 40)
    turned = cv2.warpAffine(upright, cv2.getRotationMatrix2D((320, 240), 20, 1.0), (640, 480))
    a, b = aligner.align(FrameSet(rgb=upright)), aligner.align(FrameSet(rgb=turned))
    assert b.crops.quality.roll_deg - a.crops.quality.roll_deg == pytest.approx(-20.0, abs=3.0)
    correlation = np.corrcoef(a.crops.rgb.ravel().astype(float), b.crops.rgb.ravel().astype(float))[0, 1]
    assert correlation > 0.95  # the same crop, levelled


def test_a_prior_tracks_without_a_full_search_and_lands_where_a_search_does():
    calls = []

    def counting(image):
        calls.append(image.shape)
        return searcher.detector(image)

    searcher = FaceAligner()
    tracker = FaceAligner(detector=counting, mesh=searcher.mesh)
    frame, _ = _pasted(400, 120, 40)
    first = searcher.align(FrameSet(rgb=frame))
    moved, _ = _pasted(400, 126, 44)  # the face moved 6 px
    tracked = tracker.align(FrameSet(rgb=moved), TrackPrior(first.landmarks, "RGB", 1))
    searched = searcher.align(FrameSet(rgb=moved))
    assert calls == [] and not tracked.searched and searched.searched
    assert np.abs(tracked.landmarks[:, :2] - searched.landmarks[:, :2]).mean() < 2.0
    # a prior found in another image (IR) is not used on colour: a full search runs
    assert tracker.align(FrameSet(rgb=moved), TrackPrior(first.landmarks, "IR", 1)).searched and calls


def test_a_prior_where_no_face_is_any_more_falls_back_to_a_full_search(aligner):
    frame, _ = _pasted(400, 120, 40)
    first = aligner.align(FrameSet(rgb=frame))
    elsewhere, face = _pasted(300, 330, 150)
    result = aligner.align(FrameSet(rgb=elsewhere), TrackPrior(first.landmarks, "RGB", 1))
    assert result.status == "ok" and result.searched
    assert box_iou(result.crops.box, face) > 0.4


@pytest.mark.slow
def test_synthetic_faces_are_found_in_at_least_98_percent_of_200_framesets(aligner):
    from mmdg_edge.sensors.synthetic import SyntheticCamera

    hits = 0
    for fs in SyntheticCamera(seed=5, num_frames=200):
        result = aligner.align(fs)
        if result.status == "ok" and box_iou(result.crops.box, fs.metadata["truth"]["box"]) >= 0.4:
            hits += 1
            assert result.crops.depth_box == result.crops.box  # registered streams: the same box in depth and IR
    assert hits >= 196, hits


def test_haar_stays_an_option(aligner):
    frame, face = _pasted(480, 80, 0)
    result = FaceAligner(detector=HaarFaceDetector(), mesh=aligner.mesh).align(FrameSet(rgb=frame))
    assert result.status == "ok" and box_iou(result.crops.box, face) > 0.4


def test_yunet_needs_an_existing_model_file_it_can_load(tmp_path):
    from mmdg_edge.align import YuNetFaceDetector

    with pytest.raises(FileNotFoundError, match="model_path"):
        YuNetFaceDetector(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx model")
    with pytest.raises(ValueError, match="cannot load"):
        YuNetFaceDetector(junk)


def test_box_maps_into_depth_pixels_through_the_extrinsics():
    intr = Intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0)
    frameset = FrameSet(rgb=np.zeros((480, 640, 3), np.uint8), depth=np.zeros((480, 640), np.uint16),
                        intrinsics={"rgb": intr, "depth": intr},
                        depth_to_color=Extrinsics(translation=(0.05, 0.0, 0.0)))
    box = map_box_to_depth((300.0, 220.0, 340.0, 260.0), 0.5, frameset)
    # colour sits 5 cm to the right: at 0.5 m that is 500·0.05/0.5 = 50 px
    assert box == pytest.approx((250.0, 220.0, 290.0, 260.0))


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


def _face_square(size):
    """The astronaut's face square (face ~0.55 of it), resized to ``size``."""
    return cv2.resize(np.ascontiguousarray(ASTRONAUT[20:250, 110:340]), (size, size), interpolation=cv2.INTER_AREA)


def test_two_faces_in_view_fail_quality_by_default_and_a_false_detection_is_not_counted(aligner):
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[100:380, 10:290] = _face_square(280)
    frame[150:350, 400:600] = _face_square(200)  # a smaller face beside: a print held up, say
    two = aligner.align(FrameSet(rgb=frame))
    assert two.status == "ok" and two.num_faces == 2
    assert not two.crops.quality.passed and "2 faces in view > 1" in two.crops.quality.failures
    assert two.crops.box[2] < 300  # the larger face is the one cropped
    one = frame.copy()
    one[150:350, 400:600] = 90
    assert aligner.align(FrameSet(rgb=one)).num_faces == 1
    blank = (420.0, 170.0, 580.0, 330.0)  # a detector's false face on the blank patch
    fooled = FaceAligner(detector=lambda image: [Detection(tuple(v * image.shape[1] / 640 for v in blank))]
                         + aligner.detector(image), mesh=aligner.mesh)
    assert fooled.align(FrameSet(rgb=one)).num_faces == 1
    allowed = FaceAligner(AlignConfig(max_faces=None), mesh=aligner.mesh).align(FrameSet(rgb=frame))
    assert allowed.num_faces == 2 and allowed.crops.quality.passed


def test_bad_detector_output_is_an_error(aligner):
    frame, _ = _pasted(340, 0, 0)
    bad = FaceAligner(detector=lambda image: [(10.0, 10.0, float("nan"), 40.0)], mesh=aligner.mesh)
    result = bad.align(FrameSet(rgb=frame))
    assert result.status == "error" and "finite box" in result.reason


@pytest.mark.parametrize("registered", [True, False])
def test_a_face_found_in_colour_but_dark_is_unreliable_not_a_crash(aligner, registered):
    """A backlit face: the scene is bright (colour is searched), the face itself nearly black. Also
    with colour not aligned to depth (the depth camera 8 cm aside, ~70 px at 0.6 m): the colour face
    is judged inside its own silhouette, not inside the depth grid's."""
    frame, _ = _pasted(400, 120, 40)
    landmarks = aligner.align(FrameSet(rgb=frame)).landmarks
    face = np.zeros((480, 640), np.uint8)
    cv2.fillPoly(face, [np.round(landmarks[list(FACE_OVAL), :2]).astype(np.int32)], 1)
    backlit = np.where(face[..., None] > 0, frame * 0.08, np.where(frame.sum(axis=2, keepdims=True) == 0, 200, frame))
    calibration = {} if registered else dict(
        intrinsics={name: Intrinsics(640, 480, 520.0, 520.0, 320.0, 240.0) for name in ("rgb", "depth")},
        depth_to_color=Extrinsics(translation=(0.08, 0.0, 0.0)))
    frameset = FrameSet(rgb=backlit.astype(np.uint8), depth=np.full((480, 640), 600, np.uint16),
                        ir=np.full((480, 640), 120, np.uint8), color_aligned_to_depth=registered, **calibration)
    result = aligner.align(frameset)
    assert result.status == "unreliable" and "colour face is too dark" in result.reason


def test_dark_skin_in_a_dim_room_is_a_face_not_a_dark_crop(aligner):
    """The colour face's floor is for a lens in the dark, not for a skin tone: a dark-skinned synthetic
    person in a dim room (face mean grey about 20, with contrast) is cropped from colour."""
    from mmdg_edge.sensors.synthetic import Segment, create_subject, render_sequence

    frameset = next(iter(render_sequence([Segment("live", 1, domain=2, subject=create_subject(902), lighting="dim",
                                                  distance_start_m=0.6)], seed=12002)))
    result = aligner.align(frameset)
    assert result.status == "ok" and result.source == "RGB" and result.crops.rgb is not None
    grey = cv2.cvtColor(result.crops.rgb, cv2.COLOR_RGB2GRAY)
    assert 12 < grey[80:150, 70:150].mean() < 25  # darker than the frame-level switch to IR (25)
    refused = FaceAligner(AlignConfig(min_face_level=25.0), aligner.detector, aligner.mesh).align(frameset)
    assert refused.status == "unreliable" and "colour face is too dark" in refused.reason


def test_config_refuses_impossible_values():
    with pytest.raises(ValueError, match="crop_eye_widths"):
        AlignConfig(crop_eye_widths=0.5)
    with pytest.raises(ValueError, match="max_faces"):
        AlignConfig(max_faces=0)
