"""benchmarks/bench_time_to_decision.py: its camera clock by hand, and a quick run of the whole benchmark."""
import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("bench_time_to_decision",
                                               REPO / "benchmarks" / "bench_time_to_decision.py")
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench  # its dataclasses look their module up there
_SPEC.loader.exec_module(bench)


class _FakeTime:
    """perf_counter and sleep on a clock the test moves."""

    def __init__(self):
        self.now_s = 100.0

    def perf_counter(self):
        return self.now_s

    def sleep(self, seconds):
        self.now_s += seconds


class _Engine:
    def __init__(self, busy):
        self.busy = busy


def _take(clock, fake, work_ms):
    """Indices and skip counts the clock hands a consumer that works ``work_ms`` on each frameset."""
    got = []
    for frameset, skipped in clock:
        got.append((frameset, skipped, round(clock.now_ms(), 1)))
        fake.now_s += work_ms / 1000.0
    return got


def test_the_camera_clock_hands_out_the_newest_arrival_and_jumps_idle_waits(monkeypatch):
    fake = _FakeTime()
    monkeypatch.setattr(bench, "time", fake)
    frames = list(range(8))
    # 45 ms of work per frameset at 33.3 ms per arrival: the newest arrived one, the rest skipped
    assert [(f, s) for f, s, _ in _take(bench.CameraClock(frames, _Engine(False)), fake, 45.0)] == [
        (0, 0), (1, 0), (2, 0), (4, 1), (5, 0), (6, 0), (7, 0)]
    # 5 ms of work: every frameset, each at its arrival (the idle waits cost no wall time)
    fast = _take(bench.CameraClock(frames, _Engine(False)), fake, 5.0)
    assert [(f, s) for f, s, _ in fast] == [(i, 0) for i in range(8)]
    assert [t for _, _, t in fast] == [round(i * 1000 / 30, 1) for i in range(8)]
    started = fake.now_s
    busy = _take(bench.CameraClock(frames[:3], _Engine(True)), fake, 5.0)  # a pipelined engine at work
    assert [f for f, _, _ in busy] == [0, 1, 2] and fake.now_s - started >= 2 * 0.0333  # waited for real


@pytest.mark.slow
def test_a_quick_run_prints_every_row_and_vetoed_attacks_cost_no_engine_run(capsys, tiny_onnx):
    bench.main(["--quick", "--int8-model", str(tiny_onnx)])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("demo model", "tiny.onnx"))]
    assert len(rows) == 8, out
    tails = [re.search(r"(\d+)/(\d+)(?: \(([^)]*)\))?\s+([\d.]+)$", row) for row in rows]
    assert all(tails), out
    for engine in (rows[:4], rows[4:]):
        assert "1.00" in engine[0] and " no " in engine[0]  # each engine's baseline: its own ratios are 1
    runs = [float(tail.group(4)) for tail in tails]
    # the veto short-cut: prints and replays (vetoed) never reach the engine
    assert runs[1] < runs[0] and runs[3] < runs[2] and runs[5] < runs[4] and runs[7] < runs[6], out
    opened_kinds = " ".join(tail.group(3) or "" for tail in tails)
    assert "print" not in opened_kinds and "replay" not in opened_kinds, out  # the physics stops them every time
