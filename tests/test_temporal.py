"""K-of-N session decisions per face track."""
import pytest

from mmdg_edge.frames import Verdict
from mmdg_edge.temporal import SessionTracker, TemporalConfig, box_iou

BOX = (100.0, 100.0, 200.0, 200.0)
OTHER = (400.0, 100.0, 500.0, 200.0)


def _v(status, box=BOX):
    return Verdict(status, "test", box=box if status != "no_face" else None)


def test_box_iou_by_hand():
    assert box_iou(BOX, BOX) == 1.0
    assert box_iou(BOX, (150.0, 100.0, 250.0, 200.0)) == pytest.approx(50 * 100 / (2 * 10000 - 5000))
    assert box_iou(BOX, OTHER) == 0.0


def test_live_needs_k_of_n_and_reports_time_to_decision():
    tracker = SessionTracker(TemporalConfig(window=4, live_votes=3, attack_votes=2))
    states = [tracker.update(_v(s), t) for s, t in zip(["live", "uncertain", "live", "live"], [0, 100, 200, 300])]
    assert [d.status for d in states] == ["pending", "pending", "pending", "live"]
    assert states[-1].time_to_decision_ms == 300 and states[-1].live_votes == 3


def test_attack_votes_win_over_live_votes():
    tracker = SessionTracker(TemporalConfig(window=5, live_votes=3, attack_votes=2))
    for status in ["live", "live", "live", "attack", "attack"]:
        decision = tracker.update(_v(status), 0)
    assert decision.status == "attack"


def test_a_new_face_starts_a_new_track():
    tracker = SessionTracker(TemporalConfig(window=4, live_votes=2, attack_votes=2))
    tracker.update(_v("live"), 0)
    first = tracker.update(_v("live"), 10)
    swapped = tracker.update(_v("live", OTHER), 20)
    assert first.status == "live" and swapped.status == "pending"
    assert swapped.track_id == first.track_id + 1 and swapped.live_votes == 1


def test_face_leaving_resets_after_max_missing():
    tracker = SessionTracker(TemporalConfig(window=4, live_votes=2, attack_votes=2, max_missing=1))
    tracker.update(_v("live"), 0)
    tracker.update(_v("live"), 1)
    assert tracker.update(_v("no_face"), 2).status == "live"  # one dropped frame keeps the track
    assert tracker.update(_v("no_face"), 3).status == "no_face"
    assert tracker.update(_v("live"), 4).status == "pending"


def test_config_rejects_impossible_votes():
    with pytest.raises(ValueError, match="live_votes"):
        TemporalConfig(window=3, live_votes=4)
