"""Physical vetoes on measured face landmarks: a face passes the face-shape check, flat, tilted, bent,
rolled and folded sheets do not; dark IR; the projector's dots too sharp for skin; and the checks
that cannot be measured.

The landmarks are the landmark model's on a rendered live face (the synthetic camera through the
aligner); the depth at them is written here, surface by surface, so each case is exactly the shape
it names."""
import cv2
import numpy as np
import pytest

from mmdg_edge.align import FaceAligner
from mmdg_edge.face_mesh import LEFT_EYE_OUTER, NOSE_TIP, RIGHT_EYE_OUTER, SHAPE_POINTS
from mmdg_edge.frames import FaceCrops, FaceQuality
from mmdg_edge.physics import PhysicsConfig, check_physics, dot_blur_px, fit_face_shape
from mmdg_edge.sensors.cast import Subject
from mmdg_edge.sensors.synthetic import SceneSpec, render_scene

D = 0.6  # metres


@pytest.fixture(scope="module")
def face():
    """(landmarks in depth pixels, metres per pixel) of a live synthetic face at 0.6 m."""
    frameset = render_scene(SceneSpec("live", 0, distance_m=D), 0, np.random.default_rng(0))
    crops = FaceAligner().align(frameset).crops
    return crops.landmarks, crops.metres_per_px


def _uv(landmarks):
    """Shape points in eye-corner distances from the nose tip."""
    eye = np.linalg.norm(landmarks[LEFT_EYE_OUTER] - landmarks[RIGHT_EYE_OUTER])
    points = landmarks[list(SHAPE_POINTS)]
    return (points[:, 0] - landmarks[NOSE_TIP, 0]) / eye, (points[:, 1] - landmarks[NOSE_TIP, 1]) / eye


def _dots(sigma_px, seed=0, size=21, level=120.0, contrast=0.3, dtype=np.uint8):
    """Squares of IR lit by sparse projector dots (one per 25 px²) blurred to σ ``sigma_px``: five of them."""
    rng = np.random.default_rng(seed)
    patches = []
    for _ in range(5):
        impulses = np.zeros((size + 24, size + 24))
        n = impulses.size // 25
        impulses[rng.integers(0, impulses.shape[0], n), rng.integers(0, impulses.shape[1], n)] += 1.0
        dots = cv2.GaussianBlur(impulses, (0, 0), sigma_px)[12:-12, 12:-12]
        image = level * ((1 - contrast) + contrast * dots / dots.mean()) + rng.normal(0, 1.0, dots.shape)
        patches.append(np.clip(np.rint(image), 0, np.iinfo(dtype).max).astype(dtype))
    return tuple(patches)


def _skin_dots(metres_per_px, scatter_mm=2.5, seed=0):
    """Dots as skin at 0.6 m shows them: the 0.6 px dot blurred by 2.5 mm of scatter."""
    return _dots(float(np.hypot(0.6, scatter_mm / (metres_per_px * 1000))), seed)


def _crops(landmarks, metres_per_px, depth_m, ir_region=None, yaw_deg=None, ir_patches="skin"):
    quality = FaceQuality(150.0, D, 50.0, 1.0, True, yaw_deg=yaw_deg)
    if isinstance(ir_patches, str):
        ir_patches = _skin_dots(metres_per_px) if ir_region is not None else None
    return FaceCrops(None, np.full((224, 224), 600, np.uint16), None, (0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 1.0),
                     quality, ir_region=ir_region, landmarks=landmarks, shape_depth_m=depth_m,
                     metres_per_px=metres_per_px, ir_patches=ir_patches)


def _skin_ir(rng):
    return np.clip(110 + 35 * rng.standard_normal(4000), 0, 255).astype(np.uint8)


def _face_depth(landmarks, metres_per_px, rng=None):
    """The landmark model's own relief at 0.6 m, tilted a little, with 1 mm of sensor noise."""
    u, v = _uv(landmarks)
    depth = D + 0.01 * u + 0.005 * v + landmarks[list(SHAPE_POINTS), 2] * metres_per_px
    if rng is not None:
        depth = depth + rng.normal(0.0, 0.001, depth.shape)
    return depth


def test_the_landmark_models_own_face_passes_every_check(face, rng):
    landmarks, mpp = face
    report = check_physics(_crops(landmarks, mpp, _face_depth(landmarks, mpp, rng), _skin_ir(rng)))
    assert report.vetoes == () and report.unmeasured == {}
    assert 0.010 < report.shape.nose_m < 0.040
    assert report.shape.scale == pytest.approx(1.0, abs=0.15)
    assert report.shape.sheet_rms_m > 0.004


def test_the_nose_height_is_measured_against_the_eye_and_cheek_plane(face):
    landmarks, mpp = face
    u, v = _uv(landmarks)
    depth = D + 0.02 * u - 0.01 * v  # a tilted plane ...
    depth[SHAPE_POINTS.index(NOSE_TIP)] -= 0.023  # ... with the nose tip 23 mm in front of it
    fit = fit_face_shape(landmarks, depth, mpp)
    assert fit.nose_m == pytest.approx(0.023, abs=1e-9)
    assert fit.midline_m == pytest.approx(0.023, abs=5e-4)  # the line runs along v; the midline leans a little


def _sheet(landmarks, shape):
    u, v = _uv(landmarks)
    return {
        "flat": D + 0.0 * u,
        "tilted": D + 0.05 * u + 0.03 * v,
        "rolled": D + 0.02 * u * u,  # a sheet curved around a vertical axis
        "v_fold_6cm": D + 0.06 * np.abs(u) / 1.3,  # crest under the nose, 6 cm back at the face's edges
        "w_fold_4cm": D + 0.04 * np.abs(np.abs(u) - 0.5) / 0.8,
        "horizontal_fold": D + 0.05 * np.abs(v),
        "diagonal_fold": D + 0.05 * np.abs(u + v) / 1.4,
    }[shape]


@pytest.mark.parametrize("shape", ["flat", "tilted", "rolled", "v_fold_6cm", "w_fold_4cm", "horizontal_fold",
                                   "diagonal_fold"])
def test_flat_bent_rolled_and_folded_sheets_are_vetoed_by_the_face_shape(face, rng, shape):
    landmarks, mpp = face
    depth = _sheet(landmarks, shape) + rng.normal(0.0, 0.001, len(SHAPE_POINTS))
    report = check_physics(_crops(landmarks, mpp, depth, _skin_ir(rng)))
    assert len(report.vetoes) == 1 and "not a face" in report.vetoes[0]
    assert report.shape.sheet_rms_m < 0.003


def test_a_v_fold_puts_the_nose_forward_but_not_out_of_the_forehead_chin_line(face, rng):
    landmarks, mpp = face
    fit = fit_face_shape(landmarks, _sheet(landmarks, "v_fold_6cm"), mpp)
    assert fit.nose_m > 0.010  # the crest passes the nose test on its own ...
    assert abs(fit.midline_m) < 0.002  # ... but forehead, nose and chin lie on one line
    assert "folded" in fit.sheet and fit.sheet_rms_m < 1e-6


def test_a_head_turned_beyond_25_degrees_is_judged_by_its_midline_not_its_hidden_cheeks(face, rng):
    """A turned head's nose hides the far cheek, whose landmarks then measure the nose itself."""
    landmarks, mpp = face
    depth = _face_depth(landmarks, mpp)
    nose = depth[SHAPE_POINTS.index(NOSE_TIP)]
    depth[[SHAPE_POINTS.index(p) for p in (362, 263, 280, 425)]] = nose + 0.001  # the subject's left eye and cheek
    fit = fit_face_shape(landmarks, depth, mpp)
    assert fit.midline_m > 0.008
    turned = check_physics(_crops(landmarks, mpp, depth, _skin_ir(rng), yaw_deg=35.0))
    assert turned.vetoes == ()
    if fit.nose_m < 0.010:  # facing the camera the same depth would be a veto
        assert check_physics(_crops(landmarks, mpp, depth, _skin_ir(rng), yaw_deg=5.0)).vetoes
    flat = check_physics(_crops(landmarks, mpp, _sheet(landmarks, "flat"), _skin_ir(rng), yaw_deg=35.0))
    assert flat.vetoes and "forehead–chin line" in flat.vetoes[0]  # a turned sheet is still a sheet


def test_fingers_over_a_flat_print_do_not_make_it_a_face(face, rng):
    landmarks, mpp = face
    depth = _sheet(landmarks, "flat").copy()
    _, v = _uv(landmarks)
    depth[v > 0.6] -= 0.015  # fingers over the jaw and chin, 15 mm before the sheet
    report = check_physics(_crops(landmarks, mpp, depth, _skin_ir(rng)))
    assert report.vetoes and "not a face" in report.vetoes[0]


def test_a_print_with_the_eyes_cut_out_over_a_live_face_is_not_a_face(face, rng):
    landmarks, mpp = face
    depth = _sheet(landmarks, "flat").copy()
    eyes = [SHAPE_POINTS.index(p) for p in (33, 133, 362, 263)]
    depth[eyes] = D + 0.02  # through the holes: the live eyes, 2 cm behind the sheet
    report = check_physics(_crops(landmarks, mpp, depth, _skin_ir(rng)))
    assert report.vetoes and "not a face" in report.vetoes[0]


def test_something_held_before_the_nose_is_too_much_relief(face, rng):
    landmarks, mpp = face
    depth = _face_depth(landmarks, mpp)
    depth[SHAPE_POINTS.index(NOSE_TIP)] -= 0.05
    report = check_physics(_crops(landmarks, mpp, depth, _skin_ir(rng)))
    assert report.vetoes and "something stands before the face" in report.vetoes[0]


def test_a_large_nose_on_a_round_head_is_a_face_not_something_before_it():
    """A 4 cm nose (the synthetic people's largest) on a deep, round head, its relief peaking at the
    painted tip: 60 mm out of the eye corners and cheeks, inside max_nose_m (it was 55 mm)."""
    subject = Subject("large nose", nose_m=0.04, head_depth_m=0.12)
    frameset = render_scene(SceneSpec("live", 0, distance_m=D, subject=subject), 0, np.random.default_rng(0))
    crops = FaceAligner().align(frameset).crops
    report = check_physics(crops)
    assert 0.055 < report.shape.nose_m < PhysicsConfig().max_nose_m, report.shape
    assert report.vetoes == (), report.vetoes


def test_sheet_limit_grows_with_the_stereo_noise_beyond_0_8_m(face, rng):
    landmarks, mpp = face
    depth = _face_depth(landmarks, mpp)
    fit = fit_face_shape(landmarks, depth, mpp)
    crops = _crops(landmarks, mpp, depth, _skin_ir(rng))
    config = PhysicsConfig(min_sheet_rms_m=fit.sheet_rms_m * 0.9)
    assert check_physics(crops, config).vetoes == ()
    far = FaceCrops(crops.rgb, crops.depth, None, crops.box, crops.depth_box,
                    FaceQuality(150.0, 1.2, 50.0, 1.0, True), ir_region=crops.ir_region, landmarks=landmarks,
                    shape_depth_m=depth, metres_per_px=mpp)
    assert "a sheet, not a face" in check_physics(far, config).vetoes[0]  # (1.2 / 0.8)² × the limit


def test_too_few_landmarks_with_depth_cannot_be_measured_and_are_not_a_pass(face, rng):
    landmarks, mpp = face
    depth = _face_depth(landmarks, mpp)
    depth[:25] = np.nan
    report = check_physics(_crops(landmarks, mpp, depth, _skin_ir(rng)))
    assert report.vetoes == () and report.shape is None
    assert "too few face landmarks with depth" in report.unmeasured["face shape"]
    no_nose = _face_depth(landmarks, mpp)
    no_nose[SHAPE_POINTS.index(NOSE_TIP)] = np.nan
    assert "face shape" in check_physics(_crops(landmarks, mpp, no_nose, _skin_ir(rng))).unmeasured


def test_absent_streams_and_an_empty_ir_region_are_unmeasured(face):
    landmarks, mpp = face
    crops = FaceCrops(np.zeros((224, 224, 3), np.uint8), None, None, (0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 1.0),
                      FaceQuality(150.0, None, 50.0, None, True), landmarks=landmarks)
    report = check_physics(crops)
    assert report.vetoes == ()
    assert set(report.unmeasured) == {"face shape", "IR presence", "IR material"}
    empty = check_physics(_crops(landmarks, mpp, _face_depth(landmarks, mpp), np.zeros(0, np.uint8)))
    assert "too few IR pixels" in empty.unmeasured["IR presence"]


def test_dark_ir_is_vetoed_as_a_screen(face, rng):
    landmarks, mpp = face
    report = check_physics(_crops(landmarks, mpp, _face_depth(landmarks, mpp), np.full(4000, 8, np.uint8)))
    assert report.vetoes == (f"IR level {8 / 255:.3f} < 0.08: the face reflects no near-infrared (a screen)",)


@pytest.mark.parametrize("sigma_px", [0.8, 1.5, 2.5])
def test_the_dots_blur_is_measured_from_their_autocorrelation(sigma_px):
    """Dots drawn here (not the renderer's) of a known blur: the estimate is within 15 %, any contrast."""
    for contrast in (0.15, 0.4):
        sigmas = [dot_blur_px(p)[0] for p in _dots(sigma_px, contrast=contrast, size=31)]
        assert np.median(sigmas) == pytest.approx(sigma_px, rel=0.15)


def test_dots_too_sharp_for_skin_are_vetoed_as_a_hard_material(face, rng):
    landmarks, mpp = face
    depth = _face_depth(landmarks, mpp)
    resin = check_physics(_crops(landmarks, mpp, depth, _skin_ir(rng), ir_patches=_skin_dots(mpp, 0.2)))
    assert resin.scatter_mm < 0.6 and len(resin.vetoes) == 1 and "hard material" in resin.vetoes[0]
    skin = check_physics(_crops(landmarks, mpp, depth, _skin_ir(rng)))
    # 2.5 mm reads as about 1.7 mm on 21 px squares (the 6 px high-pass takes some of a wide blur): well clear
    assert skin.vetoes == () and 1.5 < skin.scatter_mm < 2.6


def test_the_material_limit_vetoes_just_below_it_and_passes_just_above(face, rng):
    landmarks, mpp = face
    depth = _face_depth(landmarks, mpp)
    measured = check_physics(_crops(landmarks, mpp, depth, _skin_ir(rng), ir_patches=_skin_dots(mpp, 1.2)))
    for limit, vetoed in ((measured.scatter_mm * 1.02, True), (measured.scatter_mm * 0.98, False)):
        report = check_physics(_crops(landmarks, mpp, depth, _skin_ir(rng), ir_patches=_skin_dots(mpp, 1.2)),
                               PhysicsConfig(min_scatter_mm=limit))
        assert bool(report.vetoes) == vetoed


def test_the_material_check_is_unmeasured_without_dots_patches_or_resolution(face, rng):
    landmarks, mpp = face
    depth = _face_depth(landmarks, mpp)
    flat = tuple(np.full((21, 21), 120, np.uint8) for _ in range(5))  # projector off: nothing fine to measure
    for patches, why in ((flat, "no projector dots on the face"), ((), "no IR patches"), (None, "emitter off")):
        report = check_physics(_crops(landmarks, mpp, depth, _skin_ir(rng), ir_patches=patches))
        assert report.vetoes == () and report.scatter_mm is None and why in report.unmeasured["IR material"]
    far = check_physics(_crops(landmarks, 0.0025, depth, _skin_ir(rng), ir_patches=_skin_dots(mpp, 0.2)))
    assert "face too far" in far.unmeasured["IR material"] and far.scatter_mm is None


def test_sixteen_bit_ir_uses_its_own_full_scale(face, rng):
    landmarks, mpp = face
    ir = (_skin_ir(rng).astype(np.uint16) * 257)
    report = check_physics(_crops(landmarks, mpp, _face_depth(landmarks, mpp), ir))
    assert report.ir_level == pytest.approx(np.median(ir) / 65535)


def test_config_refuses_impossible_limits():
    with pytest.raises(ValueError, match="min_nose_m"):
        PhysicsConfig(min_nose_m=0.05, max_nose_m=0.04)
    with pytest.raises(ValueError, match="min_shape_points"):
        PhysicsConfig(min_shape_points=5)


def _scaled_face(landmarks, mpp, nose_m):
    """The landmark model's face with its relief scaled so the nose stands ``nose_m`` out of the
    eye/cheek plane (every height of the fit scales with the relief)."""
    depth = _face_depth(landmarks, mpp)
    k = nose_m / fit_face_shape(landmarks, depth, mpp).nose_m
    return D + k * (depth - D)


def test_each_face_shape_limit_vetoes_just_below_it_and_passes_just_above(face, rng):
    """Issue 21 item 12: a changed limit must not go unnoticed; each is probed alone, the others relaxed."""
    landmarks, mpp = face
    ir = _skin_ir(rng)
    only_nose = PhysicsConfig(min_midline_m=1e-6, min_shape_scale=1e-6, min_sheet_rms_m=1e-6)
    below, above = (_crops(landmarks, mpp, _scaled_face(landmarks, mpp, h), ir) for h in (0.0096, 0.0104))
    assert check_physics(below, only_nose).vetoes[0].startswith("the nose stands 9.6 mm")
    assert check_physics(above, only_nose).vetoes == ()
    fit = fit_face_shape(landmarks, _face_depth(landmarks, mpp), mpp)
    only_sheet = PhysicsConfig(min_nose_m=1e-6, min_midline_m=1e-6, min_shape_scale=1e-6)
    for k, vetoed in ((0.0029 / fit.sheet_rms_m, True), (0.0031 / fit.sheet_rms_m, False)):
        crops = _crops(landmarks, mpp, D + k * (_face_depth(landmarks, mpp) - D), ir)
        assert bool(check_physics(crops, only_sheet).vetoes) == vetoed, k
