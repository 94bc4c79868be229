"""BlazeFace on onnxruntime: anchors, decoding, suppression, the letterbox, refusals, and parity with
the TFLite runtime on the source model (tests/data/face_models, see its PROVENANCE.md)."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmdg_edge.assets import BLAZEFACE_FULL_MODEL, BLAZEFACE_MODEL, FACE_MESH_MODEL
from mmdg_edge.face_detectors import (
    BLAZEFACE_KEYPOINTS,
    BlazeFaceDetector,
    Detection,
    HaarFaceDetector,
    _weighted_nms,
    blazeface_anchors,
    to_detections,
)
from mmdg_edge.geometry import box_iou

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the astronaut face photo")
ASTRONAUT = skimage_data.astronaut()
TFLITE = Path(__file__).parent / "data" / "face_models"


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceDetector:
    return BlazeFaceDetector()


def test_anchors_are_mediapipes_short_range_grid():
    anchors = blazeface_anchors()
    assert anchors.shape == (896, 2)
    # 16×16 grid (stride 8), 2 anchors per cell, row by row; then 8×8 (stride 16), 6 per cell.
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[1], anchors[0])
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[32], [0.5 / 16, 1.5 / 16])
    np.testing.assert_allclose(anchors[511], [15.5 / 16, 15.5 / 16])
    np.testing.assert_allclose(anchors[512:518], np.tile([0.5 / 8, 0.5 / 8], (6, 1)))
    np.testing.assert_allclose(anchors[518], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_full_range_anchors_are_one_per_cell_of_a_48_grid():
    anchors = blazeface_anchors(192, (4,), 1)
    assert anchors.shape == (2304, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(anchors[1], [1.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(anchors[48], [0.5 / 48, 1.5 / 48])
    np.testing.assert_allclose(anchors[-1], [47.5 / 48, 47.5 / 48])


def test_weighted_nms_averages_each_cluster_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float64)
    keypoints = np.arange(3 * 6 * 2, dtype=np.float64).reshape(3, 6, 2)
    scores = np.array([0.6, 0.9, 0.7])
    faces = _weighted_nms(boxes, keypoints, scores, 0.3)
    assert [f.score for f in faces] == [0.9, 0.7]
    weights = np.array([0.6, 0.9]) / 1.5
    np.testing.assert_allclose(faces[0].box, weights @ boxes[:2])
    np.testing.assert_allclose(faces[0].landmarks, np.tensordot(weights, keypoints[:2], axes=1))
    np.testing.assert_allclose(faces[1].box, boxes[2])
    # Below the threshold nothing merges.
    assert len(_weighted_nms(boxes, keypoints, scores, 0.95)) == 3


@pytest.mark.timeout(10)
def test_weighted_nms_ends_on_a_box_without_area():
    # A zero-area box overlaps nothing, not even itself (0/0): it must still leave the queue.
    boxes = np.array([[5, 5, 5, 5], [0, 0, 10, 10]], np.float64)
    with np.errstate(invalid="ignore"):
        faces = _weighted_nms(boxes, np.zeros((2, 6, 2)), np.array([0.9, 0.8]), 0.3)
    assert [f.score for f in faces] == [0.9, 0.8]


def test_finds_the_astronaut_where_haar_does_with_keypoints_in_order(blazeface):
    faces = blazeface(ASTRONAUT)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.9
    (haar,) = HaarFaceDetector()(cv2.cvtColor(ASTRONAUT, cv2.COLOR_RGB2GRAY))
    assert box_iou(face.box, haar.box) > 0.6
    marks = dict(zip(BLAZEFACE_KEYPOINTS, face.landmarks))
    x0, y0, x1, y1 = face.box
    for name in ("right_eye", "left_eye", "nose_tip", "mouth_centre"):
        assert x0 < marks[name][0] < x1 and y0 < marks[name][1] < y1, name
    width = x1 - x0
    assert abs(marks["right_ear_tragion"][0] - x0) < 0.1 * width
    assert abs(marks["left_ear_tragion"][0] - x1) < 0.1 * width
    # The subject's right eye is on the image's left (the photo is not mirrored).
    assert marks["right_ear_tragion"][0] < marks["right_eye"][0] < marks["nose_tip"][0] < marks["left_eye"][0] \
        < marks["left_ear_tragion"][0]
    assert max(marks["right_eye"][1], marks["left_eye"][1]) < marks["nose_tip"][1] < marks["mouth_centre"][1]


def test_grey_input_finds_the_same_face(blazeface):
    (colour,) = blazeface(ASTRONAUT)
    (grey,) = blazeface(cv2.cvtColor(ASTRONAUT, cv2.COLOR_RGB2GRAY))
    assert grey.score > 0.7
    assert box_iou(grey.box, colour.box) > 0.85
    np.testing.assert_allclose(grey.landmarks[:2], colour.landmarks[:2], atol=8.0)


@pytest.mark.parametrize("axis", [0, 1])
def test_letterbox_padding_maps_back_to_image_pixels(blazeface, axis):
    # Cropping 32 px off each side keeps the scale (the longer side stays 512) and only moves the
    # padding: the face must come back at the same place, shifted by the 32 px.
    cropped = ASTRONAUT[32:480] if axis == 0 else ASTRONAUT[:, 32:480]
    (full,) = blazeface(ASTRONAUT)
    found = blazeface(np.ascontiguousarray(cropped))
    assert len(found) == 1
    shift = np.array([0.0, 32.0]) if axis == 0 else np.array([32.0, 0.0])
    # One input pixel is 4 image pixels here; the network sees other content at the crop's edge.
    np.testing.assert_allclose(found[0].box, np.array(full.box) - np.tile(shift, 2), atol=3.0)
    np.testing.assert_allclose(found[0].landmarks, full.landmarks - shift, atol=3.0)


def test_scaled_image_gives_scaled_face(blazeface):
    (small,) = blazeface(ASTRONAUT)
    (large,) = blazeface(cv2.resize(ASTRONAUT, (1024, 1024), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_allclose(large.box, np.array(small.box) * 2, atol=4.0)
    np.testing.assert_allclose(large.landmarks, small.landmarks * 2, atol=4.0)


def _small_face_frame(face_side: int) -> np.ndarray:
    """The astronaut photo scaled to ``face_side`` px square in a grey 640×480 frame (face ≈ 0.18 of it)."""
    frame = np.full((480, 640, 3), 96, np.uint8)
    top = (480 - face_side) // 2
    frame[top:top + face_side, :face_side] = cv2.resize(ASTRONAUT, (face_side, face_side), interpolation=cv2.INTER_AREA)
    return frame


def test_full_range_finds_the_face_the_short_range_loses(blazeface):
    full = BlazeFaceDetector(variant="full")
    (near,) = full(ASTRONAUT)
    assert near.score > 0.9 and box_iou(near.box, blazeface(ASTRONAUT)[0].box) > 0.7
    frame = _small_face_frame(240)  # the face about 44 px wide
    assert blazeface(frame) == []
    (far,) = full(frame)
    assert far.score > 0.6
    expected = tuple(np.array(near.box) * 240 / 512 + np.array([0, 120, 0, 120]))
    # At 13 px in the model's input the box is coarser (it comes out ~20 % small), yet in place.
    assert box_iou(far.box, expected) > 0.5
    width = expected[2] - expected[0]
    np.testing.assert_allclose(np.reshape(far.box, (2, 2)).mean(axis=0),
                               np.reshape(expected, (2, 2)).mean(axis=0), atol=0.2 * width)
    assert far.landmarks[0, 0] < far.landmarks[1, 0]  # right eye on the image's left


@pytest.mark.parametrize("image", [np.zeros((480, 640, 3), np.uint8), np.full((480, 640), 128, np.uint8),
                                   np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)],
                         ids=["black", "grey", "noise"])
def test_no_face_in_an_image_without_one(blazeface, image):
    assert blazeface(image) == []
    assert BlazeFaceDetector(variant="full")(image) == []


@pytest.mark.parametrize("image", [np.zeros((480, 640, 3), np.float32), np.zeros((480, 640, 4), np.uint8),
                                   np.zeros((0, 640), np.uint8)], ids=["float", "rgba", "empty"])
def test_refuses_an_image_it_cannot_read(blazeface, image):
    with pytest.raises(ValueError, match="BlazeFaceDetector: expected an H×W"):
        blazeface(image)


def test_detection_contract_takes_five_or_six_landmarks():
    box = (0.0, 0.0, 10.0, 10.0)
    for rows in (5, 6):
        assert to_detections([Detection(box, 0.9, np.zeros((rows, 2)))])[0].landmarks.shape == (rows, 2)
    with pytest.raises(ValueError, match="5×2 \\(YuNet\\) or 6×2 \\(BlazeFace\\)"):
        to_detections([Detection(box, 0.9, np.zeros((4, 2)))])


def test_missing_corrupt_or_foreign_model_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="BlazeFaceDetector.model_path: no file at"):
        BlazeFaceDetector(tmp_path / "absent.onnx")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(BLAZEFACE_MODEL.read_bytes()[:50_000])
    with pytest.raises(ValueError, match=r"onnxruntime cannot load .*truncated\.onnx"):
        BlazeFaceDetector(truncated)
    with pytest.raises(ValueError, match=r"face_mesh\.onnx has inputs .* expected inputs"):
        BlazeFaceDetector(FACE_MESH_MODEL)
    with pytest.raises(ValueError, match=r"blazeface_short\.onnx has inputs .* expected inputs"):
        BlazeFaceDetector(BLAZEFACE_MODEL, variant="full")
    with pytest.raises(ValueError, match=r"blazeface_full\.onnx has inputs .* expected inputs"):
        BlazeFaceDetector(BLAZEFACE_FULL_MODEL)
    with pytest.raises(ValueError, match=r"BlazeFaceDetector.variant: expected one of \['full', 'short'\]"):
        BlazeFaceDetector(variant="long")
    with pytest.raises(ValueError, match="BlazeFaceDetector.threads"):
        BlazeFaceDetector(threads=0)
    with pytest.raises(ValueError, match="BlazeFaceDetector.score_threshold"):
        BlazeFaceDetector(score_threshold=1.5)


def _tflite_outputs(model: Path, nhwc: np.ndarray):
    interpreter_module = pytest.importorskip(
        "ai_edge_litert.interpreter", reason="the TFLite runtime (ai-edge-litert, dev extra) runs the source model")
    interpreter = interpreter_module.Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], nhwc)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


@pytest.mark.parametrize("variant, source", [("short", "face_detection_short_range.tflite"),
                                             ("full", "face_detection_full_range.tflite")])
def test_onnx_matches_the_tflite_runtime_on_random_input_and_on_the_photo(variant, source):
    detector = BlazeFaceDetector(variant=variant)
    side = detector.input_size
    photo, _, _ = detector._letterbox(ASTRONAUT)
    noise = np.random.default_rng(1).uniform(-1, 1, (1, 3, side, side)).astype(np.float32)
    for nchw in (noise, photo):
        expected = _tflite_outputs(TFLITE / source, nchw.transpose(0, 2, 3, 1).copy())
        got = detector._session.run(None, {detector._input: nchw})
        for onnx_out, tflite_out in zip(got, expected):
            np.testing.assert_allclose(onnx_out, tflite_out, atol=1e-3, rtol=0)
