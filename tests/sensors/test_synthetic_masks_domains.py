"""Mask families (material, coverage, eye holes, edges) and named capture domains of the synthetic camera."""
import dataclasses

import numpy as np
import pytest

from mmdg_edge.physics import dot_blur_px
from mmdg_edge.sensors.synthetic import (
    DOMAIN_NAMES, DOMAINS, MASK_FAMILIES, Instrument, MaskMaterial, SceneSpec, SyntheticConfig, create_instrument,
    domain_index, render_frameset, render_scene,
)

FLOOD = SyntheticConfig(projector_dots=False)


def _scene(kind, instrument=None, domain=0, config=SyntheticConfig(), seed=0, distance_m=0.6):
    spec = SceneSpec(kind, domain, distance_m=distance_m, centre=(320.0, 240.0), instrument=instrument)
    return render_scene(spec, 0, np.random.default_rng(seed), config)


def _mask(**fields):
    return Instrument("m", "mask", "mask", MaskMaterial(shading=1.0, **fields))


def _box(fs):
    x0, y0, x1, y1 = fs.metadata["truth"]["box"]
    return x0, y0, x1 - x0, y1 - y0


def _forehead_blur(fs):
    """The dots' blur (σ px) on a 25 px square of the forehead."""
    x0, y0, w, h = _box(fs)
    cx, cy = int(x0 + w / 2), int(y0 + 0.2 * h)
    return dot_blur_px(fs.ir[cy - 12:cy + 13, cx - 12:cx + 13])[0]


@pytest.mark.parametrize("index", range(len(MASK_FAMILIES)))
def test_every_mask_family_renders_labelled_with_its_own_material(index):
    instrument = create_instrument("mask", index)
    assert instrument.family == MASK_FAMILIES[index]
    fs = render_frameset("mask", 0, np.random.default_rng(index), 0, instrument=instrument)
    truth = fs.metadata["truth"]
    assert (truth["label"], truth["attack"], truth["species"], truth["instrument"]) == (
        "attack", "mask", "mask", f"mask-{index:02d}")
    assert fs.metadata["emitter"] == "on"


def test_partial_masks_are_labelled_and_cover_the_upper_face_or_the_eyes():
    upper, eyes = create_instrument("partial_mask", 0).material, create_instrument("partial_mask", 1).material
    assert (upper.coverage, eyes.coverage) == ("upper", "eyes") and upper.eye_holes and eyes.eye_holes
    fs = render_frameset("mask", 1, np.random.default_rng(0), 0, instrument=create_instrument("partial_mask", 0))
    assert (fs.metadata["truth"]["species"], fs.metadata["truth"]["label"]) == ("partial_mask", "attack")


def test_skin_blurs_the_projectors_dots_and_hard_masks_do_not():
    """σ on the forehead: skin (2.5 mm at ~1 mm per px) well above resin (0.2 mm) and above silicone's
    lower scatter; the same physics the material check measures, read straight off the render."""
    live = np.median([_forehead_blur(_scene("live", seed=s)) for s in range(3)])
    resin = np.median([_forehead_blur(_scene("mask", _mask(subsurface_mm=0.2), seed=s)) for s in range(3)])
    silicone = np.median([_forehead_blur(_scene("mask", _mask(subsurface_mm=1.8), seed=s)) for s in range(3)])
    assert resin < 1.0 < silicone < live, (resin, silicone, live)


def test_a_worn_upper_mask_leaves_the_wearers_mouth_and_chin_and_stands_before_the_face():
    upper = _mask(coverage="upper", thickness_m=0.005)
    worn, bare = _scene("mask", upper, config=FLOOD), _scene("live", config=FLOOD)
    x0, y0, w, h = _box(worn)
    cx = int(x0 + w / 2)
    chin = (slice(int(y0 + 0.85 * h), int(y0 + 0.95 * h)), slice(cx - 5, cx + 5))
    np.testing.assert_array_equal(worn.rgb[chin], bare.rgb[chin])  # the wearer's own chin, untouched
    cheek = (slice(int(y0 + 0.3 * h), int(y0 + 0.35 * h)), slice(int(x0 + 0.25 * w), int(x0 + 0.3 * w)))
    # the mask stands 5 mm before the face where it covers it (medians against the 1 mm sensor noise)
    assert np.median(bare.depth[cheek].astype(float)) - np.median(worn.depth[cheek].astype(float)) == \
        pytest.approx(5, abs=1.5)


def test_eye_holes_show_the_wearers_glints_and_a_whole_mask_has_none():
    holes = _scene("mask", _mask(coverage="face", eye_holes=True), config=FLOOD)
    whole = _scene("mask", _mask(coverage="face"), config=FLOOD)
    x0, y0, w, h = _box(holes)
    for side in (-0.21, 0.21):
        ex, ey = int(x0 + w / 2 + side * w), int(y0 + h / 2 - 0.12 * h)
        eye = (slice(ey - 3, ey + 4), slice(ex - 3, ex + 4))
        assert holes.ir[eye].max() > whole.ir[eye].max() + 40  # the cornea mirrors the projector


def test_a_mask_edge_shows_as_a_dark_seam_along_its_border():
    seamed = _scene("mask", _mask(coverage="face", edge=1.0), config=FLOOD)
    plain = _scene("mask", _mask(coverage="face"), config=FLOOD)
    x0, y0, w, h = _box(seamed)
    row = int(y0 + h / 2 + 0.05 * h)
    darker = plain.rgb[row, :, 1].astype(int) - seamed.rgb[row, :, 1].astype(int)
    columns = np.nonzero(darker > 20)[0]
    # two short dark runs where the face ellipse (half width 0.47 face widths) meets the row
    assert len(columns) > 0 and columns.min() == pytest.approx(x0 + w / 2 - 0.47 * w, abs=4)
    assert columns.max() == pytest.approx(x0 + w / 2 + 0.47 * w, abs=4)


def test_fabric_weave_and_mask_validation():
    with pytest.raises(ValueError, match="MaskMaterial.coverage"):
        MaskMaterial(coverage="chin")
    with pytest.raises(ValueError, match="MaskMaterial.subsurface_mm"):
        MaskMaterial(subsurface_mm=-1.0)
    woven = _scene("mask", _mask(weave=0.3, blur=0.03), config=FLOOD)
    smooth = _scene("mask", _mask(blur=0.03), config=FLOOD)
    x0, y0, w, h = _box(woven)
    patch = (slice(int(y0 + 0.3 * h), int(y0 + 0.4 * h)), slice(int(x0 + 0.3 * w), int(x0 + 0.4 * w)))
    assert np.diff(woven.rgb[patch][..., 1].astype(float), axis=1).std() > \
        3 * np.diff(smooth.rgb[patch][..., 1].astype(float), axis=1).std()


def test_capture_domains_are_named_and_change_the_camera():
    assert DOMAIN_NAMES[:4] == ("d435-a", "d435-b", "d435-c", "d435-d") and len(set(DOMAIN_NAMES)) == len(DOMAINS)
    assert domain_index("d455") == DOMAIN_NAMES.index("d455")
    with pytest.raises(ValueError, match="d435-a"):
        domain_index("d999")
    d435 = _scene("live", domain=0)
    d455 = _scene("live", domain=domain_index("d455"))
    # the D455's wide colour lens (fx 390) shows the same face at 0.6 m 390/615 as wide
    assert _box(d455)[2] / _box(d435)[2] == pytest.approx(390 / 615, rel=1e-6)
    assert d455.intrinsics["rgb"].fx == 390.0
    # its 95 mm baseline widens the stereo shadow along the image's left edge (wall at 1.5-3 m)
    assert (d455.depth[:, :40] == 0).all(axis=0).sum() > (d435.depth[:, :40] == 0).all(axis=0).sum()


def test_projector_off_and_sunlight_change_the_infrared():
    on = _scene("live", domain=0)
    off = _scene("live", domain=domain_index("d435-emitter-off"))
    sun = _scene("live", domain=domain_index("d435-sunlight"))
    assert (on.metadata["emitter"], off.metadata["emitter"], sun.metadata["emitter"]) == ("on", "off", "on")
    wall = (slice(20, 80), slice(560, 620))

    def fine(fs):
        return dot_blur_px(fs.ir[wall])[1]

    # the wall's dots: gone with the projector off (sensor noise only), washed out by sunlight
    assert fine(off) < 0.5 * fine(sun) and fine(sun) < fine(on)
    x0, y0, w, h = _box(on)
    face = (slice(int(y0 + 0.3 * h), int(y0 + 0.6 * h)), slice(int(x0 + 0.3 * w), int(x0 + 0.7 * w)))
    assert np.median(sun.ir[face]) > 1.3 * np.median(on.ir[face]) > 1.3 * np.median(off.ir[face])
    assert dataclasses.replace(DOMAINS[0], dot_contrast=0.0).emitter is False


def test_glasses_worn_over_a_mask_stand_before_it_and_darken_their_rims():
    dressed = _scene("mask", _mask(glasses=True), config=FLOOD)
    bare = _scene("mask", _mask(), config=FLOOD)
    x0, y0, w, h = _box(dressed)
    # the rim's lowest point under the left eye (eye 0.21 face widths left, 0.12 heights up; rim 0.1 heights below)
    ex, ey = int(x0 + w / 2 - 0.21 * w), int(y0 + h / 2 - 0.12 * h + 0.1 * h)
    rim = (slice(ey - 1, ey + 2), slice(ex - 2, ex + 3))
    assert dressed.rgb[rim][..., 1].mean() < bare.rgb[rim][..., 1].mean() - 60  # dark acetate on a light mask
    assert np.median(bare.depth[rim].astype(float)) - np.median(dressed.depth[rim].astype(float)) == \
        pytest.approx(12, abs=3)  # the frames stand 12 mm before the mask
    cheek = (slice(int(y0 + 0.6 * h), int(y0 + 0.65 * h)), slice(int(x0 + 0.25 * w), int(x0 + 0.3 * w)))
    np.testing.assert_array_equal(dressed.rgb[cheek], bare.rgb[cheek])  # nothing else changes


def test_a_wig_over_a_mask_covers_its_top_and_spreads_the_dots_as_fibres_do():
    dark = (26.0, 22.0, 20.0)
    wigged = _scene("mask", _mask(wig=True, wig_colour=dark, subsurface_mm=0.2))
    bare = _scene("mask", _mask(subsurface_mm=0.2))
    x0, y0, w, h = _box(wigged)
    cx, top = int(x0 + w / 2), int(y0 + 0.02 * h)
    crown = (slice(top - 12, top + 13), slice(cx - 12, cx + 13))
    assert wigged.rgb[crown].mean() < 45 < bare.rgb[crown].mean()  # dark hair where the mask's was light
    assert dot_blur_px(wigged.ir[crown])[0] > dot_blur_px(bare.ir[crown])[0] + 0.1  # fibres 0.8 mm, resin 0.2 mm
    assert np.median(bare.depth[crown].astype(float)) - np.median(wigged.depth[crown].astype(float)) == \
        pytest.approx(15, abs=3)  # the hair's volume


def test_masks_are_drawn_with_glasses_and_wigs_by_turns():
    worn = [(create_instrument("mask", i).material.glasses, create_instrument("mask", i).material.wig) for i in range(12)]
    assert [i for i, (glasses, _) in enumerate(worn) if glasses] == [2, 5, 8, 11]
    assert [i for i, (_, wig) in enumerate(worn) if wig] == [3, 7, 11]
    assert {create_instrument("mask", i).family for i in (2, 5, 8, 11)} == {"silicone", "resin", "paper", "latex"}
    with pytest.raises(ValueError, match="MaskMaterial.glasses"):
        MaskMaterial(glasses=1)
