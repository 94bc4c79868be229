"""Physical vetoes on hand-made face regions: a flat or bent sheet, a face relief, a depth step, dark and
uniform IR, and the checks that cannot be measured."""
import numpy as np
import pytest

from mmdg_edge.frames import FaceCrops, FaceQuality
from mmdg_edge.physics import PhysicsConfig, check_physics, depth_relief_m

H, W = 120, 100
YY, XX = np.mgrid[0:H, 0:W].astype(np.float64)
BOX = (0.0, 0.0, float(W), float(H))


def _mm(surface_m):
    return np.rint(surface_m * 1000).astype(np.uint16)


def _face_depth():
    """A head: an ellipsoid-ish bowl 0.6 m away plus a 3 cm nose bump in the middle."""
    x, y = (XX - W / 2) / W, (YY - H / 2) / H
    bowl = 0.6 + 0.08 * (x**2 + y**2)
    nose = -0.03 * np.exp(-((XX - W / 2) ** 2 + (YY - H / 2) ** 2) / (2 * 6.0**2))
    return _mm(bowl + nose)


def _skin_ir(rng):
    return np.clip(110 + 35 * rng.standard_normal((H, W)), 0, 255).astype(np.uint8)


def _crops(depth_region=None, ir_region=None):
    """FaceCrops carrying these face regions (the crops themselves do not matter to the checks)."""
    quality = FaceQuality(120.0, 0.6, 50.0, 1.0, True)
    return FaceCrops(np.zeros((224, 224, 3), np.uint8), None, None, BOX, BOX, quality,
                     depth_region=depth_region, ir_region=ir_region)


def test_tilted_plane_and_bent_sheet_have_no_relief():
    tilted = _mm(0.6 + 0.0005 * XX + 0.0003 * YY)
    bent = _mm(0.6 + 0.1 * ((XX - W / 2) / W) ** 2)
    assert depth_relief_m(tilted, 0.001) < 0.002
    assert depth_relief_m(bent, 0.001) < 0.002


def test_face_relief_passes_the_default_threshold():
    # the quadratic absorbs part of the nose bump; what is left is still far above any sheet
    assert PhysicsConfig().min_relief_m < depth_relief_m(_face_depth(), 0.001) < PhysicsConfig().max_relief_m


def test_live_face_passes_every_check():
    report = check_physics(_crops(_face_depth(), _skin_ir(np.random.default_rng(0))))
    assert report.vetoes == () and report.unmeasured == {}
    assert report.ir_level == pytest.approx(110 / 255, abs=0.03)


def test_flat_face_is_vetoed_by_depth():
    report = check_physics(_crops(_mm(np.full((H, W), 0.6)), _skin_ir(np.random.default_rng(0))))
    assert len(report.vetoes) == 1 and report.vetoes[0].startswith("depth relief")


def test_a_sheet_in_front_of_the_torso_is_a_depth_step_not_relief():
    step = _mm(np.where(YY < 0.6 * H, 0.5, 0.8))  # the sheet's lower edge, the torso 30 cm behind
    report = check_physics(_crops(step, _skin_ir(np.random.default_rng(0))))
    assert report.relief_m > 0.25 and len(report.vetoes) == 1 and report.vetoes[0].startswith("depth step")


def test_too_few_depth_pixels_cannot_be_measured_and_are_not_a_pass():
    sparse = np.zeros((H, W), np.uint16)
    sparse[:5, :5] = 600
    assert depth_relief_m(sparse, 0.001) is None
    report = check_physics(_crops(sparse, _skin_ir(np.random.default_rng(0))))
    assert report.relief_m is None and report.vetoes == ()
    assert "25 valid pixels < 200" in report.unmeasured["depth relief"]


def test_absent_streams_and_an_empty_ir_region_are_unmeasured():
    report = check_physics(_crops(None, np.zeros((0, 7), np.uint8)))
    assert report.unmeasured["depth relief"] == "no depth stream"
    assert "too few IR pixels" in report.unmeasured["IR presence"] and "IR texture" in report.unmeasured
    assert check_physics(_crops(_face_depth(), None)).unmeasured == {"IR presence": "no IR stream",
                                                                    "IR texture": "no IR stream"}


def test_dark_ir_is_vetoed_as_a_screen():
    report = check_physics(_crops(_face_depth(), np.full((H, W), 6, np.uint8)))
    assert report.vetoes == (report.vetoes[0],) and "near-infrared" in report.vetoes[0]


def test_uniform_ir_is_vetoed_as_a_mask():
    report = check_physics(_crops(_face_depth(), np.full((H, W), 140, np.uint8)))
    assert report.ir_texture == 0.0 and "uniform material" in report.vetoes[0]


def test_sixteen_bit_ir_uses_its_own_full_scale():
    ir16 = (_skin_ir(np.random.default_rng(1)).astype(np.uint16) * 257)
    report = check_physics(_crops(_face_depth(), ir16))
    assert report.vetoes == () and report.ir_level == pytest.approx(110 / 255, abs=0.03)


def test_config_refuses_an_empty_relief_range():
    with pytest.raises(ValueError, match="max_relief_m"):
        PhysicsConfig(min_relief_m=0.05, max_relief_m=0.04)


def _bump(height_mm):
    """A smooth bump of ``height_mm`` at 0.6 m, in 0.1 mm depth units (finer than the limits tested)."""
    yy, xx = np.mgrid[0:80, 0:80]
    bump = height_mm * np.exp(-((xx - 40) ** 2 + (yy - 40) ** 2) / (2 * 10.0**2))
    return np.rint((600 - bump) * 10).astype(np.uint16)


def _spread_ir(spread, seed=0):
    """16-bit IR around mid scale, uniform within ± ``spread`` of its median."""
    rng = np.random.default_rng(seed)
    return np.rint(30000 * (1 + rng.uniform(-spread, spread, (60, 60)))).astype(np.uint16)


def test_relief_and_ir_texture_are_vetoed_just_below_their_default_limits_and_pass_just_above():
    """Issue 21 item 12: the hand-made inputs sat far from the limits, so a changed limit went unnoticed."""
    shallow, enough = _crops(depth_region=_bump(11.3)), _crops(depth_region=_bump(12.9))
    for crops in (shallow, enough):
        crops.depth_scale_m = 0.0001
    assert 0.0072 < depth_relief_m(shallow.depth_region, 0.0001, PhysicsConfig()) < 0.0080
    assert 0.0080 < depth_relief_m(enough.depth_region, 0.0001, PhysicsConfig()) < 0.0088
    assert check_physics(shallow).vetoes[0].startswith("depth relief 7.")
    assert not check_physics(enough).vetoes
    smooth, textured = _crops(ir_region=_spread_ir(0.035)), _crops(ir_region=_spread_ir(0.04))
    assert check_physics(smooth).vetoes == ("IR texture 0.056 < 0.06: uniform material, not skin (a mask)",)
    assert check_physics(textured).vetoes == () and check_physics(textured).ir_texture == pytest.approx(0.0638, abs=1e-3)
