"""Metrics against hand-computed values on small score sets."""
import pytest

from mmdg_edge.train.metrics import compute_metrics, error_rates, threshold_at_eer

SCORES = [0.9, 0.8, 0.7, 0.3, 0.6, 0.4, 0.2, 0.1]
LABELS = [1, 1, 1, 1, 0, 0, 0, 0]


def test_rates_at_a_given_threshold_by_hand():
    rates = error_rates(SCORES, LABELS, 0.5)
    # attacks ≥ 0.5: 0.6 → 1 of 4; live < 0.5: 0.3 → 1 of 4
    assert rates["apcer"] == 0.25 and rates["bpcer"] == 0.25 and rates["acer"] == 0.25
    assert rates["apcer_ci"][0] < 0.25 < rates["apcer_ci"][1]


def test_compute_metrics_by_hand():
    m = compute_metrics(SCORES, LABELS, threshold=0.65)
    assert m["apcer"] == 0.0 and m["bpcer"] == 0.25 and m["hter"] == pytest.approx(0.125)
    # 16 live/attack pairs, 14 ordered correctly (0.3 is below the attacks 0.6 and 0.4)
    assert m["auc"] == pytest.approx(14 / 16)
    assert m["eer"] == pytest.approx(0.25)
    assert m["tpr_at_fpr_1"] == pytest.approx(0.75)  # above 0.6 no attack passes, 3 of 4 live do


def test_eer_threshold_balances_the_two_errors():
    t = threshold_at_eer(SCORES, LABELS)
    rates = error_rates(SCORES, LABELS, t)
    assert rates["apcer"] == rates["bpcer"]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="both live"):
        compute_metrics([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="labels: expected 1"):
        compute_metrics([0.1, 0.2], [1, 2])
