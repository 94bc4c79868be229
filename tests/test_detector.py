"""Detector decisions and fail-closed paths, with a scripted aligner and the real onnxruntime engine."""
import dataclasses

import numpy as np
import pytest

from faces import fixed_face_aligner, paint_face_depth
from mmdg_edge.align import AlignResult as _Result
from mmdg_edge.calibration import calibrate_scores, create_profile
from mmdg_edge.detector import Detector, DetectorConfig
from mmdg_edge.errors import ProfileMismatch
from mmdg_edge.frames import FaceCrops, FaceQuality, FrameSet
from mmdg_edge.preprocess import encode

H, W = 240, 320


@pytest.fixture(scope="module", autouse=True)
def landmarks(synthetic_landmarks):
    """The synthetic face's landmarks at half resolution: this module's frames are 320×240."""
    global LANDMARKS, BOX
    LANDMARKS = synthetic_landmarks[0] * 0.5
    BOX = tuple(v * 0.5 for v in synthetic_landmarks[1])
    return LANDMARKS


class ScriptedAligner:
    """Fixed crops (or a fixed failure) whatever the frameset, with the face regions and depth at the
    landmarks measured on the frameset it is given, so the physical checks see that frameset:
    isolates the decision logic."""

    def __init__(self, result):
        self.result = result
        self._measure = fixed_face_aligner(LANDMARKS)

    def align(self, frameset, prior=None):
        crops = self.result.crops
        if crops is None:
            return self.result
        measured = self._measure.align(frameset).crops
        crops = dataclasses.replace(measured, rgb=crops.rgb, depth=crops.depth, ir=crops.ir, quality=crops.quality)
        return _Result(self.result.status, self.result.reason, crops, 1, LANDMARKS, "RGB")


def _crops(mask=(True, True, True), passed=True, seed=0):
    rng = np.random.default_rng(seed)
    rgb, depth, ir = mask
    quality = FaceQuality(140.0, 0.6, 80.0, 0.95, passed, () if passed else ("blur 3 < 20",))
    return FaceCrops(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) if rgb else None,
                     rng.integers(550, 700, (224, 224), dtype=np.uint16) if depth else None,
                     rng.integers(0, 256, (224, 224), dtype=np.uint8) if ir else None, (0.0, 0.0, 1.0, 1.0),
                     (0.0, 0.0, 1.0, 1.0), quality)


def _head_frameset(serial="SN1", ir_level=120, stamp=0.0, seed=1):
    """A head in depth (the landmarks' own face) and skin-like IR, with sensor noise drawn from ``seed``
    (a new seed, a new frame)."""
    rng = np.random.default_rng(seed)
    depth = paint_face_depth((H, W), LANDMARKS).astype(np.int32) + rng.integers(-1, 2, (H, W))
    ir = np.clip(ir_level + 35 * rng.standard_normal((H, W)), 0, 255).astype(np.uint8)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return FrameSet(rgb=rgb, depth=depth.astype(np.uint16), ir=ir,
                    color_aligned_to_depth=True, serial=serial, timestamps_ms={"depth": stamp},
                    frame_numbers={"depth": int(stamp)})


@pytest.fixture(scope="module")
def engine(tiny_onnx):
    from mmdg_edge.engines import create_engine

    return create_engine("onnxruntime", tiny_onnx)


@pytest.fixture(scope="module")
def score(engine):
    return float(engine.run(*encode([_crops()]))[0])


def _detector(engine, result, threshold, **config):
    return Detector(engine, ScriptedAligner(result), threshold=threshold, config=DetectorConfig(**config))


def test_score_above_threshold_is_live_below_is_attack_near_is_uncertain(engine, score):
    ok = _Result("ok", "", _crops(), 1)
    live = _detector(engine, ok, score - 0.2).check(_head_frameset())
    assert live.status == "live" and live.score == pytest.approx(score, abs=1e-6)
    assert live.modalities == ("rgb", "depth", "ir")
    assert set(live.timings_ms) == {"validate", "align", "physics", "encode", "engine", "total"}
    assert sum(v for k, v in live.timings_ms.items() if k != "total") <= live.timings_ms["total"]
    assert _detector(engine, ok, min(score + 0.2, 0.99)).check(_head_frameset()).status == "attack"
    assert _detector(engine, ok, score + 0.01).check(_head_frameset()).status == "uncertain"


def test_physical_veto_denies_a_high_score(engine, score):
    ok = _Result("ok", "", _crops(), 1)
    flat = _head_frameset()
    flat.depth = np.rint(600 + np.random.default_rng(0).normal(0, 0.7, (H, W))).astype(np.uint16)  # a sheet + noise
    verdict = _detector(engine, ok, score - 0.2).check(flat)
    assert verdict.status == "attack" and verdict.reason.startswith("physical veto: the nose stands")
    dark = _head_frameset(ir_level=5)
    assert "near-infrared" in _detector(engine, ok, score - 0.2).check(dark).reason


class _CountingEngine:
    """The real engine, counting its calls."""

    def __init__(self, engine):
        self.engine, self.calls = engine, 0

    def run(self, crops, mask):
        self.calls += 1
        return self.engine.run(crops, mask)

    def __getattr__(self, name):  # metadata, describe(), ... of the real engine
        return getattr(self.engine, name)


def test_a_vetoed_frameset_never_reaches_the_engine_unless_told_to(engine, score):
    ok = _Result("ok", "", _crops(), 1)
    flat = _head_frameset()
    flat.depth = np.rint(600 + np.random.default_rng(0).normal(0, 0.7, (H, W))).astype(np.uint16)  # a sheet + noise
    counting = _CountingEngine(engine)
    skipping = Detector(counting, ScriptedAligner(ok), threshold=score - 0.2)
    vetoed = skipping.check(flat)
    assert vetoed.status == "attack" and vetoed.reason.startswith("physical veto: the nose stands")
    assert vetoed.score is None and counting.calls == 0
    assert set(vetoed.timings_ms) == {"validate", "align", "physics", "total"}  # neither encoded nor run
    assert skipping.check(_head_frameset()).status == "live" and counting.calls == 1  # no veto: the model decides
    carrying = Detector(counting, ScriptedAligner(ok), threshold=score - 0.2,
                        config=DetectorConfig(skip_engine_on_veto=False))
    carried = carrying.check(flat)
    assert counting.calls == 2 and carried.status == "attack" and carried.reason == vetoed.reason
    assert carried.score == pytest.approx(score, abs=1e-6)  # the model's score, kept for the record
    with pytest.raises(TypeError, match="DetectorConfig.skip_engine_on_veto: expected True or False"):
        DetectorConfig(skip_engine_on_veto="no")


def test_a_missing_required_stream_is_unreliable_and_a_rig_without_ir_names_what_did_not_run(engine):
    result = _Result("ok", "", _crops(mask=(True, True, False)), 1)
    frameset = _head_frameset()
    frameset.ir = None
    score = float(engine.run(*encode([_crops(mask=(True, True, False))]))[0])
    kiosk = _detector(engine, result, score - 0.2).check(frameset)
    assert kiosk.status == "unreliable" and kiosk.reason == "required stream missing: ir"
    no_ir = _detector(engine, result, score - 0.2, required=("rgb", "depth")).check(frameset)
    assert no_ir.status == "live" and no_ir.modalities == ("rgb", "depth")
    assert no_ir.skipped_checks == ("IR presence", "IR material") and "not run: IR presence" in no_ir.reason


@pytest.mark.parametrize(
    "result,status",
    [(_Result("no_face", "no face found"), "no_face"), (_Result("unreliable", "face too small"), "unreliable"),
     (_Result("error", "invalid frameset"), "error")],
)
def test_aligner_failures_pass_through_as_non_live(engine, result, status):
    verdict = _detector(engine, result, 0.01).check(_head_frameset())
    assert verdict.status == status and verdict.reason == result.reason


def test_low_quality_is_unreliable(engine):
    verdict = _detector(engine, _Result("ok", "", _crops(passed=False), 1), 0.01).check(_head_frameset())
    assert verdict.status == "unreliable" and "blur" in verdict.reason


class _Raising:
    def __init__(self, engine):
        self.metadata = engine.metadata

    def run(self, crops, mask):
        raise RuntimeError("GPU fell off the bus")


def test_engine_failure_is_an_error_verdict_not_a_crash(engine, caplog):
    detector = Detector(_Raising(engine), ScriptedAligner(_Result("ok", "", _crops(), 1)), threshold=0.01)
    first, second = detector.check(_head_frameset()), detector.check(_head_frameset())
    assert first.status == second.status == "error" and "GPU fell off the bus" in first.reason
    assert sum("unexpected failure" in r.message for r in caplog.records) == 1  # logged once


@pytest.mark.parametrize("bad", [None, "frame", np.zeros((3, 3))])
def test_non_framesets_are_errors(engine, bad):
    verdict = _detector(engine, _Result("ok", "", _crops(), 1), 0.01).check(bad)
    assert verdict.status == "error" and "expected a FrameSet" in verdict.reason


def test_corrupted_frameset_is_unreliable(engine):
    frameset = _head_frameset()
    frameset.depth = np.full((H, W), np.nan, np.float32)
    verdict = _detector(engine, _Result("ok", "", _crops(), 1), 0.01).check(frameset)
    assert verdict.status == "unreliable" and "FrameSet.depth" in verdict.reason


@pytest.mark.parametrize("stream, value", [("ir", 0), ("ir", 255), ("depth", 0), ("rgb", 0)])
def test_a_blank_required_stream_is_unreliable_not_an_attack(engine, score, stream, value):
    """A dead IR sensor gives zeros, which the IR presence check would call a screen."""
    frameset = _head_frameset()
    setattr(frameset, stream, np.full_like(getattr(frameset, stream), value))
    verdict = _detector(engine, _Result("ok", "", _crops(), 1), score - 0.2).check(frameset)
    assert verdict.status == "unreliable" and verdict.reason.endswith(f"a dead or covered sensor): {stream}")
    optional = _detector(engine, _Result("ok", "", _crops(), 1), score - 0.2,
                         required=tuple(n for n in ("rgb", "depth", "ir") if n != stream)).check(frameset)
    assert "blank" not in optional.reason  # a stream the rig does not require is not refused for it


@pytest.mark.parametrize("change", [{"ir": lambda f: f.ir.astype(np.float32)}, {"rgb": lambda f: f.rgb[:, :, 0]},
                                    {"depth": lambda f: f.depth[:-1]}], ids=["ir-float", "rgb-one-channel", "depth-short"])
def test_a_stream_of_the_wrong_dtype_or_shape_is_unreliable(engine, change):
    frameset = _head_frameset()
    (name, broken), = change.items()
    setattr(frameset, name, broken(frameset))
    verdict = _detector(engine, _Result("ok", "", _crops(), 1), 0.01).check(frameset)
    assert verdict.status == "unreliable" and verdict.reason.startswith("invalid frameset: FrameSet.")


def test_stale_and_frozen_frames_are_unreliable_in_a_stream(engine, score):
    detector = _detector(engine, _Result("ok", "", _crops(), 1), score - 0.2)
    frames = [_head_frameset(stamp=t, seed=i) for i, t in enumerate((0.0, 33.0, 33.0, 20.0, 66.0))]
    frames.append(_head_frameset(stamp=99.0, seed=4))  # a fresh timestamp on the pixels of frame 4
    verdicts = [r.verdict for r in detector.stream(frames)]
    assert [v.status for v in verdicts] == ["live", "live", "unreliable", "unreliable", "live", "unreliable"]
    assert "stale frame" in verdicts[2].reason and "frozen stream" in verdicts[5].reason


def test_stream_session_turns_live_after_k_votes_on_a_camera_only(engine, score):
    detector = _detector(engine, _Result("ok", "", _crops(), 1), score - 0.2)

    def camera(i):
        frameset = _head_frameset(stamp=33.0 * i, seed=i)
        frameset.origin, frameset.received_s = "camera", __import__("time").monotonic()
        frameset.timestamps_ms = {name: 33.0 * i for name in ("rgb", "depth", "ir")}
        return frameset

    results = list(detector.stream(camera(i) for i in range(6)))
    sessions = [r.session.status for r in results]
    assert sessions[:4] == ["pending"] * 4 and sessions[4:] == ["live", "live"]
    assert [r.session.opened for r in results] == [False] * 4 + [True, False]
    assert results[4].session.time_to_decision_ms == pytest.approx(4 * 33.0)
    recorded = list(detector.stream(_head_frameset(stamp=33.0 * i, seed=i) for i in range(6)))
    assert [r.session.status for r in recorded] == ["pending"] * 6 and "not a live camera" in recorded[-1].session.reason


def test_profile_for_another_camera_or_model_file_is_refused(engine, score):
    report = calibrate_scores([score + 0.1], np.linspace(0.0, score - 0.1, 36), 0.1)
    profile = create_profile(report, camera_serial="SN1", camera_firmware="5.16", model_sha256=engine.model_sha256,
                             model_precision=engine.precision)
    detector = Detector(engine, ScriptedAligner(_Result("ok", "", _crops(), 1)), profile=profile)
    assert detector.threshold == profile.threshold
    assert detector.check(_head_frameset(serial="SN1")).status == "live"
    other = detector.check(_head_frameset(serial="SN2"))
    assert other.status == "unreliable" and "camera 'SN1'" in other.reason
    for changes in ({"model_sha256": "0" * 64}, {"model_precision": "int8"}):
        foreign = create_profile(report, **{"camera_serial": "SN1", "camera_firmware": "5.16",
                                            "model_sha256": engine.model_sha256, "model_precision": "fp32", **changes})
        with pytest.raises(ProfileMismatch, match="calibrated for model file"):
            Detector(engine, ScriptedAligner(None), profile=foreign)


def test_real_d435_recording_is_never_live(tiny_onnx, d435_bag):
    from mmdg_edge.sensors import open_source

    detector = Detector.load(tiny_onnx, engine="onnxruntime", threshold=0.01, config=DetectorConfig(required=("rgb",)))
    with open_source(str(d435_bag)) as source:
        verdicts = [r.verdict for r in detector.stream(source)]
    # its colour frame was captured 101.6 ms before its depth frame: not one moment
    assert len(verdicts) == 1 and verdicts[0].status == "unreliable" and "out of step" in verdicts[0].reason


def test_end_to_end_on_a_real_face_photo_scores_every_present_modality(tiny_onnx):
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the astronaut photo")
    import cv2

    frame = np.zeros((480, 640, 3), np.uint8)
    frame[40:440, 120:520] = cv2.resize(skimage_data.astronaut(), (400, 400), interpolation=cv2.INTER_AREA)
    detector = Detector.load(tiny_onnx, engine="onnxruntime")
    landmarks = detector.aligner.align(FrameSet(rgb=frame)).landmarks
    ir = np.clip(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(int) + 60, 0, 255).astype(np.uint8)
    frameset = FrameSet(rgb=frame, depth=paint_face_depth((480, 640), landmarks), ir=ir, color_aligned_to_depth=True)
    verdict = detector.check(frameset)
    crops = detector.aligner.align(frameset).crops
    expected = float(detector.engine.run(*encode([crops]))[0])
    assert verdict.score == pytest.approx(expected, abs=1e-6), verdict.reason  # the one straight line: align, encode, run
    assert verdict.modalities == ("rgb", "depth", "ir") and verdict.box == crops.box
    assert verdict.status == ("live" if expected >= 0.45 else "attack" if expected < 0.35 else "uncertain")
    assert verdict.threshold == pytest.approx(0.4)  # from the checkpoint metadata


class _SlowEngine:
    """The real engine plus 40 ms per call: a kiosk CPU that cannot keep up with 30 fps."""

    def __init__(self, engine):
        self.engine = engine

    def run(self, crops, mask):
        import time

        time.sleep(0.04)
        return self.engine.run(crops, mask)

    def __getattr__(self, name):  # metadata, describe(), ... of the real engine
        return getattr(self.engine, name)


class _LiveCamera:
    """A real-time source delivering a frameset every 5 ms, whether or not anyone keeps up."""

    is_realtime = True

    def __iter__(self):
        import time

        for i in range(60):
            time.sleep(0.005)
            frameset = _head_frameset(stamp=5.0 * (i + 1), seed=i)
            frameset.origin, frameset.received_s = "camera", time.monotonic()
            frameset.timestamps_ms = {name: 5.0 * (i + 1) for name in ("rgb", "depth", "ir")}
            yield frameset


def test_stream_of_a_live_source_scores_the_newest_frames_and_reports_the_skipped(engine, score):
    detector = _detector(_SlowEngine(engine), _Result("ok", "", _crops(), 1), threshold=score - 0.2)
    results = list(detector.stream(_LiveCamera()))
    numbers = [r.frameset.frame_number for r in results]
    assert numbers == sorted(set(numbers)) and numbers[-1] == 300  # in order, the last frameset (5 ms × 60) scored
    assert len(results) < 20 and len(results) + sum(r.skipped for r in results) == 60
    assert results[-1].session.status == "live"
    recorded = list(detector.stream([_head_frameset(stamp=5.0 * (i + 1), seed=i) for i in range(10)]))
    assert len(recorded) == 10 and not any(r.skipped for r in recorded)  # not live: every frameset


def test_the_decision_at_the_threshold_and_inside_the_band_above_it(engine, score):
    """Issue 21 item 12: `>=` turned into `>` (band 0), and a score just above the threshold but inside
    the band, were not asserted through Detector."""
    ok = _Result("ok", "", _crops(), 1)
    at = _detector(engine, ok, score, uncertainty_band=0.0).check(_head_frameset())
    assert at.status == "live" and at.score == score == at.threshold
    above = _detector(engine, ok, score - 0.02, uncertainty_band=0.05).check(_head_frameset())
    assert above.status == "uncertain" and above.reason == f"score {score:.3f} within ±0.05 of threshold {score - 0.02:.3f}"
    beyond = _detector(engine, ok, score - 0.06, uncertainty_band=0.05).check(_head_frameset())
    assert beyond.status == "live"


def test_an_ir_region_too_small_to_measure_is_unreliable_when_ir_is_required(engine, score):
    """Issue 21 item 12: a required stream's unmeasurable check treated as optional went unnoticed."""
    from mmdg_edge.physics import PhysicsConfig

    ok = _Result("ok", "", _crops(), 1)
    tiny_region = PhysicsConfig(min_ir_pixels=10**6)  # the face's IR region can never hold as many
    kiosk = _detector(engine, ok, score - 0.2, physics=tiny_region).check(_head_frameset())
    assert kiosk.status == "unreliable"
    assert kiosk.reason.startswith("physical check cannot be measured on a required stream: IR presence (too few IR "
                                   "pixels on the face")
    no_ir = _detector(engine, ok, score - 0.2, physics=tiny_region, required=("rgb", "depth")).check(_head_frameset())
    assert no_ir.status == "live" and no_ir.skipped_checks == ("IR presence", "IR material")
