"""benchmarks/bench_synthetic_dg.py: folds keep people, instruments and the held-out target apart;
presentation scores, the paired test, and a quick run whose printed table adds up."""
import re
import sys

import numpy as np
import pytest
import torch

from mmdg_edge.sensors.synthetic import DOMAIN_NAMES, MASK_FAMILIES
from mmdg_edge.stats import clopper_pearson
from mmdg_edge.train.synthetic_data import SyntheticCrops

from script_modules import loaded

RATE = r"(\d+)/(\d+)\s+([\d.]+) \[\s*([\d.]+),\s*([\d.]+)\]"
ROW = re.compile(rf"^(?P<name>\S.*?)\s+(?P<variant>plain|MMDG\+\+ \(both\))\s+(?P<runs>\d+)\s+APCER\s+{RATE}\s+"
                 rf"BPCER\s+{RATE}\s+HTER\s+(?P<hter>[\d.]+) ±")
VERDICT = r"(significant at 5 %|not significant)"
SIGNIFICANCE = re.compile(rf"^(?P<name>\S.*?)\s+(?P<variant>MMDG\+\+ \(both\))\s+(?P<pairs>\d+)\s+"
                          rf"(?P<hter>[+-][\d.]+)\s+(?P<p_hter>[\d.]+)\s+(?P<verdict_hter>{VERDICT})\s+"
                          rf"(?P<apcer>[+-][\d.]+)\s+(?P<p_apcer>[\d.]+)\s+(?P<verdict_apcer>{VERDICT})$")
RUN = re.compile(rf"^  (?P<variant>plain|MMDG\+\+ \(both\))\s+APCER\s+{RATE}\s+BPCER\s+{RATE}\s+"
                 r"HTER\s+(?P<hter>[\d.]+)\s+AUC\s+(?P<auc>[\d.]+)")


@pytest.fixture(scope="module")
def bench():
    with loaded("benchmarks/bench_synthetic_dg.py") as module:
        yield module


def _ids(presentations):
    people = {p.subject.id for p in presentations}
    instruments = {p.instrument.id for p in presentations if p.instrument is not None}
    return people, instruments


@pytest.mark.parametrize("held_out", ["family:silicone", "family:resin", "domain:d415", "domain:d435-near"])
def test_folds_keep_people_instruments_and_the_target_apart(bench, held_out):
    kind, name = held_out.split(":")
    fold = bench.family_fold(name) if kind == "family" else bench.domain_fold(name)
    plans = {split: bench.plan(fold, split, people, 12, 2, seed=1)
             for split, people in zip(bench.SPLITS, (40, 20, 40))}
    firsts = {"train": 0, "val": 100, "test": 200}
    for split, presentations in plans.items():
        people, _ = _ids(presentations)
        numbers = {int(p[1:]) for p in people}
        lowest, span = firsts[split], (40, 20, 40)[bench.SPLITS.index(split)]
        assert numbers <= set(range(lowest, lowest + span)) and len(numbers) > 1, split
        assert {p.num_frames for p in presentations} == {2}
        live = sum(p.instrument is None for p in presentations)
        assert (live, len(presentations)) == ((12, 48) if split == "train" else (12, 24)), split
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not _ids(plans[a])[0] & _ids(plans[b])[0] and not _ids(plans[a])[1] & _ids(plans[b])[1]
    masks = {split: {p.instrument.family for p in ps if p.instrument is not None and p.kind == "mask"}
             for split, ps in plans.items()}
    domains = {split: {p.domain for p in ps} for split, ps in plans.items()}
    if kind == "family":
        assert {p.kind for p in plans["test"]} == {"live", "mask"} and masks["test"] == {name}
        assert masks["train"] == set(MASK_FAMILIES) - {name} and name not in masks["val"]
        assert domains["train"] == domains["test"] == {DOMAIN_NAMES.index(d) for d in bench.FAMILY_DOMAINS}
    else:
        assert {p.kind for p in plans["test"]} == {"live", "print", "replay", "mask"}
        assert domains["test"] == {DOMAIN_NAMES.index(name)} and len(domains["train"]) == 4
        assert DOMAIN_NAMES.index(name) not in domains["train"] | domains["val"]
        assert masks["train"] == set(MASK_FAMILIES)
    assert fold.domain_labels() == {d: i for i, d in enumerate(fold.train_domains + (() if kind == "family" else
                                                                                      fold.test_domains))}
    assert bench.plan(fold, "test", 40, 12, 2, seed=1) == plans["test"]
    assert bench.plan(fold, "test", 40, 12, 2, seed=2) != plans["test"]


def test_a_presentation_scores_the_mean_of_its_accepted_framesets(bench):
    presentations = bench.plan(bench.family_fold("latex"), "test", 4, 2, 3, seed=0)
    # presentation 1's framesets were all refused by the aligner; 0 kept two of three, 2 and 3 one each
    shown = np.array([0, 0, 2, 3])
    crops = SyntheticCrops(np.zeros((4, 3, 1, 1, 3), np.uint8), np.ones((4, 3), bool), np.zeros(4, np.int64),
                           np.zeros(4, np.int64), np.array(["mask"] * 4), shown)
    split = bench.Split(presentations, crops)
    np.testing.assert_allclose(split.scores(np.array([0.2, 0.4, 0.9, 0.05])), [0.3, bench.NO_FACE_SCORE, 0.9, 0.05])
    assert split.labels.tolist() == [1, 1, 0, 0]


def test_the_paired_test_needs_six_agreeing_pairs_for_five_percent(bench):
    assert bench.paired_test([-1.0] * 6) == pytest.approx(2 / 2**6)
    assert bench.paired_test([-1.0] * 5) == pytest.approx(2 / 2**5) and bench.paired_test([-1.0] * 5) > 0.05
    assert bench.paired_test([0.0, 0.0, 0.0]) == 1.0  # no pair differs: nothing to test
    assert bench.paired_test([-3.0, 2.0, -1.0, 4.0, -2.0, 1.0]) > 0.5


def test_tables_pool_counts_over_folds_and_seeds_and_pair_variants_with_plain(bench, capsys):
    from mmdg_edge.stats import Rate

    folds = [bench.family_fold("resin"), bench.family_fold("latex"), bench.domain_fold("d455")]
    results = {}
    for f, fold in enumerate(folds):
        for seed in (0, 1):
            # plain: 11 of 20 masks and 1 of 20 bona fide wrong (HTER (0.55 + 0.05) / 2); MMDG++ one mask fewer,
            # one bona fide more (the same HTER but for float rounding), except on d455, where it does better
            better = fold.name == "domain:d455"
            for variant, apcer, bpcer in (("plain", 11 + f, 1), ("both", 10 + f - 4 * better, 2)):
                rates = Rate.from_counts(apcer, 20), Rate.from_counts(bpcer, 20)
                results[(fold.name, seed, variant)] = {"apcer": rates[0], "bpcer": rates[1], "seed": seed,
                                                       "hter": (rates[0].value + rates[1].value) / 2, "auc": 0.9}
    bench.print_tables(results, folds, ["plain", "both"])
    out = capsys.readouterr().out
    rows = {(m.group("name"), m.group("variant")): m for m in map(ROW.match, out.splitlines()) if m}
    assert len(rows) == 12  # 3 folds + 2 protocols + all folds, 2 variants each
    assert _rates(rows[("family:latex", "plain")], 4)[:2] == (2 * 12, 40)
    assert _rates(rows[("leave-one-family-out", "plain")], 4)[:2] == (2 * 11 + 2 * 12, 80)
    assert _rates(rows[("all folds", "MMDG++ (both)")], 4)[:2] == (2 * 10 + 2 * 11 + 2 * 8, 120)
    assert _rates(rows[("all folds", "MMDG++ (both)")], 9)[:2] == (12, 120)
    for match in rows.values():
        _check_rate(*_rates(match, 4))
        _check_rate(*_rates(match, 9))
    assert rows[("leave-one-family-out", "plain")].group("runs") == "4"
    assert float(rows[("leave-one-family-out", "plain")].group("hter")) == pytest.approx(100 * (0.575 + 0.05) / 2,
                                                                                          abs=0.06)
    verdicts = {m.group("name"): m for m in map(SIGNIFICANCE.match, out.splitlines()) if m}
    assert set(verdicts) == {"leave-one-family-out", "leave-one-domain-out", "all folds"}
    family, domain, every = (verdicts[k] for k in ("leave-one-family-out", "leave-one-domain-out", "all folds"))
    # equal HTERs are ties, not float-noise differences: nothing to test
    assert family.group("pairs", "hter", "p_hter", "verdict_hter") == ("4", "+0.0", "1.000", "not significant")
    # four masks fewer in all 4 pairs: as low as 4 pairs go (2 / 2^4), still not significant
    assert family.group("apcer", "p_apcer", "verdict_apcer") == ("-5.0", "0.125", "not significant")
    assert domain.group("pairs", "apcer") == ("2", "-25.0")  # 8 of 20 masks instead of 13
    # over all 6 pairs every APCER difference is negative: 2 / 2^6
    assert every.group("pairs", "p_apcer", "verdict_apcer") == ("6", "0.031", "significant at 5 %")


@pytest.mark.parametrize("argv, message", [
    (["--families", "rubber"], "--families"), (["--domains", "d999"], "--domains"),
    (["--families", "none", "--domains", "none"], "nothing to hold out"), (["--variants", "plain,magic"], "--variants"),
    (["--presentations", "4,4"], "--presentations"), (["--seeds", "0"], "--seeds"), (["--threads", "0"], "--threads"),
    (["--people", "101,20,40"], "at most 100 per split"),
])
def test_bad_options_are_named(bench, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def _rates(match, offset):
    k, n, value, lower, upper = (match.group(offset + i) for i in range(5))
    return int(k), int(n), float(value), float(lower), float(upper)


def _check_rate(k, n, value, lower, upper):
    assert 0 <= k <= n and value == pytest.approx(100 * k / n, abs=0.05)
    assert 0.0 <= lower <= value <= upper <= 100.0
    assert (lower, upper) == pytest.approx(tuple(100 * v for v in clopper_pearson(k, n)), abs=0.05)


def test_quick_run_prints_a_table_that_adds_up(bench, capsys):
    threads = torch.get_num_threads()
    results = bench.main(["--quick"])
    out = capsys.readouterr().out
    assert torch.get_num_threads() == threads  # the run's one thread is not left on the test process
    quick = bench.QUICK
    assert "estimated" in out and f"variants {len(quick['variants'])};" in out
    assert set(results) == {(f"family:{quick['families'][0]}", 0, v) for v in quick["variants"]}
    attacks = bona_fide = quick["presentations"][2]  # test: as many attack as bona fide presentations
    runs = [m for m in map(RUN.match, out.splitlines()) if m]
    assert len(runs) == 2
    for match in runs:
        apcer, bpcer = _rates(match, 2), _rates(match, 7)
        assert (apcer[1], bpcer[1]) == (attacks, bona_fide)
        _check_rate(*apcer)
        _check_rate(*bpcer)
        assert float(match.group("hter")) == pytest.approx((apcer[2] + bpcer[2]) / 2, abs=0.1)
        assert 0.0 <= float(match.group("auc")) <= 100.0
    rows = [m for m in map(ROW.match, out.splitlines()) if m]
    by_name = {}
    for match in rows:
        by_name.setdefault(match.group("name"), []).append(match)
        _check_rate(*_rates(match, 4))
        _check_rate(*_rates(match, 9))
    assert set(by_name) == {"family:resin", "leave-one-family-out"}
    for fold_row, protocol_row, run in zip(by_name["family:resin"], by_name["leave-one-family-out"], runs):
        # one seed: the fold's pooled counts are its run's, and the protocol's the sum of its one fold's
        assert fold_row.group("variant") == protocol_row.group("variant") == run.group("variant")
        assert _rates(fold_row, 4)[:2] == _rates(protocol_row, 4)[:2] == _rates(run, 2)[:2]
        assert _rates(fold_row, 9)[:2] == _rates(protocol_row, 9)[:2] == _rates(run, 7)[:2]
        assert fold_row.group("runs") == "1"
    both = results[("family:resin", 0, "both")]
    assert (both["apcer"].errors, both["bpcer"].errors) == (_rates(runs[1], 2)[0], _rates(runs[1], 7)[0])
    verdicts = [m for m in map(SIGNIFICANCE.match, out.splitlines()) if m]
    assert len(verdicts) == 1 and verdicts[0].group("name") == "leave-one-family-out"
    verdict = verdicts[0]
    assert verdict.group("variant") == "MMDG++ (both)" and verdict.group("pairs") == "1"
    plain_run, both_run = runs
    assert float(verdict.group("hter")) == pytest.approx(
        float(both_run.group("hter")) - float(plain_run.group("hter")), abs=0.15)
    assert float(verdict.group("apcer")) == pytest.approx(_rates(both_run, 2)[2] - _rates(plain_run, 2)[2], abs=0.15)
    # one pair can never be significant: p is 1 for either metric
    assert verdict.group("p_hter", "verdict_hter", "p_apcer", "verdict_apcer") == (
        "1.000", "not significant", "1.000", "not significant")
