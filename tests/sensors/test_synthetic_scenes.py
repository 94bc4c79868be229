"""New synthetic scenes: folded, rolled, hand-held and eyes-cut prints, posed heads, a second face, dim and
backlit rooms. Each renders deterministically, is labelled, and has the geometry it claims."""
import dataclasses

import numpy as np
import pytest

pytest.importorskip("skimage.data", reason="scikit-image provides the default face texture")

from mmdg_edge.sensors.synthetic import (  # noqa: E402
    SPECIES, Instrument, PaperMaterial, SceneSpec, Segment, create_instrument, create_subject, draw_scene,
    render_scene, render_sequence,
)


def _print(material=None, seed=0, **fields):
    instrument = None if material is None else Instrument("sheet", "print", "print", material)
    spec = SceneSpec("print", 0, distance_m=0.6, centre=(320.0, 240.0), instrument=instrument, **fields)
    return render_scene(spec, 0, np.random.default_rng(seed))


def _geometry(fs):
    x0, y0, x1, y1 = fs.metadata["truth"]["box"]
    return (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0


def _depth_m(fs, x, y, r=2):
    patch = fs.depth[int(y) - r:int(y) + r + 1, int(x) - r:int(x) + r + 1]
    return float(np.median(patch[patch > 0])) * fs.depth_scale_m


@pytest.mark.parametrize("fold_m", [0.01, 0.04, 0.08])
def test_a_v_fold_puts_the_face_edges_the_fold_depth_behind_the_crease(fold_m):
    fs = _print(sheet_fold="v", sheet_fold_m=fold_m)
    cx, cy, bw, _ = _geometry(fs)
    crease = _depth_m(fs, cx, cy)
    for side in (-0.5, 0.5):
        assert _depth_m(fs, cx + side * bw, cy) - crease == pytest.approx(fold_m, rel=0.2)
    flat = _print()
    assert abs(_depth_m(flat, cx + 0.5 * bw, cy) - _depth_m(flat, cx, cy)) < 0.004


def test_a_w_fold_zig_zags_through_the_face():
    fs = _print(sheet_fold="w", sheet_fold_m=0.05)
    cx, cy, bw, _ = _geometry(fs)
    edge_l, valley, ridge, edge_r = (_depth_m(fs, cx + u * bw, cy) for u in (-0.5, -1 / 6, 1 / 6, 0.5))
    assert valley - edge_l == pytest.approx(0.05, rel=0.2)  # the left crease a valley ...
    assert edge_r - ridge == pytest.approx(0.05, rel=0.2)  # ... the right one a ridge
    assert valley - ridge == pytest.approx(0.05, rel=0.2)


def test_a_rolled_sheet_curves_away_at_both_sides_and_darkens_there_in_infrared():
    fs = _print(sheet_fold="roll", sheet_fold_m=0.05)
    cx, cy, bw, _ = _geometry(fs)
    centre = _depth_m(fs, cx, cy)
    for side in (-0.5, 0.5):
        assert _depth_m(fs, cx + side * bw, cy) - centre == pytest.approx(0.05, rel=0.2)
    # radius (7.5² + 5²) / 10 = 8.1 cm: the edge's normal turns asin(7.5 / 8.1) = 68° away, cos 0.38
    ir = fs.ir.astype(float)
    assert np.median(ir[int(cy) - 5:int(cy) + 5, int(cx + 0.48 * bw) - 2:int(cx + 0.48 * bw) + 1]) < 0.6 * np.median(
        ir[int(cy) - 5:int(cy) + 5, int(cx) - 2:int(cx) + 3])
    # paper does not stretch: the rolled sheet covers less of the image than the flat one
    flat = _print()
    row = int(cy - 0.4 * bw)
    sheet_px = [(np.abs(f.depth[row].astype(int) - 625) < 60).sum() for f in (fs, flat)]
    assert sheet_px[0] < 0.8 * sheet_px[1]


def test_a_hand_holds_the_print_with_skin_over_the_lower_face():
    paper = create_instrument("handheld_print", 0).material
    assert paper.hand == "right"
    held, bare = _print(paper), _print(dataclasses.replace(paper, hand="none"))
    cx, cy, bw, bh = _geometry(held)
    x0, y0, x1, y1 = (int(v) for v in held.metadata["truth"]["box"])
    before = (bare.depth.astype(int) - held.depth.astype(int))[y0:y1, x0:x1]
    hand = (before >= 7) & (before <= 25) & (held.depth[y0:y1, x0:x1] > 0) & (bare.depth[y0:y1, x0:x1] > 0)
    ys, xs = np.nonzero(hand)
    assert hand.sum() > 0.02 * hand.size  # fingers in the face box, 0.7-2.5 cm before the sheet ...
    assert xs.mean() + x0 > cx and ys.mean() + y0 > cy  # ... over the lower cheek on the right
    # skin IR (~(90 + 90·0.55)·0.9 ≈ 130), not the paper's; skin colour: red over blue as the neck's
    skin_ir = held.ir[y0:y1, x0:x1][hand].astype(float)
    assert 100 < np.median(skin_ir) < 160
    rgb = held.rgb[y0:y1, x0:x1][hand].astype(float).mean(axis=0)
    assert rgb[0] > 1.15 * rgb[2]
    left = _print(create_instrument("handheld_print", 1).material)
    changed = np.abs(left.depth.astype(int) - bare.depth.astype(int)) > 5
    assert np.nonzero(changed[y0:y1, x0:x1])[1].mean() + x0 < cx


def test_eyes_cut_print_shows_live_eyes_and_depth_through_its_holes():
    cut = create_instrument("eyes_cut_print", 0)
    wearer = create_subject(5)
    spec = SceneSpec("print", 0, distance_m=0.6, centre=(320.0, 240.0), instrument=cut, subject=create_subject(2),
                     wearer=wearer)
    fs = render_scene(spec, 0, np.random.default_rng(0))
    plain = render_scene(dataclasses.replace(spec, instrument=Instrument(
        "uncut", "print", "print", dataclasses.replace(cut.material, eye_holes=False)), wearer=None), 0,
        np.random.default_rng(0))
    cx, cy, bw, bh = _geometry(fs)
    sheet = _depth_m(fs, cx, cy + 0.3 * bh)
    for side in (-0.21, 0.21):
        eye = (cx + side * create_subject(2).eye_spacing * bw, cy - 0.12 * bh)
        # behind the hole: the wearer's eye, its nose tip 1 cm behind the sheet and the eye 2-4 cm behind that
        assert 0.02 < _depth_m(fs, *eye) - sheet < 0.08
        assert abs(_depth_m(plain, *eye) - sheet) < 0.004
        # the cornea's glint: a spot far above the rest of the hole; the uncut print has none there
        hole = (slice(int(eye[1] - 0.04 * bw), int(eye[1] + 0.04 * bw)), slice(int(eye[0] - 0.08 * bw),
                                                                                int(eye[0] + 0.08 * bw)))
        for frameset, spot in ((fs, True), (plain, False)):
            ir = frameset.ir[hole].astype(float)
            assert (ir.max() - np.median(ir) > 40) == spot, (side, spot, ir.max(), np.median(ir))
    truth = fs.metadata["truth"]
    assert (truth["label"], truth["species"], truth["subject"], truth["wearer"]) == (
        "attack", "eyes_cut_print", "S002", "S005")


@pytest.mark.parametrize("species", ["folded_print", "rolled_print", "handheld_print", "eyes_cut_print"])
def test_print_species_render_deterministically_and_are_labelled(species):
    instrument = create_instrument(species, 1)
    assert (instrument.kind, SPECIES[species]) == ("print", "print")

    def frames(seed):
        return list(render_sequence([Segment("print", 2, subject=create_subject(3), instrument=instrument)],
                                    seed=seed))

    a, b, c = frames(5), frames(5), frames(6)
    for x, y in zip(a, b):
        assert all(np.array_equal(p, q) for p, q in zip((x.rgb, x.depth, x.ir), (y.rgb, y.depth, y.ir)))
        assert x.metadata["truth"] == y.metadata["truth"]
    assert not np.array_equal(a[0].depth, c[0].depth)
    truth = a[0].metadata["truth"]
    assert (truth["label"], truth["attack"], truth["species"], truth["instrument"]) == (
        "attack", "print", species, f"{species}-01")


def test_print_species_alternate_their_forms_and_draw_fold_depths():
    assert [create_instrument("folded_print", i).material.fold for i in range(4)] == ["v", "w", "v", "w"]
    assert create_instrument("rolled_print", 0).material.fold == "roll"
    assert [create_instrument("handheld_print", i).material.hand for i in range(2)] == ["right", "left"]
    assert create_instrument("eyes_cut_print", 3).material.eye_holes
    folds = [draw_scene(np.random.default_rng(i), "print", 0, instrument=create_instrument("folded_print", 0))
             for i in range(30)]
    assert {s.sheet_fold for s in folds} == {"v"}
    depths = [s.sheet_fold_m for s in folds]
    assert 0.01 <= min(depths) < 0.03 and 0.06 < max(depths) <= 0.08


def test_bad_print_forms_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="SceneSpec.sheet_fold"):
        SceneSpec("print", 0, sheet_fold="z")
    with pytest.raises(ValueError, match="SceneSpec.sheet_fold_m"):
        SceneSpec("print", 0, sheet_fold="v", sheet_fold_m=0.2)
    with pytest.raises(ValueError, match="SceneSpec.sheet_fold_m"):
        SceneSpec("replay", 0, sheet_fold="v", sheet_fold_m=0.05)
    with pytest.raises(ValueError, match="PaperMaterial.fold_m"):
        PaperMaterial(fold="v")
    with pytest.raises(ValueError, match="PaperMaterial.hand"):
        PaperMaterial(hand="middle")
    with pytest.raises(ValueError, match="SceneSpec.wearer"):
        SceneSpec("print", 0, instrument=create_instrument("print", 0), wearer=create_subject(1))
    with pytest.raises(ValueError, match="Segment.wearer"):
        Segment("live", 3, wearer=create_subject(1))
    with pytest.raises(ValueError, match="folded_print"):
        create_instrument("origami", 0)
    with pytest.raises(ValueError, match="kind"):
        create_instrument("rolled_print", 0, kind="replay")


def test_a_collection_can_stage_the_print_species():
    from mmdg_edge.sensors.synthetic import SyntheticCamera, presentation

    frames = list(SyntheticCamera(**presentation("S004", "rolled_print", "rolled_print-01", frames=2)))
    assert [(f.metadata["truth"]["label"], f.metadata["truth"]["species"]) for f in frames] == [
        ("attack", "rolled_print")] * 2
    with pytest.raises(ValueError, match="eyes_cut_print"):
        presentation("S004", "origami", "origami-00")
