"""Face Mesh on onnxruntime: landmarks on a real photo, regions, rotation, head pose, refusals, and
parity with the TFLite runtime on the source model (tests/data/face_models)."""
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmdg_edge import face_mesh as fm
from mmdg_edge.assets import BLAZEFACE_MODEL
from mmdg_edge.face_detectors import BlazeFaceDetector, Detection
from mmdg_edge.face_mesh import FaceMesh, MeshRoi, head_pose, roi_from_detection, roi_from_landmarks

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the astronaut face photo")
ASTRONAUT = skimage_data.astronaut()
TFLITE = Path(__file__).parent / "data" / "face_models"
NAMED = {name: getattr(fm, name) for name in (
    "RIGHT_EYE_OUTER", "RIGHT_EYE_INNER", "LEFT_EYE_INNER", "LEFT_EYE_OUTER", "MOUTH_RIGHT", "MOUTH_LEFT",
    "CHIN", "FOREHEAD", "FACE_RIGHT_SIDE", "FACE_LEFT_SIDE", "RIGHT_CHEEK", "LEFT_CHEEK")}


@pytest.fixture(scope="module")
def mesh() -> FaceMesh:
    return FaceMesh()


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    return BlazeFaceDetector()


@pytest.fixture(scope="module")
def astronaut_marks(mesh, detector) -> fm.FaceLandmarks:
    (face,) = detector(ASTRONAUT)
    return mesh(ASTRONAUT, roi_from_detection(face))


def _rotated(image: np.ndarray, degrees_clockwise: float, centre=(225.0, 125.0)):
    """The image turned clockwise about ``centre`` and the 2×3 map of pixel positions into it."""
    matrix = cv2.getRotationMatrix2D(centre, -degrees_clockwise, 1.0)
    return cv2.warpAffine(image, matrix, image.shape[1::-1]), matrix


def _moved(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    # warpAffine maps pixel indices; points are continuous (pixel i covers [i, i + 1)).
    return (points[:, :2] - 0.5) @ matrix[:, :2].T + matrix[:, 2] + 0.5


def test_mesh_on_the_photo_finds_a_face_shaped_like_one(astronaut_marks):
    points = astronaut_marks.points
    assert astronaut_marks.points.shape == (468, 3) and astronaut_marks.score > 0.9
    x = {name: points[index, 0] for name, index in NAMED.items()}
    # The subject's right side is on the image's left (the photo is not mirrored).
    assert x["FACE_RIGHT_SIDE"] < x["RIGHT_EYE_OUTER"] < x["RIGHT_EYE_INNER"] < points[fm.NOSE_TIP, 0] \
        < x["LEFT_EYE_INNER"] < x["LEFT_EYE_OUTER"] < x["FACE_LEFT_SIDE"]
    assert x["MOUTH_RIGHT"] < points[fm.NOSE_TIP, 0] < x["MOUTH_LEFT"]
    assert x["RIGHT_CHEEK"] < x["RIGHT_EYE_INNER"] and x["LEFT_CHEEK"] > x["LEFT_EYE_INNER"]
    y = points[:, 1]
    assert y[fm.FOREHEAD] < y[list(fm.RIGHT_BROW)].max() < y[fm.RIGHT_EYE_OUTER] < y[fm.NOSE_TIP] \
        < y[fm.MOUTH_RIGHT] < y[fm.CHIN]
    assert y[list(fm.LEFT_BROW)].max() < y[fm.LEFT_EYE_OUTER]
    assert points[list(fm.RIGHT_BROW), 0].mean() < points[list(fm.LEFT_BROW), 0].mean()
    # The nose tip is nearest the camera: every named point lies > 10 px behind it, and the
    # nearest point of the whole mesh is on the nose (within a tenth of the eye distance).
    z = points[:, 2]
    assert all(z[index] > z[fm.NOSE_TIP] + 10 for index in NAMED.values())
    eye_distance = np.hypot(*(points[fm.LEFT_EYE_OUTER, :2] - points[fm.RIGHT_EYE_OUTER, :2]))
    assert np.hypot(*(points[np.argmin(z), :2] - points[fm.NOSE_TIP, :2])) < 0.1 * eye_distance
    assert z[fm.NOSE_TIP] - z.min() < 0.05 * eye_distance


def test_face_oval_is_the_silhouette_in_order(astronaut_marks):
    points = astronaut_marks.points
    assert len(fm.FACE_OVAL) == 36 == len(set(fm.FACE_OVAL))
    polygon = points[list(fm.FACE_OVAL), :2].astype(np.float32)
    # In silhouette order the polygon is simple: its area is its convex hull's (a shuffled order crosses itself).
    assert abs(cv2.contourArea(polygon)) > 0.95 * cv2.contourArea(cv2.convexHull(polygon))
    for index in (fm.NOSE_TIP, fm.RIGHT_EYE_OUTER, fm.LEFT_EYE_OUTER, fm.MOUTH_RIGHT, fm.MOUTH_LEFT,
                  fm.RIGHT_CHEEK, fm.LEFT_CHEEK):
        assert cv2.pointPolygonTest(polygon, tuple(float(v) for v in points[index, :2]), False) > 0, index


def test_photo_is_roughly_frontal(astronaut_marks):
    yaw, pitch, roll = head_pose(astronaut_marks.points)
    assert abs(yaw) < 10 and abs(pitch) < 15 and 0 < roll < 10  # her head leans slightly clockwise


@pytest.mark.parametrize("degrees", [20.0, -20.0])
def test_landmarks_follow_a_rotation_of_the_image(mesh, detector, astronaut_marks, degrees):
    rotated, matrix = _rotated(ASTRONAUT, degrees)
    (face,) = detector(rotated)
    marks = mesh(rotated, roi_from_detection(face))
    assert marks.score > 0.9
    roll_change = head_pose(marks.points)[2] - head_pose(astronaut_marks.points)[2]
    assert abs(roll_change - degrees) < 2.0
    errors = np.hypot(*(marks.points[:, :2] - _moved(astronaut_marks.points, matrix)).T)
    assert np.median(errors) < 1.5 and errors.max() < 4.0


def test_points_scale_with_the_image_z_like_x(mesh, astronaut_marks):
    roi = astronaut_marks.roi
    double = cv2.resize(ASTRONAUT, (1024, 1024), interpolation=cv2.INTER_LINEAR)
    marks = mesh(double, MeshRoi(2 * roi.cx, 2 * roi.cy, 2 * roi.size, roi.angle_rad))
    np.testing.assert_allclose(marks.points, 2 * astronaut_marks.points, atol=2.0)
    depth = astronaut_marks.points[:, 2]
    assert depth.max() - depth.min() > 40  # the face is tens of pixels deep at this scale, not a flat sheet


def test_tracking_region_from_landmarks_finds_the_same_face(mesh, astronaut_marks):
    rotated, matrix = _rotated(ASTRONAUT, 20.0)
    moved = np.column_stack([_moved(astronaut_marks.points, matrix), astronaut_marks.points[:, 2]])
    roi = roi_from_landmarks(moved)
    dx, dy = moved[fm.LEFT_EYE_OUTER, :2] - moved[fm.RIGHT_EYE_OUTER, :2]
    assert roi.angle_rad == pytest.approx(math.atan2(dy, dx), abs=1e-12)
    # The region's size does not change with the head's roll.
    assert roi.size == pytest.approx(roi_from_landmarks(astronaut_marks.points).size, rel=0.02)
    marks = mesh(rotated, roi)
    assert marks.score > 0.9
    assert np.median(np.hypot(*(marks.points[:, :2] - moved[:, :2]).T)) < 2.0


def test_region_from_detection_is_mediapipes_rule():
    eyes = np.array([[40.0, 50.0], [60.0, 70.0], [50, 60], [50, 80], [30, 60], [70, 60]])
    roi = roi_from_detection(Detection((20.0, 30.0, 80.0, 110.0), 0.9, eyes))
    assert (roi.cx, roi.cy) == (50.0, 70.0)
    assert roi.size == pytest.approx(1.5 * 80.0)
    assert roi.angle_rad == pytest.approx(math.pi / 4)
    with pytest.raises(ValueError, match="roi_from_detection: expected a Detection with eye landmarks"):
        roi_from_detection(Detection((20.0, 30.0, 80.0, 110.0)))


def test_region_maps_its_corners_to_image_pixels():
    roi = MeshRoi(100.0, 50.0, 40.0, math.pi / 2)
    corners = roi.to_image(np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 0.5]]))
    np.testing.assert_allclose(corners, [[120.0, 30.0], [120.0, 70.0], [100.0, 50.0]], atol=1e-9)
    with pytest.raises(ValueError, match="MeshRoi: expected finite"):
        MeshRoi(0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="MeshRoi: expected finite"):
        MeshRoi(float("nan"), 0.0, 10.0, 0.0)


def _rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Ry(−yaw)·Rx(−pitch)·Rz(roll), written out by hand (camera axes: x right, y down, z away)."""
    y, p, r = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.0), (25.0, 0.0, 0.0), (0.0, -15.0, 0.0), (0.0, 0.0, 30.0),
                                    (-30.0, 12.0, -20.0), (40.0, -20.0, 10.0)])
def test_head_pose_recovers_a_rotation_of_the_landmarks(astronaut_marks, angles):
    points = astronaut_marks.points
    centre = points.mean(axis=0)
    # The photo's face turned back to (0, 0, 0) (rows: p·R undoes R·p); turned by ``angles`` it must read back.
    frontal = (points - centre) @ _rotation(*head_pose(points))
    assert head_pose(frontal) == pytest.approx((0.0, 0.0, 0.0), abs=1e-6)
    turned = frontal @ _rotation(*angles).T + centre
    assert head_pose(turned) == pytest.approx(angles, abs=1e-6)


def test_head_pose_signs_follow_the_nose(astronaut_marks):
    points = astronaut_marks.points
    centre = points.mean(axis=0)
    frontal = (points - centre) @ _rotation(*head_pose(points))
    eyes = [fm.RIGHT_EYE_OUTER, fm.LEFT_EYE_OUTER]

    def nose_from_eyes(p: np.ndarray) -> np.ndarray:
        return p[fm.NOSE_TIP, :2] - p[eyes, :2].mean(axis=0)

    # yaw > 0: the nose tip swings toward the image's right of the eyes, the left eye goes back.
    right = frontal @ _rotation(20, 0, 0).T
    assert nose_from_eyes(right)[0] > nose_from_eyes(frontal)[0] + 5
    assert right[fm.LEFT_EYE_OUTER, 2] > right[fm.RIGHT_EYE_OUTER, 2] + 5
    # pitch > 0: chin up: the nose tip rises toward the eye line, the chin comes toward the camera.
    up = frontal @ _rotation(0, 20, 0).T
    assert nose_from_eyes(up)[1] < nose_from_eyes(frontal)[1] - 5
    assert up[fm.CHIN, 2] < frontal[fm.CHIN, 2] - 5
    # roll > 0: clockwise in the image: the left eye (on the image's right) is lower.
    clockwise = frontal @ _rotation(0, 0, 20).T
    assert clockwise[fm.LEFT_EYE_OUTER, 1] > clockwise[fm.RIGHT_EYE_OUTER, 1] + 5


def test_head_pose_refuses_malformed_points():
    with pytest.raises(ValueError, match=r"head_pose: expected \(468, 3\) finite points"):
        head_pose(np.zeros((468, 2)))
    with pytest.raises(ValueError, match="coincide"):
        head_pose(np.zeros((468, 3)))
    with pytest.raises(ValueError, match="roi_from_landmarks: expected"):
        roi_from_landmarks(np.full((468, 3), np.nan))


@pytest.mark.parametrize("image", [np.zeros((512, 512, 3), np.uint8), np.full((512, 512), 128, np.uint8)],
                         ids=["black", "grey"])
def test_presence_is_low_where_there_is_no_face(mesh, astronaut_marks, image):
    assert mesh(image, astronaut_marks.roi).score < 0.1


def test_grey_image_gives_the_same_landmarks(mesh, astronaut_marks):
    grey = mesh(cv2.cvtColor(ASTRONAUT, cv2.COLOR_RGB2GRAY), astronaut_marks.roi)
    assert grey.score > 0.9
    assert np.median(np.hypot(*(grey.points[:, :2] - astronaut_marks.points[:, :2]).T)) < 1.0


def test_one_detector_and_mesh_serve_two_threads(mesh, detector):
    images = [ASTRONAUT, _rotated(ASTRONAUT, 20.0)[0]]

    def landmarks(image):
        return mesh(image, roi_from_detection(detector(image)[0])).points

    alone = [landmarks(image) for image in images]
    with ThreadPoolExecutor(max_workers=2) as pool:
        shared = list(pool.map(landmarks, images * 4))
    for index, points in enumerate(shared):
        np.testing.assert_array_equal(points, alone[index % 2])


def test_missing_corrupt_or_foreign_model_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="FaceMesh.model_path: no file at"):
        FaceMesh(tmp_path / "absent.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07" + bytes(range(256)) * 8)
    with pytest.raises(ValueError, match=r"FaceMesh.model_path: onnxruntime cannot load .*garbage\.onnx"):
        FaceMesh(garbage)
    with pytest.raises(ValueError, match=r"blazeface_short\.onnx has inputs .* expected inputs"):
        FaceMesh(BLAZEFACE_MODEL)


def test_non_finite_model_output_is_refused_not_passed_on(astronaut_marks):
    class NanSession:
        def run(self, names, feeds):
            return [np.full((1, 1404, 1, 1), np.nan, np.float32), np.full((1, 1, 1, 1), 5.0, np.float32)]

    broken = FaceMesh()
    broken._session = NanSession()
    with pytest.raises(ValueError, match="FaceMesh: the model answered non-finite"):
        broken(ASTRONAUT, astronaut_marks.roi)


def test_refuses_a_region_that_is_not_one(mesh):
    with pytest.raises(TypeError, match="FaceMesh: expected a MeshRoi"):
        mesh(ASTRONAUT, (100, 100, 50, 0))


def test_onnx_matches_the_tflite_runtime_on_random_input_and_on_the_photo(mesh, astronaut_marks):
    interpreter_module = pytest.importorskip(
        "ai_edge_litert.interpreter", reason="the TFLite runtime (ai-edge-litert, dev extra) runs the source model")
    crop = cv2.warpAffine(ASTRONAUT, FaceMesh._crop_matrix(astronaut_marks.roi), (192, 192),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    photo = crop.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    noise = np.random.default_rng(2).uniform(0, 1, (1, 3, 192, 192)).astype(np.float32)
    interpreter = interpreter_module.Interpreter(model_path=str(TFLITE / "face_landmark.tflite"))
    interpreter.allocate_tensors()
    for nchw in (noise, photo):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], nchw.transpose(0, 2, 3, 1).copy())
        interpreter.invoke()
        expected = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
        got = mesh._session.run(None, {mesh._input: nchw})
        for onnx_out, tflite_out in zip(got, expected):
            np.testing.assert_allclose(onnx_out.ravel(), tflite_out.ravel(), atol=1e-3, rtol=0)
    # The photo's crop is the very input the mesh ran on: its points come from this output.
    raw = got[0].reshape(468, 3).astype(np.float64) / 192.0
    np.testing.assert_allclose(astronaut_marks.roi.to_image(raw), astronaut_marks.points[:, :2], atol=1e-6)
