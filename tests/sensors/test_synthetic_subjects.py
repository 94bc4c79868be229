"""Synthetic subjects: distinct, deterministic identities the aligner finds, on plausible heads."""
import dataclasses

import numpy as np
import pytest


from mmdg_edge.align import FaceAligner
from mmdg_edge.physics import check_physics
from mmdg_edge.sensors.synthetic import (
    HAIR_STYLES, SceneSpec, Subject, SyntheticCamera, create_face_texture, create_subject, create_subject_texture,
    load_default_texture, render_frameset, render_scene,
)
from mmdg_edge.temporal import box_iou

SUBJECTS = [create_subject(i) for i in range(12)]


def _live(subject, seed=0, distance_m=0.6, domain=0, frame_index=0):
    return render_frameset("live", domain, np.random.default_rng(seed), frame_index, distance_m=distance_m,
                           centre=(320.0, 240.0), subject=subject)


def _face_rgb(fs):
    """Mean RGB of the central half of the face box (cheeks, eyes, nose, mouth)."""
    x0, y0, x1, y1 = fs.metadata["truth"]["box"]
    w, h = x1 - x0, y1 - y0
    return fs.rgb[int(y0 + h / 4):int(y1 - h / 4), int(x0 + w / 4):int(x1 - w / 4)].reshape(-1, 3).mean(axis=0)


def _depth_m(fs, x, y, r=2):
    patch = fs.depth[int(y) - r:int(y) + r + 1, int(x) - r:int(x) + r + 1]
    return float(np.median(patch[patch > 0])) * fs.depth_scale_m


def test_subjects_are_deterministic_and_distinct():
    assert create_subject(7) == create_subject(7)
    assert [s.id for s in SUBJECTS[:3]] == ["S000", "S001", "S002"]
    assert len({dataclasses.astuple(s)[1:] for s in SUBJECTS}) == 12  # identical apart from the id: none
    assert {s.hair_style for s in SUBJECTS} == set(HAIR_STYLES)
    assert 0 < sum(s.glasses for s in SUBJECTS) < 12
    for s in SUBJECTS:
        assert 0.02 <= s.nose_m <= 0.04 and 0.08 <= s.head_depth_m <= 0.10
    tones = sorted(float(np.dot(s.skin_tone, (0.299, 0.587, 0.114))) for s in SUBJECTS)
    assert tones[-1] - tones[0] > 80  # light to dark skin


def test_the_aligner_finds_every_subject_live_at_kiosk_distances():
    aligner = FaceAligner()
    found = total = 0
    for i, subject in enumerate(SUBJECTS):
        for k, distance in enumerate((0.5, 0.6, 0.7, 0.8)):
            fs = render_frameset("live", (i + k) % 4, np.random.default_rng(10 * i + k), k, distance_m=distance,
                                 subject=subject)
            result = aligner.align(fs)
            total += 1
            found += result.status == "ok" and box_iou(result.crops.box, fs.metadata["truth"]["box"]) >= 0.5
    assert found >= 0.9 * total, f"{found}/{total}"


def test_same_subject_and_seed_render_identically_and_other_subjects_look_different():
    a, again = _live(SUBJECTS[0], seed=3), _live(SUBJECTS[0], seed=3)
    for name in ("rgb", "depth", "ir"):
        np.testing.assert_array_equal(getattr(a, name), getattr(again, name))
    colours = [_face_rgb(_live(s, seed=3)) for s in SUBJECTS]
    distances = [np.linalg.norm(colours[i] - colours[j]) for i in range(12) for j in range(i + 1, 12)]
    # sensor noise alone moves a face's mean colour by well under 1 RGB unit
    assert np.median(distances) > 15 and min(distances) > 2, sorted(distances)[:5]


def test_subject_texture_keeps_skin_ir_whatever_the_skin_tone():
    light = Subject("light", skin_tone=(236.0, 200.0, 176.0))
    dark = Subject("dark", skin_tone=(96.0, 66.0, 48.0))
    fs_light, fs_dark = _live(light, seed=1), _live(dark, seed=1)
    assert _face_rgb(fs_dark).mean() < 0.6 * _face_rgb(fs_light).mean()
    box = fs_light.metadata["truth"]["box"]
    ys, xs = slice(int(box[1] + 40), int(box[3] - 40)), slice(int(box[0] + 40), int(box[2] - 40))
    # melanin absorbs visible light, hardly near-infrared: the IR face is the same
    assert np.median(fs_dark.ir[ys, xs]) == pytest.approx(np.median(fs_light.ir[ys, xs]), rel=0.05)


def test_head_shape_sets_the_nose_and_the_depth_of_the_head():
    def nose_and_side(subject):
        fs = _live(subject, seed=2, distance_m=0.5)
        x0, y0, x1, y1 = fs.metadata["truth"]["box"]
        cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
        cheek = np.mean([_depth_m(fs, cx + side * bw, cy + 0.17 * bh) for side in (-0.3, 0.3)])
        # right side of the head (the left one is in the stereo shadow's reach): 0.5 of the 0.6 half-width out
        side = _depth_m(fs, cx + 0.5 * bw, cy - 0.12 * bh)
        return cheek - _depth_m(fs, cx, cy + 0.17 * bh), side - _depth_m(fs, cx, cy - 0.12 * bh)

    small = nose_and_side(Subject("a", nose_m=0.02, head_depth_m=0.08))
    large = nose_and_side(Subject("b", nose_m=0.04, head_depth_m=0.11))
    # By hand from the relief (ellipsoid of half-axes 0.6 × 0.67 face box about a centre 0.12 box above
    # the box centre; the nose peaking at its tip 0.17 below the box centre, σ 0.07 box across and 0.65 of
    # its 0.315 box length above): the cheek (0.3, 0.17) is depth·(1 - √(1 - 0.25 - 0.187)) = 0.250·depth
    # back, the nose tip depth·0.0985 - nose, so nose-to-cheek = 0.151·depth + nose: 3.2 cm (small) and
    # 5.7 cm (large).
    assert small[0] == pytest.approx(0.151 * 0.08 + 0.02, abs=0.004)
    assert large[0] == pytest.approx(0.151 * 0.11 + 0.04, abs=0.004)
    # Side of the head (0.5, -0.12): depth·(1 - √(1 - 0.694)) = 0.447·depth back, measured from the point
    # between the eyes, 0.29 box above the nose tip, which the nose lifts by exp(-½(0.29/0.205)²) = 0.367 of
    # its height there: 0.447·Δdepth + 0.367·Δnose.
    assert large[1] - small[1] == pytest.approx(0.447 * 0.03 + 0.367 * 0.02, abs=0.004)


def test_live_subjects_pass_the_physical_checks():
    aligner = FaceAligner()
    vetoed = []
    for fs in SyntheticCamera(seed=5, classes=("live",), num_frames=24, subjects=SUBJECTS):
        truth = fs.metadata["truth"]
        assert truth["subject"] in {s.id for s in SUBJECTS}
        result = aligner.align(fs)
        if result.status == "ok" and check_physics(result.crops).vetoes:
            vetoed.append(truth["subject"])
    assert vetoed == []  # the face region is drawn by the landmarks: a receding hairline adds no neck to it


def test_glasses_stand_before_the_face_keep_the_dots_sharp_and_pass_the_physical_checks():
    wearer = next(s for s in SUBJECTS if s.glasses)
    bare = dataclasses.replace(wearer, glasses=False)
    aligner = FaceAligner()
    for seed in range(3):
        worn, plain = _live(wearer, seed, distance_m=0.5), _live(bare, seed, distance_m=0.5)
        x0, y0, x1, y1 = worn.metadata["truth"]["box"]
        w, h = x1 - x0, y1 - y0
        # the lowest point of the left rim: 0.22 face widths left of centre, 0.1 heights below the eyes
        x, y = x0 + w / 2 - 0.22 * wearer.eye_spacing * w, y0 + h / 2 - 0.12 * h + 0.1 * h
        assert _depth_m(plain, x, y, r=1) - _depth_m(worn, x, y, r=1) == pytest.approx(0.012, abs=0.003)
        result = aligner.align(worn)
        assert result.status == "ok" and check_physics(result.crops).vetoes == ()


def test_proportions_stretch_the_face_box():
    wide = dataclasses.replace(SUBJECTS[0], width_scale=1.1, height_scale=0.95)
    fs = render_scene(SceneSpec("live", 0, distance_m=0.6, subject=wide), 0, np.random.default_rng(0))
    x0, y0, x1, y1 = fs.metadata["truth"]["box"]
    base = load_default_texture().face_box
    assert x1 - x0 == pytest.approx(615 * 0.15 * 1.1 / fs.metadata["truth"]["distance_m"], rel=1e-6)
    base_aspect = (base[3] - base[1]) / (base[2] - base[0])
    assert (y1 - y0) / (x1 - x0) == pytest.approx(base_aspect * 0.95 / 1.1, rel=0.02)


def test_any_face_photo_can_be_the_base_of_a_subject():
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the other face photo")

    photo = np.ascontiguousarray(data.astronaut()[:, ::-1])
    base = create_face_texture(photo)
    texture = create_subject_texture(base, SUBJECTS[4])
    assert texture.planes.shape[2] == 4 and not texture.planes.flags.writeable
    assert np.linalg.norm(np.subtract(texture.skin, base.skin)) > 20
    camera = SyntheticCamera(seed=0, classes=("live",), num_frames=1, face_image=photo, subjects=[SUBJECTS[4]])
    assert next(iter(camera)).metadata["truth"]["subject"] == "S004"


def test_bad_subjects_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="Subject.hair_style"):
        Subject("x", hair_style="mohawk")
    with pytest.raises(ValueError, match="Subject.nose_m"):
        Subject("x", nose_m=0.2)
    with pytest.raises(ValueError, match="Subject.id"):
        Subject("")
    with pytest.raises(ValueError, match="index"):
        create_subject(-1)
    with pytest.raises(ValueError, match="SceneSpec.subject"):
        SceneSpec("empty", 0, subject=SUBJECTS[0])
    with pytest.raises(TypeError, match=r"subjects\[1\]"):
        SyntheticCamera(subjects=[SUBJECTS[0], "S001"])
    with pytest.raises(ValueError, match="already names a different Subject"):
        SyntheticCamera(subjects=[SUBJECTS[0], dataclasses.replace(SUBJECTS[1], id="S000")])
