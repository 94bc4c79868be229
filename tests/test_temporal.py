"""Session decisions per face track: live only on a run of live verdicts, ended by any other verdict."""
import pytest

from mmdg_edge.frames import FaceQuality, Verdict
from mmdg_edge.geometry import box_iou
from mmdg_edge.temporal import SessionTracker, TemporalConfig

BOX = (100.0, 100.0, 200.0, 200.0)
OTHER = (400.0, 100.0, 500.0, 200.0)
CONFIG = TemporalConfig(window=4, live_votes=3, attack_votes=2)


def _v(status, box=BOX, distance=0.6, origin="camera"):
    quality = FaceQuality(100.0, distance, 50.0, 1.0, True)
    return Verdict(status, "test", box=box if status != "no_face" else None, quality=quality, origin=origin)


def _run(tracker, statuses, **kwargs):
    return [tracker.update(_v(s, **kwargs), 33.0 * i) for i, s in enumerate(statuses)]


def test_box_iou_by_hand():
    assert box_iou(BOX, BOX) == 1.0
    assert box_iou(BOX, (150.0, 100.0, 250.0, 200.0)) == pytest.approx(50 * 100 / (2 * 10000 - 5000))
    assert box_iou(BOX, OTHER) == 0.0


def test_live_needs_k_live_verdicts_in_a_row_and_opens_the_door_once():
    decisions = _run(SessionTracker(CONFIG), ["live", "uncertain", "live", "live", "live", "live"])
    assert [d.status for d in decisions] == ["pending", "pending", "pending", "pending", "live", "live"]
    assert [d.opened for d in decisions] == [False, False, False, False, True, False]
    assert decisions[4].live_votes == 3 and decisions[4].time_to_decision_ms == pytest.approx(4 * 33.0)


@pytest.mark.parametrize("then", ["uncertain", "attack", "unreliable", "error", "no_face"])
def test_any_non_live_verdict_ends_the_live_session_at_once(then):
    decisions = _run(SessionTracker(CONFIG), ["live"] * 4 + [then, "live", "live", "live"])
    assert decisions[3].status == "live" and decisions[4].status != "live"
    assert [d.status for d in decisions[5:]] == ["pending", "pending", "live"]  # K live in a row again
    assert not any(d.opened for d in decisions[5:])  # the same track: the door opened once


def test_attack_votes_decide_attack():
    decisions = _run(SessionTracker(TemporalConfig(window=5, live_votes=3, attack_votes=2)),
                     ["live", "live", "live", "attack", "attack"])
    assert [d.status for d in decisions[2:]] == ["live", "pending", "attack"]


@pytest.mark.parametrize("changed", [
    {"box": OTHER},  # the face moved away
    {"box": (90.0, 90.0, 220.0, 220.0)},  # 30 % larger at the same place: IoU 0.59, but not the same face
    {"distance": 0.8},  # the same place, 20 cm further: something else stands there now
], ids=["jump", "size", "depth"])
def test_a_jump_in_box_or_depth_starts_a_new_track(changed):
    tracker = SessionTracker(CONFIG)
    first = _run(tracker, ["live"] * 3)[-1]
    swapped = tracker.update(_v("live", **changed), 200.0)
    assert first.status == "live" and swapped.status == "pending"
    assert swapped.track_id == first.track_id + 1 and swapped.live_votes == 1
    again = [tracker.update(_v("live", **changed), 233.0 + i) for i in range(2)]
    assert again[-1].opened  # a new track may open the door again


def test_face_leaving_ends_the_track_after_max_missing():
    tracker = SessionTracker(TemporalConfig(window=4, live_votes=2, attack_votes=2, max_missing=1))
    _run(tracker, ["live", "live"])
    assert tracker.update(_v("no_face"), 66).status == "pending"  # one dropped frame keeps the track, not the session
    assert tracker.update(_v("no_face"), 99).status == "no_face"
    assert tracker.update(_v("live"), 132).track_id == 2


def test_a_frozen_feed_is_a_pending_session_that_says_why_not_no_face():
    tracker = SessionTracker(TemporalConfig(window=4, live_votes=2, attack_votes=2, max_missing=1))
    _run(tracker, ["live"])
    frozen = Verdict("unreliable", "frozen stream: rgb repeats its pixels", origin="camera")  # never searched
    decisions = [tracker.update(frozen, 33.0 * i) for i in range(1, 5)]
    assert [d.status for d in decisions] == ["pending"] * 4
    assert decisions[-1].reason == "no face track: the framesets are unreliable (frozen stream: rgb repeats its pixels)"
    assert tracker.update(_v("no_face"), 200.0).status == "no_face"  # a searched frameset without a face is


def test_recorded_frames_never_make_a_live_session_unless_allowed():
    refused = _run(SessionTracker(CONFIG), ["live"] * 5, origin="recording")
    assert all(d.status == "pending" for d in refused) and "recording" in refused[-1].reason
    allowed = _run(SessionTracker(CONFIG, allow_recorded=True), ["live"] * 5, origin="recording")
    assert allowed[-1].status == "live" and allowed[-1].reason == ""


def test_config_rejects_impossible_votes():
    with pytest.raises(ValueError, match="live_votes"):
        TemporalConfig(window=3, live_votes=4)


@pytest.mark.parametrize("break_with", ["gap", "backwards", "no time", "origin"])
def test_old_live_evidence_never_joins_new_across_a_break(break_with):
    tracker = SessionTracker(CONFIG, allow_recorded=True)
    for t in range(2):
        assert tracker.update(_v("live"), 33.0 * t).status == "pending"
    later = {"gap": 66.0 + CONFIG.max_gap_ms + 1, "backwards": 10.0, "no time": None, "origin": 66.0}[break_with]
    origin = "recording" if break_with == "origin" else "camera"
    after = tracker.update(_v("live", origin=origin), later)
    assert after.status == "pending" and after.live_votes == 1 and after.track_id == 2
    if later is not None:  # the new track goes on from here, with its own evidence
        decisions = [tracker.update(_v("live", origin=origin), later + 33.0 * i) for i in (1, 2)]
        assert [d.status for d in decisions] == ["pending", "live"] and decisions[1].time_to_decision_ms == 66.0


def test_framesets_within_the_gap_keep_their_track():
    tracker = SessionTracker(CONFIG)
    times = [0.0, CONFIG.max_gap_ms, 2 * CONFIG.max_gap_ms]
    decisions = [tracker.update(_v("live"), t) for t in times]
    assert [d.status for d in decisions] == ["pending", "pending", "live"] and decisions[-1].track_id == 1
