"""The synthetic camera: deterministic, and the physical cues of each class are where they should be."""
import hashlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mmdg_edge.align import FaceAligner
from mmdg_edge.physics import check_physics
from mmdg_edge.sensors import open_source
from mmdg_edge.sensors.synthetic import (
    DOMAINS, SceneSpec, Segment, SyntheticCamera, SyntheticConfig, create_face_texture, render_frameset, render_scene,
    render_sequence,
)
from mmdg_edge.temporal import box_iou


def _inner(fs):
    x0, y0, x1, y1 = (int(v) for v in fs.metadata["truth"]["box"])
    w, h = x1 - x0, y1 - y0
    return slice(y0 + h // 4, y1 - h // 4), slice(x0 + w // 4, x1 - w // 4)


def _render(kind, domain=0, seed=0, config=SyntheticConfig(projector_dots=False)):
    """One frameset; by default without the projector's dots, so that the IR shows the materials' own light."""
    return render_frameset(kind, domain, np.random.default_rng(seed), 0, config, distance_m=0.6, centre=(320.0, 240.0))


def _patch_m(fs, x, y, r=2):
    """Median depth (m) of the valid pixels of a (2r+1)² patch."""
    patch = fs.depth[int(y) - r:int(y) + r + 1, int(x) - r:int(x) + r + 1]
    return float(np.median(patch[patch > 0])) * fs.depth_scale_m


def test_same_seed_same_frames_other_seed_other_frames():
    def frames(seed):
        return [(fs.rgb, fs.depth, fs.ir, fs.metadata["truth"]) for fs in SyntheticCamera(seed=seed, num_frames=3)]

    a, b, c = frames(3), frames(3), frames(4)
    for x, y in zip(a, b):
        assert all(np.array_equal(p, q) for p, q in zip(x[:3], y[:3])) and x[3] == y[3]
    assert not any(np.array_equal(x[0], y[0]) for x, y in zip(a, c))


def test_framesets_validate_with_one_pinhole_camera_for_all_streams():
    with open_source("synthetic", seed=0, classes=("replay",), domains=(2,), num_frames=2) as camera:
        framesets = list(camera)
    assert len(framesets) == 2
    fs = framesets[1]
    fs.validate()
    assert (fs.rgb.dtype, fs.depth.dtype, fs.ir.dtype) == (np.uint8, np.uint16, np.uint8)
    assert fs.rgb.shape == (480, 640, 3) and fs.depth.shape == fs.ir.shape == (480, 640)
    assert fs.intrinsics["rgb"] == fs.intrinsics["depth"] == fs.intrinsics["ir"]
    assert (fs.intrinsics["depth"].fx, fs.intrinsics["depth"].ppx, fs.intrinsics["depth"].ppy) == (615.0, 320.0, 240.0)
    assert fs.color_aligned_to_depth and fs.depth_to_color.translation == (0.0, 0.0, 0.0)
    assert fs.serial == "SYNTH-1" and fs.depth_scale_m == 0.001 and fs.metadata["source"] == "synthetic"
    assert fs.origin == "synthetic" and fs.received_s is None and camera.is_realtime is False
    assert fs.frame_numbers == {"rgb": 1, "depth": 1, "ir": 1}
    assert fs.timestamps_ms["depth"] == pytest.approx(1000 / 30)
    truth = fs.metadata["truth"]
    assert truth["label"] == "attack" and truth["attack"] == "replay" and truth["domain"] == 2
    # without subjects or instruments: the base face, the default screen, the kind as species
    assert (truth["subject"], truth["instrument"], truth["species"]) == (None, None, "replay")


@pytest.mark.parametrize("kind", ["live", "print", "replay", "mask"])
def test_face_box_sits_on_the_near_surface_at_the_true_distance(kind):
    fs = _render(kind, seed=1)
    truth = fs.metadata["truth"]
    ys, xs = _inner(fs)
    face = fs.depth[ys, xs]
    face_m = np.median(face[face > 0]) * fs.depth_scale_m
    wall = fs.depth[:30, -60:]
    assert face_m == pytest.approx(truth["distance_m"], abs=0.03)
    assert np.median(wall[wall > 0]) * fs.depth_scale_m > face_m + 0.8  # the wall is 1.5-3 m away
    # a face 0.15 m wide at 0.6 m through fx = 615 px: 615 · 0.15 / 0.6 ≈ 154 px (head sway moves it by < 1 m)
    x0, _, x1, _ = truth["box"]
    assert x1 - x0 == pytest.approx(615 * 0.15 / truth["distance_m"], rel=1e-6)


def test_live_nose_stands_out_of_the_cheeks():
    fs = _render("live")
    x0, y0, x1, y1 = fs.metadata["truth"]["box"]
    cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    nose = _patch_m(fs, cx, cy + 0.05 * bh)
    cheeks = [_patch_m(fs, cx + side * bw, cy + 0.05 * bh) for side in (-0.3, 0.3)]
    # relief model by hand: cheek 0.09·(1-√(1-0.25-0.064)) ≈ 1.5 cm back, nose tip 3 cm out, minus 0.3 cm
    for cheek in cheeks:
        assert 0.03 <= cheek - nose <= 0.055


def test_live_and_mask_faces_have_a_nose_print_and_replay_are_sheets():
    aligner = FaceAligner()
    for kind, low, high in (("live", 0.02, 0.05), ("mask", 0.02, 0.05), ("print", -0.005, 0.005),
                            ("replay", -0.005, 0.005)):
        for domain in (0, 2):
            shape = check_physics(aligner.align(_render(kind, domain=domain)).crops).shape
            assert low <= shape.nose_m <= high, (kind, domain, shape)
            assert (shape.sheet_rms_m > 0.005) == (kind in ("live", "mask")), (kind, domain, shape)


def test_infrared_separates_skin_screen_and_mask():
    live, replay, mask = (_render(k) for k in ("live", "replay", "mask"))
    ys, xs = _inner(live)
    assert np.median(replay.ir[ys, xs]) < 0.15 * np.median(live.ir[ys, xs])

    def spread(fs):
        return np.subtract(*np.percentile(fs.ir[ys, xs].astype(float), (90, 10)))

    assert spread(mask) < 0.3 * spread(live)
    assert np.std(mask.ir[ys, xs].astype(float)) < 4.0  # only sensor noise (σ 2) on one material


def test_live_eyes_glint_in_infrared_and_masks_do_not():
    for kind, glints in (("live", True), ("mask", False)):
        fs = _render(kind)
        x0, y0, x1, y1 = fs.metadata["truth"]["box"]
        cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
        ys, xs = _inner(fs)
        eyes = [int(fs.ir[int(cy - 0.12 * bh), int(cx + side * bw)]) for side in (-0.21, 0.21)]
        face = np.percentile(fs.ir[ys, xs], 95)
        assert (min(eyes) > face + 20) == glints, (kind, eyes, face)


def test_domains_change_noise_and_holes():
    quiet, noisy = _render("print", domain=0), _render("print", domain=2)
    ys, xs = _inner(quiet)
    assert (noisy.depth[ys, xs] == 0).mean() > 2.5 * (quiet.depth[ys, xs] == 0).mean() > 0  # holes on the face too
    assert np.std(noisy.depth[ys, xs][noisy.depth[ys, xs] > 0]) > np.std(quiet.depth[ys, xs][quiet.depth[ys, xs] > 0])
    assert not np.array_equal(quiet.rgb.mean(axis=(0, 1)).round(), noisy.rgb.mean(axis=(0, 1)).round())  # light


def test_depth_shadow_left_of_the_head_has_the_stereo_width():
    scene = SceneSpec("live", 0, distance_m=0.5, centre=(320.0, 240.0), wall_m=2.0)
    fs = render_scene(scene, 0, np.random.default_rng(0))
    x0, y0, x1, y1 = fs.metadata["truth"]["box"]
    row, left = int((y0 + y1) / 2 - 0.12 * (y1 - y0)), int((x0 + x1) / 2 - 0.6 * (x1 - x0))
    # fx · baseline · (1/z_face - 1/z_wall) = 615 · 0.05 · (2 - 0.5) ≈ 46 px without depth
    assert np.all(fs.depth[row - 2:row + 3, left - 40:left - 4] == 0)
    assert np.mean(fs.depth[row - 2:row + 3, left - 70:left - 52] > 0) > 0.9
    assert np.all(fs.depth[:, :10] == 0)  # left edge: 615 · 0.05 / 2 ≈ 15 px seen by one imager only


def test_haar_cascade_finds_the_face_of_every_class():
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    framesets = [fs for kind in ("live", "print", "replay", "mask")
                 for fs in SyntheticCamera(seed=21, classes=(kind,), num_frames=2)]
    for fs in framesets:
        small = cv2.resize(cv2.cvtColor(fs.rgb, cv2.COLOR_RGB2GRAY), (320, 240), interpolation=cv2.INTER_AREA)
        boxes = [(2 * x, 2 * y, 2 * (x + w), 2 * (y + h)) for x, y, w, h in cascade.detectMultiScale(small, 1.1, 5)]
        truth = fs.metadata["truth"]
        assert max((box_iou(b, truth["box"]) for b in boxes), default=0.0) >= 0.5, truth


def test_scripted_sequence_approaches_then_attacks_in_one_room():
    frames = list(render_sequence([Segment("empty", 2), Segment("live", 5, 1, 1.0, 0.5), Segment("print", 3, 1, 0.6)],
                                  seed=7))
    assert [fs.frame_numbers["depth"] for fs in frames] == list(range(10))
    assert np.all(np.diff([fs.timestamps_ms["rgb"] for fs in frames]) > 0)
    truths = [fs.metadata["truth"] for fs in frames]
    assert truths[0]["box"] is None and truths[0]["label"] is None
    assert [t["attack"] for t in truths[7:]] == ["print"] * 3 and {t["label"] for t in truths[2:7]} == {"live"}
    distances = [t["distance_m"] for t in truths[2:7]]
    assert distances == pytest.approx([1.0, 0.875, 0.75, 0.625, 0.5], abs=0.005)  # ramp + 4 mm of sway
    widths = [t["box"][2] - t["box"][0] for t in truths[2:7]]
    assert np.all(np.diff(widths) > 0)
    corner = [np.median(fs.depth[:40, -80:]) for fs in (frames[0], frames[9])]
    assert corner[0] == pytest.approx(corner[1], abs=30)  # the same wall behind every segment


def test_head_sways_from_frame_to_frame():
    scene = SceneSpec("live", 0, distance_m=0.6, motion_phase=1.0)
    boxes = [render_scene(scene, i, np.random.default_rng(i)).metadata["truth"]["box"] for i in (0, 10)]
    assert 0.3 < abs(boxes[0][0] - boxes[1][0]) < 5.0


def test_any_face_photo_can_be_the_texture():
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the other face photo")

    photo = np.ascontiguousarray(data.astronaut()[:, ::-1])  # mirrored: a different face image
    camera = SyntheticCamera(seed=0, classes=("live",), num_frames=1, face_image=photo)
    fs = next(iter(camera))
    assert fs.metadata["truth"]["label"] == "live"
    with pytest.raises(ValueError, match="no frontal face"):
        create_face_texture(np.full((120, 120, 3), 128, np.uint8))
    with pytest.raises(TypeError, match="face_image"):
        create_face_texture(photo.astype(np.float32))


def test_bad_arguments_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="classes"):
        SyntheticCamera(classes=("cartoon",))
    with pytest.raises(ValueError, match="domains"):
        SyntheticCamera(domains=(len(DOMAINS),))
    with pytest.raises(ValueError, match="num_frames"):
        SyntheticCamera(num_frames=-1)
    with pytest.raises(ValueError, match="distance_m"):
        SceneSpec("live", 0, distance_m=2.5, wall_m=2.2)
    with pytest.raises(ValueError, match="width"):
        SyntheticConfig(width=10)
    with pytest.raises(TypeError, match="segments"):
        list(render_sequence([("live", 3)]))


def test_physical_vetoes_fire_on_every_attack_and_never_on_live():
    aligner = FaceAligner()
    for fs in SyntheticCamera(seed=11, num_frames=40):
        truth = fs.metadata["truth"]
        result = aligner.align(fs)
        assert result.status == "ok", (truth, result.reason)
        vetoes = check_physics(result.crops).vetoes
        assert bool(vetoes) == (truth["label"] == "attack"), (truth, vetoes)


def test_the_shipped_face_is_the_texture_square_of_the_astronaut_photo():
    from mmdg_edge.sensors.synthetic import load_default_texture

    data = pytest.importorskip("skimage.data", reason="scikit-image holds the photo the shipped square was cut from")
    cut_here, shipped = create_face_texture(data.astronaut()), load_default_texture()
    assert np.array_equal(cut_here.planes, shipped.planes)
    assert cut_here.face_box == shipped.face_box and cut_here.skin == shipped.skin


_RENDER_WITHOUT_SKIMAGE = """
import hashlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "skimage":
            raise ImportError("blocked for this test: " + name)
sys.meta_path.insert(0, Block())
from mmdg_edge.sensors import open_source
with open_source("synthetic", seed=3, num_frames=2) as camera:
    print(hashlib.sha256(b"".join(fs.rgb.tobytes() + fs.ir.tobytes() for fs in camera)).hexdigest())
print("skimage" in sys.modules)
"""


def test_the_synthetic_camera_renders_the_same_without_scikit_image():
    """A kiosk or train install has no scikit-image: the camera's face ships in the package."""
    result = subprocess.run([sys.executable, "-c", _RENDER_WITHOUT_SKIMAGE], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    with open_source("synthetic", seed=3, num_frames=2) as camera:
        here = hashlib.sha256(b"".join(fs.rgb.tobytes() + fs.ir.tobytes() for fs in camera)).hexdigest()
    assert result.stdout.split() == [here, "False"]


def test_one_camera_has_one_serial_whatever_the_domain_or_presentation():
    """``collect`` (domain 1) and ``live``/``check`` (domains 0-3) see one camera: a profile holds for both."""
    from mmdg_edge.sensors.synthetic import presentation

    with open_source("synthetic", seed=0, num_frames=12) as camera:
        framesets = list(camera)
    assert {fs.metadata["truth"]["domain"] for fs in framesets} == {0, 1, 2, 3}
    with open_source("synthetic", **presentation("S002", "print", "print-01", frames=1)) as camera:
        framesets += list(camera)
    assert {fs.serial for fs in framesets} == {"SYNTH-1"}
    with open_source("synthetic", config=SyntheticConfig(serial="SYNTH-7"), num_frames=1) as camera:
        assert next(iter(camera)).serial == "SYNTH-7"
    with pytest.raises(ValueError, match="SyntheticConfig.serial"):
        SyntheticConfig(serial="")
