"""Synthetic attack instruments: varied papers, screens and masks, lit by the camera's own illuminator."""
import dataclasses

import cv2
import numpy as np
import pytest


from mmdg_edge.sensors import render
from mmdg_edge.sensors.synthetic import (
    ATTACK_KINDS, MASK_FAMILIES, Instrument, MaskMaterial, PaperMaterial, SceneSpec, ScreenMaterial, Segment,
    SyntheticCamera, SyntheticConfig, create_instrument, create_subject, draw_scene, render_frameset, render_scene,
    render_sequence,
)

FX, PPX, PPY = 615.0, 320.0, 240.0
FLOOD = SyntheticConfig(projector_dots=False)  # shading, gloss and glare without the projector's dots over them


def _scene(kind, instrument=None, **fields):
    spec = SceneSpec(kind, 0, distance_m=0.6, centre=(320.0, 240.0), instrument=instrument, **fields)
    return render_scene(spec, 0, np.random.default_rng(0), FLOOD)


def _mirror_point(tilt_m, pitch_m):
    """Where a flat sheet tilted by tilt/pitch metres per 15 cm face width mirrors the illuminator into the
    lens: its normal points at the camera, x = ppx - fx·dz/dX, y = ppy - fx·dz/dY."""
    return PPX - FX * tilt_m / 0.15, PPY - FX * pitch_m / 0.15


def test_instruments_are_deterministic_and_their_materials_vary():
    assert create_instrument("print", 5) == create_instrument("print", 5)
    for kind in ATTACK_KINDS:
        count = len(MASK_FAMILIES) if kind == "mask" else 4  # material families per kind
        first = [create_instrument(kind, i) for i in range(count)]
        assert [i.id for i in first] == [f"{kind}-{i:02d}" for i in range(count)]
        assert len({i.family for i in first}) == count
        again = create_instrument(kind, count)
        assert again.family == first[0].family and again.material != first[0].material
    assert all(create_instrument("mask", i).material.shading > 0.8 for i in range(8))  # never flat
    papers = [create_instrument("print", i).material for i in range(4)]
    assert len({p.halftone_period_px for p in papers}) == 4 and {p.gloss_ir > 0 for p in papers} == {True, False}


def test_a_species_of_your_own_renders_as_its_kind_and_is_recorded():
    cutout = create_instrument("cutout", 3, kind="print")
    assert (cutout.id, cutout.species, cutout.kind) == ("cutout-03", "cutout", "print")
    fs = render_frameset("print", 1, np.random.default_rng(0), 0, subject=create_subject(2), instrument=cutout)
    truth = fs.metadata["truth"]
    assert (truth["attack"], truth["species"], truth["instrument"], truth["subject"]) == (
        "print", "cutout", "cutout-03", "S002")
    assert fs.origin == "synthetic"


@pytest.mark.parametrize("tilt_m, pitch_m", [(0.01, -0.02), (-0.015, 0.005)])
def test_screen_glass_shows_the_illuminator_where_it_faces_the_camera(tilt_m, pitch_m):
    phone = Instrument("phone", "replay", "replay", ScreenMaterial(glare_ir=150.0, glare_spread=0.03))
    fs = _scene("replay", phone, sheet_tilt_m=tilt_m, sheet_pitch_m=pitch_m)
    smooth = cv2.GaussianBlur(fs.ir, (0, 0), 3)
    y, x = np.unravel_index(np.argmax(smooth), smooth.shape)
    expected = _mirror_point(tilt_m, pitch_m)
    assert abs(x - expected[0]) <= 3 and abs(y - expected[1]) <= 3, ((x, y), expected)
    assert fs.ir[y, x] > 120  # a bright spot on a screen that emits no near-infrared ...
    far = fs.ir[int(expected[1]) - 2:int(expected[1]) + 3, int(expected[0]) + 60:int(expected[0]) + 65]
    assert np.median(far) < 25  # ... and dark glass 2 cm away (σ 0.03 rad ≈ 18 px)
    plain = _scene("replay", sheet_tilt_m=tilt_m, sheet_pitch_m=pitch_m)  # default screen: no glare at all
    assert np.percentile(plain.ir[120:360, 200:440], 99) < 25


def test_glossy_paper_adds_the_illuminator_highlight_and_matte_paper_does_not():
    glossy = PaperMaterial(name="glossy", ir_paper=120.0, ir_contrast=20.0, gloss_ir=80.0, gloss_spread=0.04)
    matte = dataclasses.replace(glossy, gloss_ir=0.0)
    fields = dict(sheet_tilt_m=0.01, sheet_pitch_m=0.0)
    shiny = _scene("print", Instrument("g", "print", "print", glossy), **fields)
    flat = _scene("print", Instrument("m", "print", "print", matte), **fields)
    x, y = (int(round(v)) for v in _mirror_point(0.01, 0.0))
    # Same scene and noise: the difference is the highlight, 80 × ir_gain (√(0.6 m / 0.6 m ± 4 mm) ≈ 1).
    difference = shiny.ir.astype(int) - flat.ir.astype(int)
    assert difference[y, x] == pytest.approx(80, abs=3)
    assert np.abs(difference[y, x + 110]).max() <= 1  # 110 px = 0.18 rad away: e^(-0.18²/(2·0.04²)) ≈ 0
    np.testing.assert_array_equal(shiny.rgb, flat.rgb)  # the illuminator is near-infrared: RGB unchanged


def test_paper_contrast_and_bend_come_from_the_instrument():
    low = create_instrument("print", 3).material  # thin newsprint
    high = dataclasses.replace(low, contrast=1.0, paper_white=10.0)
    faces = [_scene("print", Instrument(str(i), "print", "print", m)).rgb[200:280, 290:350].astype(float)
             for i, m in enumerate((low, high))]
    assert faces[1].std() > 1.2 * faces[0].std()
    assert 0.01 <= low.bend_m[0] and low.bend_m[1] == 0.04
    bends = [draw_scene(np.random.default_rng(i), "print", 0, instrument=create_instrument("print", 3)).sheet_bend_m
             for i in range(20)]
    assert min(bends) >= 0.01 and max(bends) <= 0.04
    fs = _scene("print", create_instrument("print", 3), sheet_bend_m=0.03, sheet_tilt_m=0.0)
    x0, y0, x1, y1 = fs.metadata["truth"]["box"]
    bw, cx, row = x1 - x0, (x0 + x1) / 2, int((y0 + y1) / 2)

    def depth_at(u):
        patch = fs.depth[row - 2:row + 3, int(cx + u * bw) - 2:int(cx + u * bw) + 3]
        return float(np.median(patch[patch > 0])) / 1000

    # sag 3 cm one face width out: 0.03 · 0.8² = 1.9 cm at 0.8 face widths
    assert np.mean([depth_at(-0.8), depth_at(0.8)]) - depth_at(0.0) == pytest.approx(0.0192, abs=0.003)


def test_illumination_by_hand():
    canvas = render.Canvas([np.zeros((4, 4), np.float32)] * 3, np.zeros((4, 4), np.float32),
                           np.zeros((4, 4), np.float32), (1.0, 1.0, 1.0), 1.0, render.load_default_texture(),
                           (0.0, 0.0, 2.0, 2.0), 0.6, (FX, PPX, PPY), np.zeros((4, 4), np.float32))
    x, y = np.float32([[PPX, PPX + FX]]), np.float32([[PPY]])
    # facing the camera on the axis: cos 1, mirror; one focal length right (45° ray) it faces 45° away
    cosine, miss = canvas.illumination(x, y, 0.0, 0.0)
    np.testing.assert_allclose(cosine, [[1.0, np.sqrt(0.5)]], rtol=1e-6)
    np.testing.assert_allclose(miss, [[0.0, 1.0]], atol=1e-6)
    # slope -1 at the 45° ray: the surface faces the camera there (cos 1, mirror), 45° away on the axis
    cosine, miss = canvas.illumination(x, y, -1.0, 0.0)
    np.testing.assert_allclose(cosine, [[np.sqrt(0.5), 1.0]], rtol=1e-6)
    np.testing.assert_allclose(miss, [[1.0, 0.0]], atol=1e-6)


def test_mask_infrared_is_shaded_by_the_camera_illuminator():
    resin = create_instrument("mask", 0)
    shaded = _scene("mask", resin)
    flat = _scene("mask")  # the default mask: one IR value everywhere
    x0, y0, x1, y1 = shaded.metadata["truth"]["box"]
    bw, bh, cx, cy = x1 - x0, y1 - y0, (x0 + x1) / 2, (y0 + y1) / 2
    row = int(cy - 0.12 * bh)  # the head's widest row: the surface turns away towards the ears

    def profile(fs):
        return [float(np.median(fs.ir[row - 2:row + 3, int(cx + u * bw) - 2:int(cx + u * bw) + 3]))
                for u in (0.35, 0.45, 0.52, 0.57)]

    lit = profile(shaded)
    assert all(a > b + 5 for a, b in zip(lit, lit[1:])), lit
    assert lit[-1] < 0.6 * lit[0]
    assert max(profile(flat)) - min(profile(flat)) <= 8  # sensor noise only
    inner = (slice(int(y0 + 0.15 * bh), int(y1 - 0.15 * bh)), slice(int(x0 + 0.2 * bw), int(x1 - 0.2 * bw)))

    def texture(fs):
        p10, p50, p90 = np.percentile(fs.ir[inner].astype(float), (10, 50, 90))
        return (p90 - p10) / p50

    assert texture(shaded) > 3 * texture(flat)


def test_mask_materials_tint_the_face():
    resin, latex = create_instrument("mask", 0), create_instrument("mask", 1)
    assert latex.family == "latex"

    def red_over_blue(instrument):
        rgb = _scene("mask", instrument).rgb[200:280, 290:350].reshape(-1, 3).astype(float).mean(axis=0)
        return rgb[0] / rgb[2]

    assert red_over_blue(latex) > 1.05 * red_over_blue(resin)


def test_a_print_of_a_subject_shows_that_subject():
    light, dark = create_subject(1), create_subject(4)  # the lightest and the darkest of the first five
    paper = create_instrument("print", 0)

    def face(kind, subject, instrument=None):
        fs = render_frameset(kind, 0, np.random.default_rng(1), 0, distance_m=0.6, centre=(320.0, 240.0),
                             subject=subject, instrument=instrument)
        return fs.rgb[210:270, 290:350].reshape(-1, 3).astype(float).mean(axis=0)

    printed = face("print", dark, paper)
    assert np.linalg.norm(printed - face("live", dark)) < np.linalg.norm(printed - face("live", light))


def test_camera_draws_instruments_of_the_drawn_class_and_records_them():
    instruments = [create_instrument("print", i) for i in range(3)] + [create_instrument("tablet", 0, kind="replay")]
    subjects = [create_subject(i) for i in range(3)]
    camera = SyntheticCamera(seed=2, num_frames=24, subjects=subjects, instruments=instruments)
    assert camera.classes == ("live", "print", "replay")  # live plus the kinds the instruments cover
    seen = set()
    for fs in camera:
        truth = fs.metadata["truth"]
        assert truth["subject"] in {"S000", "S001", "S002"}
        if truth["label"] == "live":
            assert truth["instrument"] is None and truth["species"] is None
        else:
            instrument = next(i for i in instruments if i.id == truth["instrument"])
            assert (instrument.kind, instrument.species) == (truth["attack"], truth["species"])
            seen.add(truth["instrument"])
    assert len(seen) >= 3
    frames = list(render_sequence([Segment("live", 2, subject=subjects[1]),
                                   Segment("replay", 2, subject=subjects[1], instrument=instruments[3])], seed=1))
    assert [(f.metadata["truth"]["subject"], f.metadata["truth"]["instrument"]) for f in frames] == [
        ("S001", None), ("S001", None), ("S001", "tablet-00"), ("S001", "tablet-00")]


def test_bad_instruments_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="kind='print'"):
        create_instrument("cutout", 0)
    with pytest.raises(ValueError, match="kind"):
        create_instrument("print", 0, kind="mask")
    with pytest.raises(ValueError, match="Instrument.material"):
        Instrument("x", "print", "print", MaskMaterial())
    with pytest.raises(ValueError, match="PaperMaterial.gloss_spread"):
        PaperMaterial(gloss_spread=0.0)
    with pytest.raises(ValueError, match="SceneSpec.instrument"):
        SceneSpec("live", 0, instrument=create_instrument("mask", 0))
    with pytest.raises(ValueError, match="Segment.instrument"):
        Segment("print", 3, instrument=create_instrument("replay", 0))
    with pytest.raises(ValueError, match="none of kind 'mask'"):
        SyntheticCamera(classes=("live", "mask"), instruments=[create_instrument("print", 0)])
    with pytest.raises(ValueError, match="already names a different Instrument"):
        SyntheticCamera(instruments=[create_instrument("print", 0), dataclasses.replace(
            create_instrument("print", 1), id="print-00")])
