"""Issue #13: each path by which an attack or a fault reached "live" on the earlier main, now denied.

A "fooled" engine (every frameset scores 0.9) stands for a model that an attack got past: these
tests check that the SDK's own gates deny, whatever the model says. The numbers in the test names
are the issue's items.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import pytest

from mmdg_edge.align import AlignConfig, FaceAligner
from mmdg_edge.calibration import accepts, calibrate_scores, collect_scores, create_profile
from mmdg_edge.detector import Detector, DetectorConfig
from mmdg_edge.engines import create_engine
from mmdg_edge.engines.base import Engine
from mmdg_edge.errors import ProfileMismatch, SignatureError
from mmdg_edge.frames import FaceQuality, Verdict
from mmdg_edge.sensors.synthetic import Segment, render_frameset, render_sequence
from mmdg_edge.temporal import SessionTracker

pytestmark = pytest.mark.timeout(120)
DEMO_ONNX = "mmdg_edge/assets/demo.onnx"


class Fooled(Engine):
    """The demo model's metadata, and 0.9 for every frameset: a model the attack got past."""

    name = "fooled"
    precision = "fp32"

    def __init__(self, metadata):
        super().__init__()
        self._metadata = metadata

    def _run(self, crops, mask):
        return np.full(crops.shape[0], 0.9, np.float32)


class Returns:
    """A duck-typed engine (not built on engines.base) that returns whatever it is given."""

    def __init__(self, metadata, value):
        self.metadata, self.value = metadata, value

    def run(self, crops, mask):
        return self.value


@pytest.fixture(scope="module")
def demo_engine():
    return create_engine("onnxruntime", DEMO_ONNX)


@pytest.fixture(scope="module")
def live_frameset():
    return render_frameset("live", 0, np.random.default_rng(0), 0)


def _fooled(demo_engine, aligner=None, **config):
    return Detector(Fooled(demo_engine.metadata), aligner, config=DetectorConfig(**config))


def test_the_fooled_engine_passes_an_unbroken_live_frameset(demo_engine, live_frameset):
    """Every case below breaks one thing; unbroken, the gates let this frameset through."""
    assert _fooled(demo_engine).check(copy.deepcopy(live_frameset)).status == "live"


@pytest.mark.parametrize("missing", [("depth",), ("rgb",), ("rgb", "depth")])
def test_1_a_missing_stream_is_unreliable(demo_engine, live_frameset, missing):
    frameset = copy.deepcopy(live_frameset)
    for name in missing:
        setattr(frameset, name, None)
    verdict = Detector(demo_engine).check(frameset)
    assert verdict.status == "unreliable" and all(name in verdict.reason for name in missing), verdict.reason


def test_2_a_face_whose_centre_is_all_holes_is_not_live(demo_engine, live_frameset):
    frameset = copy.deepcopy(live_frameset)
    x0, y0, x1, y1 = live_frameset.metadata["truth"]["box"]
    w, h = x1 - x0, y1 - y0
    frameset.depth[int(y0 + 0.15 * h):int(y1 - 0.15 * h) + 1, int(x0 + 0.2 * w):int(x1 - 0.2 * w) + 1] = 0
    verdict = _fooled(demo_engine).check(frameset)
    assert verdict.status == "unreliable" and "depth covers" in verdict.reason, verdict.reason


def test_2_a_check_that_cannot_be_measured_on_a_required_stream_is_not_a_pass(demo_engine, live_frameset):
    frameset = copy.deepcopy(live_frameset)
    x0, y0, x1, y1 = live_frameset.metadata["truth"]["box"]
    keep = frameset.depth[int((y0 + y1) / 2), int((x0 + x1) / 2)]
    frameset.depth[int(y0):int(y1), int(x0):int(x1)] = 0
    frameset.depth[int((y0 + y1) / 2), int((x0 + x1) / 2)] = keep  # one valid pixel: a distance, no relief
    lenient = FaceAligner(AlignConfig(min_depth_coverage=0.0))  # past the coverage gate, to the check itself
    verdict = _fooled(demo_engine, lenient).check(frameset)
    assert verdict.status == "unreliable" and "face shape (too few face landmarks with depth" in verdict.reason, \
        verdict.reason


@pytest.mark.parametrize("value", [np.array([5.0], np.float32), np.array([np.inf], np.float32),
                                   np.array([0.9, 0.9], np.float32), [0.9], np.array([np.nan], np.float32),
                                   np.array([-0.5], np.float32), None, np.array([1], np.int64),
                                   np.array([True]), np.array(["0.9"])],
                         ids=["5", "inf", "two-rows", "list", "nan", "negative", "none", "int", "bool", "text"])
def test_3_whatever_the_engine_returns_that_is_not_a_probability_is_an_error(demo_engine, live_frameset, value):
    verdict = Detector(Returns(demo_engine.metadata, value), threshold=0.5).check(copy.deepcopy(live_frameset))
    assert verdict.status == "error", (value, verdict.status, verdict.reason)


def test_3_the_threshold_and_band_cannot_be_changed_after_construction(demo_engine):
    detector = Detector(demo_engine)
    for name in ("threshold", "band"):
        with pytest.raises(AttributeError):
            setattr(detector, name, -1.0)
    with pytest.raises(ValueError, match="threshold"):
        Detector(demo_engine, threshold=-1.0)


def test_3_a_frameset_whose_origin_was_tampered_with_gets_a_plain_verdict(demo_engine, live_frameset):
    import json

    from mmdg_edge.records import verdict_record

    frameset = copy.deepcopy(live_frameset)
    frameset.origin = object()  # not one of the origins: refused by validate()
    verdict = Detector(demo_engine).check(frameset)
    assert verdict.status == "unreliable" and verdict.origin == "unknown"
    json.dumps(verdict_record(verdict, frameset))


def _camera_frames(count, *, frozen=(), seed=1):
    frames = []
    for i, frameset in enumerate(render_sequence([Segment("live", count, distance_start_m=0.55)], seed=seed)):
        frameset.origin, frameset.received_s = "camera", time.monotonic()
        frameset.timestamps_ms = {name: (0.0 if name in frozen else 33.0 * i) for name in ("rgb", "depth", "ir")}
        frames.append(frameset)
    return frames


def _fresh(frames):
    """Hand the framesets over as a camera would: received just now."""
    for frameset in frames:
        frameset.received_s = time.monotonic()
        yield frameset


def test_4_a_camera_stream_of_live_framesets_makes_a_live_session(demo_engine):
    """The baseline of the freshness cases: nothing broken, the session turns live."""
    sessions = [r.session for r in _fooled(demo_engine).stream(_fresh(_camera_frames(8)))]
    assert sessions[-1].status == "live" and sum(s.opened for s in sessions) == 1


def test_4_one_frameset_repeated_never_makes_a_live_session(demo_engine, live_frameset):
    frameset = copy.deepcopy(live_frameset)
    frameset.timestamps_ms = {}
    results = list(_fooled(demo_engine).stream([copy.deepcopy(frameset) for _ in range(8)], allow_recorded=True))
    assert not any(r.session.status == "live" for r in results)
    assert all(r.verdict.status == "unreliable" for r in results[1:]), [r.verdict.reason for r in results]


def test_4_depth_and_ir_frozen_while_rgb_advances_never_makes_a_live_session(demo_engine):
    results = list(_fooled(demo_engine).stream(_fresh(_camera_frames(10, frozen=("depth", "ir")))))
    assert not any(r.session.status == "live" for r in results)
    assert all(r.verdict.status == "unreliable" for r in results[1:])


def test_4_a_camera_frameset_without_timestamps_or_received_too_long_ago_is_unreliable(demo_engine):
    no_stamps, stale = _camera_frames(2)
    no_stamps.timestamps_ms = {}
    stale.received_s = time.monotonic() - 5.0
    detector = _fooled(demo_engine)
    assert detector.check(no_stamps).status == detector.check(stale).status == "unreliable"
    assert "stale frame: received" in detector.check(stale).reason


def test_4_a_recording_never_makes_a_live_session_unless_it_is_a_test(demo_engine):
    frames = _camera_frames(10)
    for frameset in frames:
        frameset.origin = "recording"
    refused = list(_fooled(demo_engine).stream(copy.deepcopy(frames)))
    assert not any(r.session.status == "live" for r in refused) and refused[-1].verdict.origin == "recording"
    assert any(r.session.status == "live" for r in _fooled(demo_engine).stream(frames, allow_recorded=True))


BOX = (100.0, 100.0, 200.0, 200.0)


def _verdict(status, box=BOX):
    return Verdict(status, "test", box=None if status == "no_face" else box, origin="camera",
                   quality=FaceQuality(100.0, 0.6, 50.0, 1.0, True))


@pytest.mark.parametrize("then", ["no_face", "error", "attack", "uncertain", "unreliable"])
def test_5_a_live_session_ends_at_the_first_non_live_verdict(then):
    tracker = SessionTracker()
    for t in range(6):
        tracker.update(_verdict("live"), 33.0 * t)
    assert tracker.update(_verdict("live"), 200.0).status == "live"
    assert tracker.update(_verdict(then), 233.0).status != "live"


@pytest.mark.parametrize("attack", ["print", "replay", "mask"])
def test_5_an_attack_that_replaces_the_live_face_at_the_same_place_ends_the_session_at_once(demo_engine, attack):
    segments = [Segment("live", 7, distance_start_m=0.55, centre=(320.0, 240.0)),
                Segment(attack, 3, distance_start_m=0.55, centre=(320.0, 240.0))]
    detector = Detector(demo_engine)
    results = list(detector.stream(render_sequence(segments, seed=4), allow_recorded=True))
    assert all(r.session.status != "live" for r in results[7:]), [r.verdict.status for r in results]


# 6. Profiles and models are bound by the file, and signatures by a key.
@pytest.fixture(scope="module")
def int8_demo(tmp_path_factory):
    from mmdg_edge.engines.export import quantize_onnx

    return quantize_onnx(DEMO_ONNX, tmp_path_factory.mktemp("int8") / "demo.int8.onnx", "dynamic")


def _profile_for(engine, tmp_path):
    report = calibrate_scores([0.9] * 10, np.linspace(0.0, 0.3, 36), 0.1)
    return create_profile(report, camera_serial="SYNTH-0", camera_firmware="", model_sha256=engine.model_sha256,
                          model_precision=engine.precision).save(tmp_path / "profile.json")


def test_6_a_profile_calibrated_for_the_fp32_export_is_refused_for_the_int8_one(demo_engine, int8_demo, tmp_path):
    profile = _profile_for(demo_engine, tmp_path)
    loaded = Detector.load(DEMO_ONNX, engine="onnxruntime", profile=profile)
    assert loaded.threshold == loaded.profile.threshold
    with pytest.raises(ProfileMismatch, match="calibrated for model file"):
        Detector.load(int8_demo, engine="onnxruntime", profile=profile)


def test_6_with_a_trusted_key_only_files_it_signed_load(demo_engine, tmp_path):
    import shutil

    from mmdg_edge.signing import create_key_pair, load_private_key, sign_file

    create_key_pair(tmp_path / "kiosk.key", tmp_path / "kiosk.pub")
    create_key_pair(tmp_path / "other.key", tmp_path / "other.pub")
    model = shutil.copyfile(DEMO_ONNX, tmp_path / "model.onnx")
    profile = _profile_for(demo_engine, tmp_path)
    load = dict(engine="onnxruntime", trusted_key=tmp_path / "kiosk.pub")
    with pytest.raises(SignatureError, match="not signed"):
        Detector.load(model, **load)  # a forged or copied model, however good its metadata
    sign_file(model, load_private_key(tmp_path / "other.key"), "model")
    with pytest.raises(SignatureError, match="not by the trusted key"):
        Detector.load(model, **load)
    sign_file(model, load_private_key(tmp_path / "kiosk.key"), "model", force=True)
    with pytest.raises(SignatureError, match="not signed"):
        Detector.load(model, profile=profile, **load)  # the profile must be signed too
    sign_file(profile, load_private_key(tmp_path / "kiosk.key"), "model")
    with pytest.raises(SignatureError, match="'model' signature, a 'profile' one"):
        Detector.load(model, profile=profile, **load)
    sign_file(profile, load_private_key(tmp_path / "kiosk.key"), "profile", force=True)
    assert Detector.load(model, profile=profile, **load).profile is not None
    import onnx
    from onnx import numpy_helper

    forged = onnx.load(str(model))  # other weights under the very same metadata
    weight = max(forged.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.01, weight.name))
    onnx.save(forged, str(model))
    with pytest.raises(SignatureError, match="changed after it was signed"):
        Detector.load(model, **load)


# 9. A false face box let a flat print through.
def test_9_a_false_face_box_over_a_depth_edge_is_not_live(demo_engine):
    frameset = render_frameset("print", 0, np.random.default_rng(3), 0, distance_m=0.5, centre=(320.0, 200.0))
    x0, y0, x1, y1 = frameset.metadata["truth"]["box"]
    sheet = np.abs(frameset.depth.astype(np.float64) / 1000 - 0.5) < 0.05
    edge = int(np.flatnonzero(sheet[:, int((x0 + x1) / 2)]).max())  # the sheet's lower edge under the face
    side = 1.4 * (x1 - x0)
    false_box = ((x0 + x1) / 2 - side / 2, edge - side / 2, (x0 + x1) / 2 + side / 2, edge + side / 2)
    boxes = ((x0, y0, x1, y1), false_box)
    aligner = FaceAligner(detector=lambda image: [tuple(v * image.shape[1] / 640 for v in box) for box in boxes])
    verdict = _fooled(demo_engine, aligner).check(frameset)
    # The landmark model finds no face in the false box; the real one is the print's, vetoed as a sheet.
    assert verdict.status == "attack" and "not a face" in verdict.reason, verdict.reason


# 11. Calibration.
def test_11_calibration_refuses_a_target_no_threshold_can_meet():
    with pytest.raises(ValueError, match="cannot be met"):
        calibrate_scores(np.linspace(0.6, 0.99, 50), [1.0] * 300 + [0.1] * 300, 0.01)


def test_11_calibration_refuses_too_few_attacks_for_its_target():
    with pytest.raises(ValueError, match="at least 368 are needed"):
        calibrate_scores(np.linspace(0.6, 0.99, 50), np.linspace(0.0, 0.3, 20), 0.01)


def test_11_calibration_reports_the_rates_the_detector_has_with_its_band(demo_engine, live_frameset):
    live = np.linspace(0.30, 0.99, 70)
    attacks = np.linspace(0.0, 0.5, 100)
    report = calibrate_scores(live, attacks, 0.05, uncertainty_band=0.05)
    band = report.uncertainty_band
    # the detector calls live only what lies at or above the threshold and outside the band
    decided = [("live" if s >= report.threshold and abs(s - report.threshold) >= band else "no") for s in attacks]
    assert report.apcer.errors == decided.count("live") == int(accepts(attacks, report.threshold, band).sum())
    assert report.apcer.value <= 0.05
    rejected_live = sum(1 for s in live if not (s >= report.threshold and abs(s - report.threshold) >= band))
    assert report.bpcer.errors == rejected_live > int((live < report.threshold).sum())  # the band costs live ones


def test_11_calibration_checks_the_serial_of_every_frameset(demo_engine, live_frameset):
    frames = [copy.deepcopy(live_frameset) for _ in range(3)]
    frames[2].serial = "ANOTHER"
    with pytest.raises(ValueError, match="ANOTHER"):
        collect_scores(Detector(demo_engine, config=DetectorConfig(use_physics=False)), frames)  # as calibrate scores
