"""The synthetic camera: deterministic, and the physical cues of each class are where they should be."""
import numpy as np
import pytest

pytest.importorskip("skimage.data", reason="scikit-image provides the default face texture")

from mmdg_edge.physics import check_physics, depth_relief_m  # noqa: E402
from mmdg_edge.sensors import open_source  # noqa: E402
from mmdg_edge.sensors.synthetic import SyntheticCamera, render_frameset  # noqa: E402


def _inner(fs):
    x0, y0, x1, y1 = (int(v) for v in fs.metadata["truth"]["box"])
    w, h = x1 - x0, y1 - y0
    return slice(y0 + h // 4, y1 - h // 4), slice(x0 + w // 4, x1 - w // 4)


def _render(kind, domain=0, seed=0):
    return render_frameset(kind, domain, np.random.default_rng(seed), 0, distance_m=0.6, centre=(320.0, 240.0))


def test_same_seed_same_frames_other_seed_other_frames():
    a = [fs.rgb for fs in SyntheticCamera(seed=3, num_frames=3)]
    b = [fs.rgb for fs in SyntheticCamera(seed=3, num_frames=3)]
    c = [fs.rgb for fs in SyntheticCamera(seed=4, num_frames=3)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_ground_truth_and_stream_metadata():
    fs = next(iter(open_source("synthetic", seed=0, classes=("replay",), domains=(2,), num_frames=1)))
    truth = fs.metadata["truth"]
    assert truth["label"] == "attack" and truth["attack"] == "replay" and truth["domain"] == 2
    assert fs.serial == "SYNTH-2" and fs.color_aligned_to_depth and fs.depth.dtype == np.uint16
    ys, xs = _inner(fs)
    assert np.median(fs.depth[ys, xs][fs.depth[ys, xs] > 0]) < np.median(fs.depth[:20, :20])  # face nearer than wall


def test_live_face_has_relief_print_and_replay_are_planar():
    for kind, low, high in (("live", 0.012, 0.05), ("mask", 0.012, 0.05), ("print", 0.0, 0.006), ("replay", 0.0, 0.006)):
        fs = _render(kind)
        ys, xs = _inner(fs)
        relief = depth_relief_m(fs.depth[ys, xs], fs.depth_scale_m)
        assert low <= relief <= high, (kind, relief)


def test_infrared_separates_skin_screen_and_mask():
    live, replay, mask = (_render(k) for k in ("live", "replay", "mask"))
    ys, xs = _inner(live)
    assert np.median(replay.ir[ys, xs]) < 0.15 * np.median(live.ir[ys, xs])
    spread = lambda fs: np.subtract(*np.percentile(fs.ir[ys, xs], (90, 10)))  # noqa: E731
    assert spread(mask) < 0.3 * spread(live)


def test_domains_change_noise_and_holes():
    quiet, noisy = _render("print", domain=0), _render("print", domain=2)
    ys, xs = _inner(quiet)
    assert (noisy.depth == 0).mean() > 2 * (quiet.depth == 0).mean()
    assert np.std(noisy.depth[ys, xs][noisy.depth[ys, xs] > 0]) > np.std(quiet.depth[ys, xs][quiet.depth[ys, xs] > 0])


def test_physical_vetoes_fire_on_every_attack_and_never_on_live():
    for fs in SyntheticCamera(seed=11, num_frames=40):
        truth = fs.metadata["truth"]
        vetoes = check_physics(fs.depth, fs.ir, truth["box"], fs.depth_scale_m).vetoes
        assert bool(vetoes) == (truth["label"] == "attack"), (truth, vetoes)


def test_unknown_class_is_refused():
    with pytest.raises(ValueError, match="classes"):
        SyntheticCamera(classes=("cartoon",))
