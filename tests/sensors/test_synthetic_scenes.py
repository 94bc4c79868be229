"""New synthetic scenes: folded, rolled, hand-held and eyes-cut prints, posed heads, a second face, dim and
backlit rooms. Each renders deterministically, is labelled, and has the geometry it claims."""
import dataclasses

import cv2

import numpy as np
import pytest

pytest.importorskip("skimage.data", reason="scikit-image provides the default face texture")

from mmdg_edge.sensors.synthetic import (  # noqa: E402
    SPECIES, Instrument, PaperMaterial, SceneSpec, Segment, SyntheticConfig, create_instrument, create_subject,
    draw_scene, render_scene, render_sequence,
)

FLOOD = SyntheticConfig(projector_dots=False)  # glints and shading without the projector's dots over them


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
    fs = render_scene(spec, 0, np.random.default_rng(0), FLOOD)
    plain = render_scene(dataclasses.replace(spec, instrument=Instrument(
        "uncut", "print", "print", dataclasses.replace(cut.material, eye_holes=False)), wearer=None), 0,
        np.random.default_rng(0), FLOOD)
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


def test_turning_a_plane_by_hand():
    from mmdg_edge.sensors.head_pose import turn_height_field

    # A plane at depth 0 turned 30° about the axis at (x 20, depth 10): the point u px right of the axis
    # goes to x = 20 + u·cos + 10·sin, depth 10 + u·sin - 10·cos (the near side, -x, comes forward).
    plane, inside = np.zeros((3, 41), np.float32), np.ones((3, 41), bool)
    map_x, map_y, turned, covered = turn_height_field(plane, inside, (20.0, 1.0, 10.0), 30.0, 0.0)
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    x = np.arange(41)
    u = (x - 20 - 10 * s) / c
    inside_x = np.abs(u) <= 20
    np.testing.assert_array_equal(covered[1], inside_x)
    np.testing.assert_allclose(map_x[1][inside_x], 20 + u[inside_x], atol=1e-4)
    np.testing.assert_allclose(turned[1][inside_x], 10 + u[inside_x] * s - 10 * c, atol=1e-4)
    np.testing.assert_array_equal(map_y, np.broadcast_to(np.arange(3.0)[:, None], (3, 41)))
    # turned the other way, the answer is the mirror image
    mirror = turn_height_field(plane, inside, (20.0, 1.0, 10.0), -30.0, 0.0)
    np.testing.assert_array_equal(mirror[3], covered[:, ::-1])
    np.testing.assert_allclose(mirror[0][1][inside_x[::-1]], 40 - map_x[1][inside_x][::-1], atol=1e-4)
    # a pitch is the same turn on the columns: the face lifts, so the near (lower) part comes forward
    _, map_y, turned_p, covered_p = turn_height_field(plane.T.copy(), inside.T.copy(), (1.0, 20.0, 10.0), 0.0, -30.0)
    np.testing.assert_array_equal(covered_p[:, 1], inside_x)
    np.testing.assert_allclose(turned_p[:, 1][inside_x], turned[1][inside_x], atol=1e-4)


def _head(kind="live", yaw_deg=0.0, pitch_deg=0.0, subject=None):
    subject = subject or create_subject(3)
    instrument = create_instrument("mask", 1) if kind == "mask" else None
    spec = SceneSpec(kind, 0, distance_m=0.6, centre=(320.0, 240.0), subject=subject, instrument=instrument,
                     yaw_deg=yaw_deg, pitch_deg=pitch_deg)
    return render_scene(spec, 0, np.random.default_rng(1), FLOOD)


def _nose_tip(fs):
    """The nearest point of the face (a 5×5 mean against noise), image x and y."""
    x0, y0, x1, y1 = (int(v) for v in fs.metadata["truth"]["box"])
    depth = fs.depth[y0:y1, x0:x1].astype(np.float32)
    depth[depth == 0] = 9999
    y, x = np.unravel_index(np.argmin(cv2.blur(depth, (5, 5))), depth.shape)
    return x + x0, y + y0


@pytest.mark.parametrize("kind", ["live", "mask"])
@pytest.mark.parametrize("yaw_deg", [20.0, -30.0])
def test_a_turned_head_moves_its_nose_to_the_turned_side(kind, yaw_deg):
    # (Beyond ~35° the near side of this ellipsoid head's brow comes nearer than the nose tip, which sits
    # 0.29 box heights below the head's centre: the nearest point is then no longer the nose.)
    subject = create_subject(3)
    front, turned = _head(kind, subject=subject), _head(kind, yaw_deg, subject=subject)
    (fx, fy), (tx, ty) = _nose_tip(front), _nose_tip(turned)
    # the nose tip (nose_m before the face plane, which the head's curve has taken 0.0985·head_depth_m back
    # at the tip's height, 0.29 box below the head's centre) swings round the centre
    px_per_m = 615.0 / 0.6
    expected = ((1 - 0.0985) * subject.head_depth_m + subject.nose_m) * px_per_m * np.sin(np.radians(yaw_deg))
    # Vertically it stays within 4 px: S003's nose is 10 % longer than the photo's (nose_length), and
    # along a longer ridge the nearest point slides a few rows further than along the photo's nose.
    assert tx - fx == pytest.approx(expected, abs=4) and abs(ty - fy) <= 4
    assert turned.metadata["truth"]["yaw_deg"] == yaw_deg and turned.metadata["truth"]["label"] == (
        "live" if kind == "live" else "attack")


@pytest.mark.parametrize("yaw_deg", [20.0, -20.0])
def test_a_turned_head_brings_the_near_cheek_forward(yaw_deg):
    front, turned = _head(), _head(yaw_deg=yaw_deg)
    _, _, bw, _ = _geometry(turned)
    side = np.sign(yaw_deg)
    for fs in (front, turned):
        x, y = _nose_tip(fs)
        near, far = (_depth_m(fs, x - side * 0.25 * bw, y), _depth_m(fs, x + side * 0.25 * bw, y))
        # facing the camera both cheeks lie alike; turned 20°, the far one is ~4 cm deeper
        assert (far - near > 0.02) == (fs is turned), (far, near)


def test_the_eyes_glints_turn_with_the_head():
    subject = create_subject(3)

    def glints(fs):
        """Mean x of the two brightest IR spots (pixels within 20 of the face's maximum, split at the widest gap)."""
        x0, y0, x1, y1 = (int(v) for v in fs.metadata["truth"]["box"])
        face = fs.ir[y0:y1, x0:x1].astype(float)
        xs = np.sort(np.nonzero(face > face.max() - 20)[1]) + x0
        gap = np.argmax(np.diff(xs)) + 1
        return [xs[:gap].mean(), xs[gap:].mean()]

    front, turned = glints(_head(subject=subject)), glints(_head(yaw_deg=20.0, subject=subject))
    # an eye ~1.6 cm behind the face plane, 0.21 face widths out: it swings by (head_depth - 1.6 cm)·sin 20°
    # and its offset shrinks by cos 20°
    shift = (subject.head_depth_m - 0.016) * 615.0 / 0.6 * np.sin(np.radians(20))
    assert np.mean(turned) - np.mean(front) == pytest.approx(shift, abs=4)
    assert (turned[1] - turned[0]) == pytest.approx((front[1] - front[0]) * np.cos(np.radians(20)), abs=4)


def test_a_pitched_head_moves_its_nose_up_or_down():
    front = _nose_tip(_head())
    assert _nose_tip(_head(pitch_deg=20.0))[1] < front[1] - 25
    # Chin down, the nearest point slides up the nose from its tip (the brow comes forward): 17 px.
    assert _nose_tip(_head(pitch_deg=-15.0))[1] > front[1] + 12
    both = _head(yaw_deg=30.0, pitch_deg=-15.0)
    assert both.metadata["truth"]["pitch_deg"] == -15.0
    # Turned as well, the near brow is nearer than the nose tip; the tip, where the renderer turned it,
    # is still the nose: nearer than the face beside it (20 px towards the far side, in the turned head).
    tip = both.metadata["truth"]["faces"][0]["landmarks"]["nose_tip"]
    assert tip[0] > front[0] + 40 and tip[1] > front[1] + 20
    assert _depth_m(both, tip[0] - 20, tip[1]) - _depth_m(both, *tip) > 0.01


def test_posed_heads_are_deterministic_and_scripted():
    a, b = _head(yaw_deg=-25.0, pitch_deg=10.0), _head(yaw_deg=-25.0, pitch_deg=10.0)
    assert all(np.array_equal(p, q) for p, q in zip((a.rgb, a.depth, a.ir), (b.rgb, b.depth, b.ir)))
    frames = list(render_sequence([Segment("live", 1, yaw_deg=15.0), Segment("mask", 1, pitch_deg=-10.0)], seed=2))
    assert [(f.metadata["truth"]["yaw_deg"], f.metadata["truth"]["pitch_deg"]) for f in frames] == [
        (15.0, 0.0), (0.0, -10.0)]
    scene = draw_scene(np.random.default_rng(0), "live", 0, yaw_deg=-40, pitch_deg=20)
    assert (scene.yaw_deg, scene.pitch_deg) == (-40.0, 20.0)


def test_bad_poses_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="SceneSpec.yaw_deg"):
        SceneSpec("live", 0, yaw_deg=45.0)
    with pytest.raises(ValueError, match="SceneSpec.pitch_deg"):
        SceneSpec("mask", 0, pitch_deg=-25.0)
    with pytest.raises(ValueError, match="SceneSpec.yaw_deg"):
        SceneSpec("print", 0, yaw_deg=10.0)
    with pytest.raises(ValueError, match="Segment.yaw_deg"):
        Segment("live", 2, yaw_deg="left")


def test_a_second_face_beside_a_live_one_is_in_view_and_makes_the_frameset_an_attack():
    from mmdg_edge.sensors.synthetic import SecondFace

    other = SecondFace("print", create_subject(7), create_instrument("print", 1), side=1)
    scene = draw_scene(np.random.default_rng(3), "live", 0, distance_m=0.6, subject=create_subject(2),
                       second_face=other)
    fs = render_scene(scene, 0, np.random.default_rng(3))
    truth = fs.metadata["truth"]
    assert (truth["label"], truth["attack"], truth["species"], truth["instrument"], truth["subject"]) == (
        "attack", "print", "print", "print-01", "S002")
    live, printed = truth["faces"]
    assert (live["label"], live["subject"], live["instrument"]) == ("live", "S002", None)
    assert (printed["label"], printed["subject"], printed["instrument"]) == ("attack", "S007", "print-01")
    assert live["box"] == truth["box"]
    (lx0, ly0, lx1, ly1), (px0, py0, px1, py1) = live["box"], printed["box"]
    # both fully in view, the same size within the subjects' widths, side by side without overlap
    assert 0 <= min(lx0, px0) and max(lx1, px1) <= 640 and 0 <= min(ly0, py0) and max(ly1, py1) <= 480
    assert (px1 - px0) / (lx1 - lx0) == pytest.approx(create_subject(7).width_scale / create_subject(2).width_scale,
                                                      rel=0.01)
    assert px0 > lx1 and (px0 + px1) / 2 - (lx0 + lx1) / 2 == pytest.approx(1.7 * (lx1 - lx0), rel=0.01)
    # what is where: a face with relief and skin IR at the live box, a flat sheet at the printed one
    for (x0, y0, x1, y1), relief in ((live["box"], True), (printed["box"], False)):
        w = x1 - x0
        nose, cheek = _depth_m(fs, (x0 + x1) / 2, (y0 + y1) / 2 + 0.05 * w), _depth_m(fs, x0 + 0.2 * w, (y0 + y1) / 2)
        assert (cheek - nose > 0.015) == relief, (relief, cheek - nose)
        assert abs(nose - 0.6) < 0.04
    plain = render_scene(dataclasses.replace(scene, second_face=None), 0, np.random.default_rng(3)).metadata["truth"]
    assert (plain["label"], len(plain["faces"])) == ("live", 1)


def test_a_second_face_is_scripted_deterministic_and_refused_out_of_view():
    from mmdg_edge.sensors.synthetic import SecondFace

    screen = SecondFace("replay", create_subject(1), side=-1)
    a, b = (list(render_sequence([Segment("live", 2, second_face=screen)], seed=4)) for _ in range(2))
    for x, y in zip(a, b):
        assert np.array_equal(x.rgb, y.rgb) and x.metadata["truth"] == y.metadata["truth"]
    faces = a[0].metadata["truth"]["faces"]
    assert [f["label"] for f in faces] == ["live", "attack"] and faces[1]["box"][2] < faces[0]["box"][0]
    assert a[0].metadata["truth"]["species"] == "replay"
    with pytest.raises(ValueError, match="SceneSpec.second_face"):
        render_scene(SceneSpec("live", 0, centre=(500.0, 240.0), second_face=SecondFace()), 0,
                     np.random.default_rng(0))
    with pytest.raises(ValueError, match="SecondFace.kind"):
        SecondFace("mask")
    with pytest.raises(ValueError, match="SecondFace.instrument"):
        SecondFace("print", instrument=create_instrument("replay", 0))
    with pytest.raises(ValueError, match="SecondFace.side"):
        SecondFace(side=0)
    with pytest.raises(ValueError, match="Segment.second_face"):
        Segment("empty", 1, second_face=SecondFace())


def test_dim_and_backlit_rooms_darken_the_face_and_light_the_wall():
    from mmdg_edge.sensors.synthetic import LIGHTINGS

    def render(lighting):
        scene = draw_scene(np.random.default_rng(8), "live", 0, distance_m=0.6, centre=(320.0, 240.0),
                           lighting=lighting)
        return scene, render_scene(scene, 0, np.random.default_rng(8))

    (room_scene, room), (dim_scene, dim), (backlit_scene, backlit) = (render(name) for name in LIGHTINGS)
    assert 0.25 <= dim_scene.brightness <= 0.35 and dim_scene.backlight == 0.0
    assert 0.45 <= backlit_scene.brightness <= 0.6 and 0.8 <= backlit_scene.backlight <= 1.2
    # the same draws otherwise: the same room, the light alone differs
    assert (dim_scene.wall_m, dim_scene.wall_colour) == (room_scene.wall_m, room_scene.wall_colour)
    x0, y0, x1, y1 = (int(v) for v in room.metadata["truth"]["box"])
    face = (slice(y0 + 20, y1 - 20), slice(x0 + 20, x1 - 20))
    wall = (slice(10, 60), slice(500, 630))

    def mean(fs, region):
        return float(fs.rgb[region].mean())

    ratio = dim_scene.brightness / room_scene.brightness
    assert mean(dim, face) == pytest.approx(ratio * mean(room, face), rel=0.1)
    assert mean(backlit, wall) > 240 and mean(backlit, face) < 0.7 * mean(room, face)
    assert mean(backlit, wall) > 2 * mean(backlit, face)
    # the camera's own illuminator lights the face in IR whatever the room's light
    assert float(backlit.ir[face].mean()) == pytest.approx(float(room.ir[face].mean()), abs=2)
    truth = backlit.metadata["truth"]
    assert (truth["brightness"], truth["backlight"]) == (backlit_scene.brightness, backlit_scene.backlight)
    frames = list(render_sequence([Segment("live", 1, lighting="dim"), Segment("print", 1, lighting="backlit")],
                                  seed=1))
    assert frames[0].metadata["truth"]["brightness"] < 0.4 and frames[1].metadata["truth"]["backlight"] >= 0.8
    with pytest.raises(ValueError, match="lighting"):
        draw_scene(np.random.default_rng(0), "live", 0, lighting="disco")
    with pytest.raises(ValueError, match="Segment.lighting"):
        Segment("live", 1, lighting="disco")
    with pytest.raises(ValueError, match="SceneSpec.backlight"):
        SceneSpec("live", 0, backlight=3.0)


@pytest.mark.parametrize("distance_m", [0.35, 1.2])
@pytest.mark.parametrize("kind", ["live", "print"])
def test_faces_render_from_35_cm_to_1_2_m(kind, distance_m):
    scene = draw_scene(np.random.default_rng(2), kind, 0, distance_m=distance_m, centre=(320.0, 240.0))
    fs = render_scene(scene, 0, np.random.default_rng(2))
    truth = fs.metadata["truth"]
    x0, y0, x1, y1 = truth["box"]
    assert x1 - x0 == pytest.approx(615.0 * 0.15 / distance_m, rel=0.01)
    assert 0 <= x0 and x1 <= 640 and 0 <= y0 and y1 <= 480
    cheek = _depth_m(fs, x0 + 0.25 * (x1 - x0), (y0 + y1) / 2)
    assert cheek == pytest.approx(distance_m, abs=0.03)


def test_the_wall_stands_behind_the_farthest_face_of_a_sequence_whatever_the_room_drawn():
    """The wall is drawn 1.5-3 m away: a face asked for at 1.3 m (or walking back to 1.6 m in a later
    segment) must push it back, not fail for one seed in fifteen."""
    for seed in range(40):
        (near,) = render_sequence([Segment("live", 1, distance_start_m=1.3)], seed=seed)
        assert near.metadata["truth"]["distance_m"] == pytest.approx(1.3, abs=0.01)  # (and its sway)
        assert draw_scene(np.random.default_rng(seed), "live", 0, distance_m=1.3).wall_m >= 1.6
    frames = list(render_sequence([Segment("live", 1, distance_start_m=0.6),
                                   Segment("live", 3, distance_start_m=1.0, distance_end_m=1.6)], seed=5))
    assert [f.metadata["truth"]["distance_m"] for f in frames] == pytest.approx([0.6, 1.0, 1.3, 1.6], abs=0.01)
    # Within 1.2 m the room is the one the seed always drew (the recorded digests stay put).
    assert draw_scene(np.random.default_rng(4), "live", 0, distance_m=0.6).wall_m == \
        draw_scene(np.random.default_rng(4), "live", 0, distance_m=1.2).wall_m


def test_scene_numbers_of_the_wrong_type_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="SceneSpec.sheet_fold_m"):
        SceneSpec("print", 0, sheet_fold="roll", sheet_fold_m="deep")
    with pytest.raises(ValueError, match="SceneSpec.backlight"):
        SceneSpec("live", 0, backlight=True)
    assert SceneSpec("live", 0, backlight=np.float32(0.5)).backlight == 0.5


def _glints(fs):
    """Mean x and y of the two brightest IR spots (within 20 of the face's maximum, split at the widest x gap)."""
    x0, y0, x1, y1 = (int(v) for v in fs.metadata["truth"]["box"])
    face = fs.ir[y0:y1, x0:x1].astype(float)
    ys, xs = np.nonzero(face > face.max() - 20)
    order = np.argsort(xs)
    xs, ys = xs[order] + x0, ys[order] + y0
    gap = np.argmax(np.diff(xs)) + 1
    return [(xs[:gap].mean(), ys[:gap].mean()), (xs[gap:].mean(), ys[gap:].mean())]


@pytest.mark.parametrize("yaw_deg, pitch_deg", [(0.0, 0.0), (20.0, 0.0), (-30.0, 10.0)])
def test_landmarks_are_where_the_glints_and_the_nose_tip_are(yaw_deg, pitch_deg):
    fs = _head(yaw_deg=yaw_deg, pitch_deg=pitch_deg)
    landmarks = fs.metadata["truth"]["faces"][0]["landmarks"]
    for measured, truth in zip(_glints(fs), landmarks["eyes"]):
        assert measured == pytest.approx(truth, abs=2.5)
    # the turned nose tip is on the nose's near surface: where the face is nearest, but for a lifted head
    # a few pixels above it (the nearest point then lies down the nose), as deep within 3 mm
    nearest, tip = _nose_tip(fs), landmarks["nose_tip"]
    assert abs(nearest[0] - tip[0]) <= 3 and abs(nearest[1] - tip[1]) <= (6 if pitch_deg else 3)
    assert _depth_m(fs, *tip, r=1) - _depth_m(fs, *nearest, r=1) < 0.003
    if not (yaw_deg or pitch_deg):  # facing the camera: by hand from the box
        cx, cy, bw, bh = _geometry(fs)
        spacing = create_subject(3).eye_spacing
        np.testing.assert_allclose(landmarks["eyes"], [(cx - 0.21 * spacing * bw, cy - 0.12 * bh),
                                                       (cx + 0.21 * spacing * bw, cy - 0.12 * bh)])
        # on the nose, a little above its painted tip (0.17 box below the centre) where the skull lifts it
        tip_x, tip_y = landmarks["nose_tip"]
        assert tip_x == pytest.approx(cx) and cy + 0.05 * bh < tip_y < cy + 0.17 * bh


def test_landmarks_follow_a_folded_sheet_and_a_second_face():
    from mmdg_edge.sensors.synthetic import SecondFace

    flat, folded = _print(), _print(sheet_fold="v", sheet_fold_m=0.05)
    cx, cy, bw, bh = _geometry(folded)
    # a V fold's panels slope 5 cm per half face width: the printed eyes, 0.21 face widths
    # along the sheet from the crease, appear 0.21·bw / √(1 + (0.1 / 0.15)²) from it
    slope = 2 * 0.05 / (bw * 0.6 / 615.0)
    eyes = folded.metadata["truth"]["faces"][0]["landmarks"]["eyes"]
    for eye, side in zip(eyes, (-1, 1)):
        assert eye[0] - cx == pytest.approx(side * 0.21 * bw / np.sqrt(1 + slope ** 2), abs=0.5)
    assert flat.metadata["truth"]["faces"][0]["landmarks"]["eyes"][1][0] - cx == pytest.approx(0.21 * bw, abs=0.5)
    scene = SceneSpec("live", 0, distance_m=0.7, centre=(230.0, 240.0), second_face=SecondFace("replay"))
    second = render_scene(scene, 0, np.random.default_rng(0)).metadata["truth"]["faces"][1]
    x0, y0, x1, y1 = second["box"]
    assert second["landmarks"]["eyes"][0] == pytest.approx((x0 + 0.29 * (x1 - x0), y0 + 0.38 * (y1 - y0)))
