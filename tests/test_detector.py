"""Detector decisions and fail-closed paths, with a scripted aligner and the real onnxruntime engine."""
import numpy as np
import pytest

from mmdg_edge.align import AlignResult as _Result
from mmdg_edge.calibration import ProfileMismatch, calibrate_scores, create_profile
from mmdg_edge.detector import Detector, DetectorConfig
from mmdg_edge.frames import FaceCrops, FaceQuality, FrameSet

H, W = 240, 320
BOX = (100.0, 60.0, 220.0, 200.0)


class ScriptedAligner:
    """Returns fixed crops (or a fixed failure) whatever the frameset: isolates the decision logic."""

    def __init__(self, result):
        self.result = result

    def align(self, frameset):
        return self.result


def _crops(mask=(True, True, True), passed=True, seed=0):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) if on else np.zeros((224, 224, 3), np.uint8)
              for on in mask]
    quality = FaceQuality(140.0, 0.6, 80.0, 0.95, passed, () if passed else ("blur 3 < 20",))
    return FaceCrops(*images, mask=np.array(mask), box=BOX, quality=quality)


def _head_frameset(serial="SN1", ir_level=120, stamp=0.0):
    yy, xx = np.mgrid[0:H, 0:W]
    depth = 600 + 0.08e3 * (((xx - 160) / 120.0) ** 2 + ((yy - 130) / 140.0) ** 2)
    depth -= 30 * np.exp(-((xx - 160) ** 2 + (yy - 130) ** 2) / (2 * 8.0**2))
    rng = np.random.default_rng(1)
    ir = np.clip(ir_level + 35 * rng.standard_normal((H, W)), 0, 255).astype(np.uint8)
    return FrameSet(rgb=np.zeros((H, W, 3), np.uint8), depth=np.rint(depth).astype(np.uint16), ir=ir,
                    color_aligned_to_depth=True, serial=serial, timestamps_ms={"depth": stamp},
                    frame_numbers={"depth": int(stamp)})


@pytest.fixture(scope="module")
def engine(tiny_onnx):
    from mmdg_edge.engines import create_engine

    return create_engine("onnxruntime", tiny_onnx)


@pytest.fixture(scope="module")
def score(engine):
    from mmdg_edge.preprocess import crops_to_input

    return float(engine.run(*crops_to_input([_crops()]))[0])


def _detector(engine, result, threshold, **config):
    return Detector(engine, ScriptedAligner(result), threshold=threshold, config=DetectorConfig(**config))


def test_score_above_threshold_is_live_below_is_attack_near_is_uncertain(engine, score):
    ok = _Result("ok", "", _crops(), 1, BOX)
    live = _detector(engine, ok, score - 0.2).check(_head_frameset())
    assert live.status == "live" and live.score == pytest.approx(score, abs=1e-6)
    assert live.modalities == ("rgb", "depth", "ir") and set(live.timings_ms) >= {"align", "engine", "total"}
    assert _detector(engine, ok, min(score + 0.2, 0.99)).check(_head_frameset()).status == "attack"
    assert _detector(engine, ok, score + 0.01).check(_head_frameset()).status == "uncertain"


def test_physical_veto_denies_a_high_score(engine, score):
    ok = _Result("ok", "", _crops(), 1, BOX)
    flat = _head_frameset()
    flat.depth = np.full((H, W), 600, np.uint16)
    verdict = _detector(engine, ok, score - 0.2).check(flat)
    assert verdict.status == "attack" and verdict.reason.startswith("physical veto: depth relief")
    dark = _head_frameset(ir_level=5)
    assert "near-infrared" in _detector(engine, ok, score - 0.2).check(dark).reason


def test_missing_modalities_are_reported(engine, score):
    result = _Result("ok", "", _crops(mask=(True, True, False)), 1, BOX)
    frameset = _head_frameset()
    frameset.ir = None
    verdict = _detector(engine, result, score - 0.3).check(frameset)
    assert verdict.modalities == ("rgb", "depth") and verdict.status in ("live", "attack", "uncertain")


@pytest.mark.parametrize(
    "result,status",
    [(_Result("no_face", "no face found"), "no_face"), (_Result("unreliable", "face too small"), "unreliable"),
     (_Result("error", "invalid frameset"), "error")],
)
def test_aligner_failures_pass_through_as_non_live(engine, result, status):
    verdict = _detector(engine, result, 0.01).check(_head_frameset())
    assert verdict.status == status and verdict.reason == result.reason


def test_low_quality_is_unreliable(engine):
    verdict = _detector(engine, _Result("ok", "", _crops(passed=False), 1, BOX), 0.01).check(_head_frameset())
    assert verdict.status == "unreliable" and "blur" in verdict.reason


class _Raising:
    def __init__(self, engine):
        self.metadata = engine.metadata

    def run(self, crops, mask):
        raise RuntimeError("GPU fell off the bus")


def test_engine_failure_is_an_error_verdict_not_a_crash(engine, caplog):
    detector = Detector(_Raising(engine), ScriptedAligner(_Result("ok", "", _crops(), 1, BOX)), threshold=0.01)
    first, second = detector.check(_head_frameset()), detector.check(_head_frameset())
    assert first.status == second.status == "error" and "GPU fell off the bus" in first.reason
    assert sum("unexpected failure" in r.message for r in caplog.records) == 1  # logged once


@pytest.mark.parametrize("bad", [None, "frame", np.zeros((3, 3))])
def test_non_framesets_are_errors(engine, bad):
    verdict = _detector(engine, _Result("ok", "", _crops(), 1, BOX), 0.01).check(bad)
    assert verdict.status == "error" and "expected a FrameSet" in verdict.reason


def test_corrupted_frameset_is_an_error(engine):
    frameset = _head_frameset()
    frameset.depth = np.full((H, W), np.nan, np.float32)
    verdict = _detector(engine, _Result("ok", "", _crops(), 1, BOX), 0.01).check(frameset)
    assert verdict.status == "error" and "FrameSet.depth" in verdict.reason


def test_stale_frames_are_unreliable_in_a_stream(engine, score):
    detector = _detector(engine, _Result("ok", "", _crops(), 1, BOX), score - 0.2)
    frames = [_head_frameset(stamp=t) for t in (0.0, 33.0, 33.0, 20.0, 66.0)]
    statuses = [r.verdict.status for r in detector.stream(frames)]
    assert statuses == ["live", "live", "unreliable", "unreliable", "live"]


def test_stream_session_turns_live_after_k_votes(engine, score):
    detector = _detector(engine, _Result("ok", "", _crops(), 1, BOX), score - 0.2)
    results = list(detector.stream(_head_frameset(stamp=33.0 * i) for i in range(6)))
    sessions = [r.session.status for r in results]
    assert sessions[:4] == ["pending"] * 4 and sessions[4:] == ["live", "live"]
    assert results[4].session.time_to_decision_ms == pytest.approx(4 * 33.0)


def test_profile_for_another_camera_or_model_is_refused(engine, score):
    report = calibrate_scores([0.9], [0.1], 0.0)
    profile = create_profile(report, target_apcer=0.0, uncertainty_band=0.0, camera_serial="SN1",
                             camera_firmware="5.16", model_sha256=engine.metadata["sha256"])
    detector = Detector(engine, ScriptedAligner(_Result("ok", "", _crops(), 1, BOX)), profile=profile)
    assert detector.threshold == profile.threshold
    assert detector.check(_head_frameset(serial="SN1")).status in ("live", "attack")
    other = detector.check(_head_frameset(serial="SN2"))
    assert other.status == "error" and "camera 'SN1'" in other.reason
    foreign = create_profile(report, target_apcer=0.0, uncertainty_band=0.0, camera_serial="SN1",
                             camera_firmware="5.16", model_sha256="0" * 64)
    with pytest.raises(ProfileMismatch, match="calibrated for model"):
        Detector(engine, ScriptedAligner(None), profile=foreign)


def test_real_d435_recording_gives_no_face_and_never_live(tiny_onnx, d435_bag):
    from mmdg_edge.sensors import open_source

    detector = Detector.load(tiny_onnx, engine="onnxruntime", threshold=0.01)
    with open_source(str(d435_bag)) as source:
        verdicts = [r.verdict for r in detector.stream(source)]
    assert verdicts and all(v.status == "no_face" for v in verdicts)


def test_end_to_end_on_a_real_face_photo_scores_every_present_modality(tiny_onnx):
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image provides the astronaut photo")
    import cv2

    frame = np.zeros((480, 640, 3), np.uint8)
    frame[40:440, 120:520] = cv2.resize(skimage_data.astronaut(), (400, 400), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:480, 0:640]
    depth = 600 + 60 * (((xx - 290) / 90.0) ** 2 + ((yy - 150) / 110.0) ** 2)
    depth -= 30 * np.exp(-((xx - 290) ** 2 + (yy - 150) ** 2) / (2 * 10.0**2))
    ir = np.clip(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(int) + 60, 0, 255).astype(np.uint8)
    frameset = FrameSet(rgb=frame, depth=np.rint(depth).astype(np.uint16), ir=ir, color_aligned_to_depth=True)
    detector = Detector.load(tiny_onnx, engine="onnxruntime")
    verdict = detector.check(frameset)
    assert verdict.score is not None and 0.0 <= verdict.score <= 1.0, verdict.reason
    assert verdict.modalities == ("rgb", "depth", "ir") and verdict.box is not None
    assert verdict.status in ("live", "attack", "uncertain")
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
    """A live source delivering a frameset every 5 ms, whether or not anyone keeps up."""

    is_live = True

    def __iter__(self):
        import time

        for i in range(60):
            time.sleep(0.005)
            yield _head_frameset(stamp=5.0 * (i + 1))


def test_stream_of_a_live_source_scores_the_newest_frames_and_reports_the_skipped(engine, score):
    detector = _detector(_SlowEngine(engine), _Result("ok", "", _crops()), threshold=score - 0.2)
    results = list(detector.stream(_LiveCamera()))
    numbers = [r.frameset.frame_number for r in results]
    assert numbers == sorted(set(numbers)) and numbers[-1] == 300  # in order, the last frameset (5 ms × 60) scored
    assert len(results) < 20 and len(results) + sum(r.skipped for r in results) == 60
    assert results[-1].session.status == "live"
    recorded = list(detector.stream([_head_frameset(stamp=5.0 * (i + 1)) for i in range(10)]))
    assert len(recorded) == 10 and not any(r.skipped for r in recorded)  # not live: every frameset
