"""Metrics and the ISO/IEC 30107-3 report against hand-computed values on small score sets."""
import math

import numpy as np
import pytest

from mmdg_edge.train.metrics import (
    compute_metrics, error_rates, threshold_at_eer, threshold_for_apcer, threshold_for_bpcer,
)
from mmdg_edge.stats import Rate
from mmdg_edge.train.reporting import format_table, iso_report, save_det_plot, save_roc_plot

# 4 live then 4 attacks. Sorted: 0.9 L, 0.8 L, 0.7 L, 0.6 A, 0.4 A, 0.3 L, 0.2 A, 0.1 A.
SCORES = [0.9, 0.8, 0.7, 0.3, 0.6, 0.4, 0.2, 0.1]
LABELS = [1, 1, 1, 1, 0, 0, 0, 0]
SPECIES = ["live", "live", "live", "live", "print", "replay", "print", "replay"]


def test_rates_at_a_given_threshold_by_hand():
    apcer, bpcer = error_rates(SCORES, LABELS, 0.5)
    # attacks ≥ 0.5: 0.6 → 1 of 4; live < 0.5: 0.3 → 1 of 4
    assert (apcer.errors, apcer.trials, apcer.value) == (1, 4, 0.25) and (bpcer.errors, bpcer.value) == (1, 0.25)
    # exact interval of 1/4: lower = 1 − 0.975^(1/4); upper solves (1−p)⁴ + 4p(1−p)³ = 0.025
    assert (apcer.lower, apcer.upper) == pytest.approx((1 - 0.975 ** 0.25, 0.8059), abs=1e-4)


def test_compute_metrics_by_hand():
    m = compute_metrics(SCORES, LABELS, threshold=0.65)
    assert m["apcer"].value == 0.0 and m["bpcer"].value == 0.25 and m["hter"] == pytest.approx(0.125)
    # 16 live/attack pairs, 14 ordered correctly (live 0.3 is below the attacks 0.6 and 0.4)
    assert m["auc"] == pytest.approx(14 / 16)
    assert m["eer"] == pytest.approx(0.25)
    assert m["tpr_at_fpr_1"] == pytest.approx(0.75)  # above 0.6 no attack passes, 3 of 4 live do
    assert m["threshold"] == 0.65 and m["apcer"].trials == 4 and m["bpcer"].trials == 4


def test_without_threshold_the_eer_threshold_of_the_scores_is_used():
    m = compute_metrics(SCORES, LABELS)
    # from 0.6 down to just above 0.4: attack 0.6 accepted (1/4), live 0.3 rejected (1/4): the two errors
    # balance; the threshold sits in the middle of that gap
    assert m["threshold"] == pytest.approx(0.5) == threshold_at_eer(SCORES, LABELS)
    assert m["apcer"].value == m["bpcer"].value == m["hter"] == m["eer"] == 0.25


def test_perfect_separation_gives_zero_errors_and_unit_auc():
    m = compute_metrics([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    assert m["hter"] == 0.0 and m["eer"] == 0.0 and m["auc"] == 1.0 and m["tpr_at_fpr_1"] == 1.0
    assert m["threshold"] == pytest.approx(0.5)  # the middle of the gap, not the lowest live score


@pytest.mark.parametrize("target, rejected_above, apcer, bpcer", [
    (0.0, 0.6, 0.0, 0.25),    # no attack may pass: just above the highest attack, 0.6
    (0.1, 0.6, 0.0, 0.25),    # 10 % of 4 attacks rounds down to 0
    (0.25, 0.4, 0.25, 0.25),  # one attack (0.6) may pass: just above 0.4
    (0.5, 0.2, 0.5, 0.0),     # two may pass: just above 0.2, live 0.3 accepted again
])
def test_threshold_for_apcer_by_hand(target, rejected_above, apcer, bpcer):
    t = threshold_for_apcer(SCORES, LABELS, target)
    assert t == np.nextafter(rejected_above, np.inf)
    rates = error_rates(SCORES, LABELS, t)
    assert (rates[0].value, rates[1].value) == (apcer, bpcer)


@pytest.mark.parametrize("target, threshold, rejected", [(0.0, 0.3, 0), (0.24, 0.3, 0), (0.25, 0.7, 1),
                                                          (0.5, 0.8, 2), (0.99, 0.9, 3)])
def test_threshold_for_bpcer_by_hand(target, threshold, rejected):
    # the live scores of SCORES sorted: 0.3, 0.7, 0.8, 0.9; ⌊target·4⌋ of them may fall below
    t = threshold_for_bpcer(np.array(SCORES)[np.array(LABELS) == 1], target)
    assert t == threshold
    apcer, bpcer = error_rates(SCORES, LABELS, t)
    assert bpcer.errors == rejected and bpcer.value <= target
    # any higher threshold rejects one more live score than the target allows
    assert error_rates(SCORES, LABELS, np.nextafter(t, 1.0))[1].value > target


def test_threshold_for_bpcer_ties_reject_fewer_and_bad_input_is_named():
    assert threshold_for_bpcer([0.5, 0.5, 0.5, 0.9], 0.5) == 0.5  # 0 below 0.5, though 2 were allowed
    with pytest.raises(ValueError, match="target"):
        threshold_for_bpcer([0.5], 1.0)
    with pytest.raises(ValueError, match="live_scores"):
        threshold_for_bpcer([0.5, float("nan")], 0.05)
    with pytest.raises(ValueError, match="live_scores"):
        threshold_for_bpcer([], 0.05)


def test_threshold_for_apcer_allowing_every_attack_accepts_everything():
    assert threshold_for_apcer(SCORES, LABELS, 1.0) == 0.1


def test_threshold_for_apcer_per_species_bounds_the_worst_species():
    # 50 %: print (0.6, 0.2) may pass one → just above 0.2; replay (0.4, 0.1) may pass one → just
    # above 0.1; both must hold, so the higher of the two.
    assert threshold_for_apcer(SCORES, LABELS, 0.5, SPECIES) == np.nextafter(0.2, np.inf)
    # 25 %: each species of 2 may pass none → above 0.6 (pooled would allow above 0.4)
    assert threshold_for_apcer(SCORES, LABELS, 0.25, SPECIES) == np.nextafter(0.6, np.inf)
    assert threshold_for_apcer(SCORES, LABELS, 0.25) == np.nextafter(0.4, np.inf)


def test_target_rounding_keeps_allowed_errors():
    # 0.29 · 100 = 28.999… in floating point; 29 attacks may still pass.
    scores = list(np.linspace(0.0, 0.99, 100)) + [1.0]
    labels = [0] * 100 + [1]
    t = threshold_for_apcer(scores, labels, 0.29)
    assert error_rates(scores, labels, t)[0].value == pytest.approx(0.29)


def test_iso_report_by_hand():
    report = iso_report(SCORES, LABELS, SPECIES, threshold=0.5)
    # print: 0.6 accepted, 0.2 rejected → 1/2; replay: 0.4, 0.1 rejected → 0/2
    assert report.apcer_per_species == {"print": Rate.from_counts(1, 2), "replay": Rate.from_counts(0, 2)}
    assert report.worst_species == "print" and report.apcer_max.value == 0.5
    assert (report.apcer.errors, report.apcer.trials) == (1, 4)
    assert (report.bpcer.errors, report.bpcer.trials) == (1, 4)
    assert report.acer == pytest.approx((0.5 + 0.25) / 2)
    # BPCER100/20/10: each species of 2 may pass no attack → threshold just above 0.6 → live 0.3 rejected
    for name in ("BPCER100", "BPCER20", "BPCER10"):
        assert report.thresholds_at_apcer[name] == np.nextafter(0.6, np.inf)
        assert (report.bpcer_at_apcer[name].errors, report.bpcer_at_apcer[name].trials) == (1, 4)
    assert report.non_response.errors == 0 and report.non_response.upper == pytest.approx(0.3694, abs=1e-4)
    assert report.apcer_max.lower == pytest.approx(1 - math.sqrt(0.975))


def test_iso_report_counts_non_responses_apart():
    scores = list(SCORES)
    scores[1] = scores[7] = float("nan")  # live 0.8 and the replay attack 0.1 got no decision
    responded = [True, False, True, True, True, True, True, False]
    report = iso_report(scores, LABELS, SPECIES, threshold=0.5, responded=responded)
    assert (report.apcer_per_species["replay"].errors, report.apcer_per_species["replay"].trials) == (0, 1)
    assert (report.bpcer.errors, report.bpcer.trials) == (1, 3)
    assert (report.attack_non_response.errors, report.attack_non_response.trials) == (1, 4)
    assert (report.bona_fide_non_response.errors, report.bona_fide_non_response.trials) == (1, 4)
    assert report.non_response.value == 0.25


def test_without_species_all_attacks_are_one_species():
    report = iso_report(SCORES, LABELS, threshold=0.5)
    assert list(report.apcer_per_species) == ["attack"] and report.apcer_max == report.apcer
    # pooled: one of four attacks may pass at 25 %, but 1 %, 5 %, 10 % of 4 allow none
    assert report.bpcer_at_apcer["BPCER10"].value == 0.25


def test_format_table_shows_species_rows_and_intervals():
    table = format_table(iso_report(SCORES, LABELS, SPECIES, threshold=0.5))
    print_row = next(line for line in table.splitlines() if line.startswith("APCER print"))
    assert print_row.split()[2:] == ["1/2", "50.00", "[1.26,", "98.74]"]
    assert "APCER_max (print)" in table and "BPCER100" in table and "non-response, all" in table
    assert "threshold 0.5000" in table.splitlines()[0]


def test_roc_and_det_plots_are_png_files(tmp_path):
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.uniform(0.3, 1.0, 50), rng.uniform(0.0, 0.7, 50)])
    labels = np.array([1] * 50 + [0] * 50)
    roc = save_roc_plot(scores, labels, tmp_path / "plots" / "roc.png", threshold=0.5)
    det = save_det_plot(scores, labels, tmp_path / "det.png")
    for path in (roc, det):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    with pytest.raises(ValueError, match="expected a .png file"):
        save_roc_plot(scores, labels, tmp_path / "roc.jpg")


def test_plots_have_titles_and_mark_the_operating_point_where_it_is(tmp_path, monkeypatch):
    import matplotlib.figure
    from scipy.stats import norm

    saved = []
    savefig = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda self, *a, **k: (saved.append(self),
                                                                                   savefig(self, *a, **k))[1])
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.uniform(0.3, 1.0, 50), rng.uniform(0.0, 0.7, 50)])
    labels = np.array([1] * 50 + [0] * 50)
    apcer, bpcer = (scores[labels == 0] >= 0.5).mean(), (scores[labels == 1] < 0.5).mean()
    save_det_plot(scores, labels, tmp_path / "det.png", threshold=0.5, title="DET curve, site-a test subjects")
    save_roc_plot(scores, labels, tmp_path / "roc.png", threshold=0.5)
    det, roc = (figure.axes[0] for figure in saved)
    assert det.get_title() == "DET curve, site-a test subjects" and roc.get_title() == "ROC curve"
    point = next(line for line in det.get_lines() if line.get_label() == "operating point (threshold 0.5000)")
    assert point.get_xdata()[0] == pytest.approx(norm.ppf(apcer)) and point.get_ydata()[0] == pytest.approx(
        norm.ppf(bpcer))
    marker = next(line for line in roc.get_lines() if line.get_label() == "threshold 0.5000")
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == pytest.approx((apcer, 1 - bpcer))


@pytest.mark.parametrize("call, message", [
    (lambda: compute_metrics([0.1, 0.2], [1, 1]), "both live"),
    (lambda: compute_metrics([0.1, 0.2], [1, 2]), "labels: expected 1"),
    (lambda: compute_metrics([0.1, float("nan")], [1, 0]), "scores: 1 NaN"),
    (lambda: compute_metrics([0.1, 0.2, 0.3], [1, 0]), "one length"),
    (lambda: threshold_for_apcer(SCORES, LABELS, 1.5), "target: expected an APCER"),
    (lambda: iso_report(SCORES, LABELS, SPECIES[:3], threshold=0.5), "species: expected one entry"),
    (lambda: iso_report(SCORES, LABELS, threshold=0.5, responded=[1] * 8), "responded: expected 8 booleans"),
])
def test_bad_inputs_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_det_plot_of_a_small_separable_collection_draws_its_curve_inside_the_axes(tmp_path, monkeypatch):
    """eval --det on a small collection drew only the operating point, clipped at the edge: every
    rate was 0 or 1, which has no normal deviate."""
    import matplotlib.figure
    from scipy.stats import norm

    saved = []
    savefig = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda self, *a, **k: (saved.append(self),
                                                                                   savefig(self, *a, **k))[1])
    scores = np.array([0.9, 0.8, 0.85, 0.7] + [0.1, 0.2, 0.15, 0.3, 0.05, 0.25, 0.12, 0.18])
    labels = np.array([1] * 4 + [0] * 8)
    save_det_plot(scores, labels, tmp_path / "det.png", threshold=0.5)
    axes = saved[0].axes[0]
    curve, point = axes.get_lines()
    low, high = axes.get_xlim()
    assert len(curve.get_xdata()) >= 3 and np.all((low < curve.get_xdata()) & (curve.get_xdata() < high))
    assert np.all((low < curve.get_ydata()) & (curve.get_ydata() < high))
    # no error at the threshold: drawn half an attack and half a bona fide presentation in from the edge
    assert (point.get_xdata()[0], point.get_ydata()[0]) == pytest.approx((norm.ppf(0.5 / 8), norm.ppf(0.5 / 4)))
    assert low < point.get_xdata()[0] and low < point.get_ydata()[0]
