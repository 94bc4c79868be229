"""Time to a decision on a 30 fps camera: from the first frameset with a face to the door opening.

Presentations (synthetic camera, 640×480 RGB-D-IR, a few framesets of the empty room first):
- live: ``--live`` people, person i being ``create_subject(i)`` standing at 0.55-0.7 m for 1.5 s;
- attacks: ``--attacks`` presentations taking turns at print, replay and mask (``create_instrument``),
  each showing another subject's face for 1 s;
the INT8 engine's (``--int8-live``, ``--int8-attacks``) last 4 s each, for a few of its slow verdicts.
Each presentation is played as a camera delivers it: frameset k arrives at k × 33.3 ms. The
pipeline takes the newest frameset that has arrived whenever it is ready for one, and skips the
ones it had no time for, as ``LatestOnly`` does for ``Detector.stream``; the framesets go through
``StreamSession.run``, as ``Detector.stream`` runs a real-time source. The clock is the wall
clock while the pipeline works; while it waits for the next frameset with the engine idle, the
clock jumps to that arrival instead of sleeping (a pipelined engine still at work is waited for).

Per row (an engine, pipelined or not, with or without ``skip_engine_on_veto``):
- latency: from a frameset's arrival to its verdict, p50/p95 (live framesets with a face);
- interval: between consecutive verdicts on a live face, p50 (1000/30 ms where the pipeline keeps up);
- to open: from the arrival of the first frameset with a face to ``session.opened``, p50/p95 over
  the live presentations that opened (a live presentation stops there);
- projected: ``live_votes`` × interval, a projection from the measured interval, not a measurement;
- to deny: from the first frameset with a face to the session's "attack" decision, p50;
- attacks opened (must be 0) and engine runs per attack presentation.
Ratios are against the first row of the same engine (one at a time, the engine running on vetoed
framesets: the behaviour before pipelining and the veto short-cut), measured in the same run: the
rows take turns on every presentation, so load from other processes hits each alike.

Engines: the bundled demo model (``Detector.load("demo")``, as ``mmdg-edge live --source demo``),
and the paper configuration's dynamic INT8 ONNX export (``engines.export``, as
``bench_engines.py``). Its weights are random (timing only): no live session of it opened in our
runs, so its "to open" is the projection alone. Both on CPU onnxruntime
with its default threads.

The first run exports the paper model (207 s on a shared 2-core CPU), later runs reuse it from
``--cache``; the measurements take 128-131 s there with the defaults (two runs, a quiet machine),
``--quick`` 32-41 s (plus 23-37 s to export its tiny model on a first run).

    python benchmarks/bench_time_to_decision.py [--live 20] [--attacks 9] [--int8-live 2]
        [--int8-attacks 3] [--int8-model FILE.onnx] [--quick]
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from mmdg_edge.detector import Detector, DetectorConfig
from mmdg_edge.engines import create_engine
from mmdg_edge.sensors.synthetic import Segment, create_instrument, create_subject, render_sequence

FPS = 30.0
INTERVAL_MS = 1000.0 / FPS
EMPTY_FRAMES = 4  # the empty room before the presentation: the first frameset with a face is the next one
FIRST_FACE_MS = EMPTY_FRAMES * INTERVAL_MS
LIVE_FRAMES, ATTACK_FRAMES = 45, 30  # 1.5 s and 1 s in front of the camera
SLOW_FRAMES = 120  # 4 s: the INT8 engine's presentations, long enough for a few of its verdicts
ATTACK_KINDS = ("print", "replay", "mask")
MODES = (("one at a time", False, False), ("one at a time", False, True), ("pipelined", True, False),
         ("pipelined", True, True))  # (label, pipelined, skip_engine_on_veto); the first is each engine's baseline


class _Probe:
    """The engine, counting its runs and saying whether one is under way (for the camera clock)."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.runs, self._running = engine, 0, threading.Event()

    def run(self, crops: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self._running.set()
        try:
            return self.engine.run(crops, mask)
        finally:
            self._running.clear()
            self.runs += 1

    @property
    def busy(self) -> bool:
        return self._running.is_set()

    def __getattr__(self, name: str) -> Any:  # metadata, describe(), ... of the real engine
        return getattr(self.engine, name)


class CameraClock:
    """A presentation's framesets arriving every ``INTERVAL_MS``; iterating hands out ``(frameset, skipped)``:
    the newest arrived frameset and how many arrived since the last one handed out, as LatestOnly does."""

    def __init__(self, framesets: Sequence[Any], probe: _Probe) -> None:
        self.framesets, self.probe = framesets, probe
        self._start, self._jumped_ms = time.perf_counter(), 0.0

    def now_ms(self) -> float:
        return (time.perf_counter() - self._start) * 1000.0 + self._jumped_ms

    def __iter__(self) -> Iterator[Tuple[Any, int]]:
        self._start, self._jumped_ms = time.perf_counter(), 0.0
        taken = -1
        while taken + 1 < len(self.framesets):
            now = self.now_ms()
            arrived = min(int(now // INTERVAL_MS), len(self.framesets) - 1)
            if arrived <= taken:  # nothing new yet
                if self.probe.busy:  # the pipelined engine works meanwhile: wait for real, polling each 0.1-1 ms
                    time.sleep(max(0.0001, min(0.001, ((taken + 1) * INTERVAL_MS - now) / 1000.0)))
                    continue
                self._jumped_ms += (taken + 1) * INTERVAL_MS - now
                arrived = taken + 1
            yield self.framesets[arrived], arrived - taken - 1
            taken = arrived


@dataclass
class Presentation:
    kind: str  # "live" or the attack's kind
    framesets: List[Any]


def create_presentations(live: int, attacks: int, offset: int = 0, live_frames: int = LIVE_FRAMES,
                         attack_frames: int = ATTACK_FRAMES) -> List[Presentation]:
    """``live`` live and ``attacks`` attack presentations, each one subject (ids from ``offset``)."""
    out = []
    for i in range(offset, offset + live):
        segment = Segment("live", live_frames, domain=i % 4, distance_start_m=0.55 + 0.05 * (i % 4),
                          subject=create_subject(i))
        out.append(Presentation("live", list(render_sequence([Segment("empty", EMPTY_FRAMES), segment], seed=i))))
    for j in range(offset, offset + attacks):
        kind = ATTACK_KINDS[j % len(ATTACK_KINDS)]
        segment = Segment(kind, attack_frames, domain=j % 4, distance_start_m=0.6, subject=create_subject(100 + j),
                          instrument=create_instrument(kind, j // len(ATTACK_KINDS)))
        out.append(Presentation(kind, list(render_sequence([Segment("empty", EMPTY_FRAMES), segment], seed=500 + j))))
    return out


@dataclass
class Row:
    """What one engine in one mode did over every presentation."""

    engine: str
    mode: str
    pipelined: bool
    skip: bool
    latency_ms: List[float] = field(default_factory=list)
    interval_ms: List[float] = field(default_factory=list)
    to_open_ms: List[float] = field(default_factory=list)
    to_deny_ms: List[float] = field(default_factory=list)
    live: int = 0
    attacks: Counter = field(default_factory=Counter)  # presentations per attack kind
    opened: Counter = field(default_factory=Counter)  # of them, those that opened the door
    attack_engine_runs: int = 0

    def attacks_opened(self) -> str:
        """"0/9", or "3/9 (mask 3/3)" naming the kinds that opened."""
        kinds = ", ".join(f"{kind} {self.opened[kind]}/{self.attacks[kind]}" for kind in self.attacks
                          if self.opened[kind])
        text = f"{sum(self.opened.values())}/{sum(self.attacks.values())}"
        return f"{text} ({kinds})" if kinds else text


def present(detector: Detector, probe: _Probe, presentation: Presentation, row: Row) -> None:
    """Play one presentation to the detector as a camera would, into ``row``."""
    session = detector.open_session(allow_recorded=True)  # synthetic framesets, shown as a camera's
    camera, live = CameraClock(presentation.framesets, probe), presentation.kind == "live"
    runs, last_face_ms, opened, denied = probe.runs, None, False, False
    for result in session.run(camera, pipelined=detector.config.pipeline_realtime):
        now = camera.now_ms()
        if live and result.verdict.box is not None:
            row.latency_ms.append(now - result.frameset.frame_number * INTERVAL_MS)
            if last_face_ms is not None:
                row.interval_ms.append(now - last_face_ms)
            last_face_ms = now
        opened = opened or result.session.opened
        if result.session.opened and live:
            row.to_open_ms.append(now - FIRST_FACE_MS)
            break
        if result.session.status == "attack" and not denied and not live:
            denied = True
            row.to_deny_ms.append(now - FIRST_FACE_MS)
    if live:
        row.live += 1
    else:
        row.attacks[presentation.kind] += 1
        row.opened[presentation.kind] += opened
        row.attack_engine_runs += probe.runs - runs


def measure(label: str, engine: Any, aligner: Any, presentations: Sequence[Presentation]) -> List[Row]:
    """Every mode of one engine over the presentations, taking turns on each presentation."""
    probe = _Probe(engine)
    detectors, rows = [], []
    for mode, pipelined, skip in MODES:
        config = replace(DetectorConfig(), pipeline_realtime=pipelined, skip_engine_on_veto=skip)
        detectors.append(Detector(probe, aligner, config=config))
        rows.append(Row(label, mode, pipelined, skip))
    present(detectors[0], probe, presentations[0], Row(label, "warm-up", False, False))
    for presentation in presentations:
        for detector, row in zip(detectors, rows):
            present(detector, probe, presentation, row)
    return rows


def _p(values: Sequence[float], q: float) -> Optional[float]:
    return float(np.percentile(values, q)) if len(values) else None


def _ms(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.0f}"


def _ratio(value: Optional[float], base: Optional[float]) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}"


def format_rows(rows: Sequence[Row], live_votes: int) -> List[str]:
    """The table: one line per row, ratios against the first row of the same engine."""
    head = (f"{'engine':<16}{'stream':<15}{'veto skips':>10}{'latency p50/p95':>17}{'interval':>9}{'opened':>8}"
            f"{'to open p50/p95':>17}{'÷base':>7}{'projected':>10}{'÷base':>7}{'to deny':>8}{'÷base':>7}"
            f"{'attacks opened':>18}{'engine runs':>12}")
    lines, base = [head, "-" * len(head)], {}
    for row in rows:
        interval = _p(row.interval_ms, 50)
        projected = None if interval is None else live_votes * interval
        to_open, to_deny = _p(row.to_open_ms, 50), _p(row.to_deny_ms, 50)
        first = base.setdefault(row.engine, (to_open, projected, to_deny))
        attacks = sum(row.attacks.values())
        runs = row.attack_engine_runs / attacks if attacks else 0.0
        lines.append(
            f"{row.engine:<16}{row.mode:<15}{'yes' if row.skip else 'no':>10}"
            f"{_ms(_p(row.latency_ms, 50)) + ' / ' + _ms(_p(row.latency_ms, 95)):>17}{_ms(interval):>9}"
            f"{f'{len(row.to_open_ms)}/{row.live}':>8}{_ms(to_open) + ' / ' + _ms(_p(row.to_open_ms, 95)):>17}"
            f"{_ratio(to_open, first[0]):>7}{_ms(projected):>10}{_ratio(projected, first[1]):>7}{_ms(to_deny):>8}"
            f"{_ratio(to_deny, first[2]):>7}{row.attacks_opened():>18}{runs:>12.1f}")
    return lines


def int8_model(config: str, directory: Path) -> Path:
    """The ``config`` preset (random init) exported to dynamic INT8 ONNX in ``directory``, reused when there."""
    from mmdg_edge.engines.benchmark import create_checkpoint
    from mmdg_edge.engines.export import export_onnx

    path = directory / f"{config}.int8.onnx"
    if not path.exists():
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:  # the checkpoint is not kept: the paper one is 0.6 GB
            export_onnx(create_checkpoint(config, scratch), path, int8="dynamic")
        print(f"exported {path} in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def _count(minimum: int) -> Any:
    """An argparse type: an int ≥ ``minimum``."""

    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer ≥ {minimum}, got {text!r}")
        return int(text)

    return parse


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=_count(1), default=20, help="live presentations for the demo model")
    parser.add_argument("--attacks", type=_count(0), default=9, help="attack presentations for the demo model")
    parser.add_argument("--int8-live", type=_count(1), default=2, help="live presentations for the INT8 engine")
    parser.add_argument("--int8-attacks", type=_count(0), default=3, help="attack presentations for the INT8 engine")
    parser.add_argument("--int8-model", type=Path, default=None,
                        help="an INT8 ONNX model to time (default: the paper config exported, cached in --cache)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mmdg-edge-bench",
                        help="where the exported INT8 model is kept between runs")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 + 1 live and 3 + 3 attack presentations "
                                                             "of the demo's length, the tiny config for the paper one")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    int8_frames = (SLOW_FRAMES, SLOW_FRAMES)
    if args.quick:
        args.live, args.attacks, args.int8_live, args.int8_attacks = 2, 3, 1, 3
        int8_frames = (LIVE_FRAMES, ATTACK_FRAMES)
    config = "tiny" if args.quick else "paper"
    if args.int8_model is None:
        args.cache.mkdir(parents=True, exist_ok=True)
    int8_path = args.int8_model or int8_model(config, args.cache)
    demo = Detector.load("demo")  # as `mmdg-edge live --source demo` loads it
    rows = measure("demo model", demo.engine, demo.aligner, create_presentations(args.live, args.attacks))
    rows += measure(f"{config} INT8" if args.int8_model is None else args.int8_model.name,
                    create_engine("onnxruntime", int8_path), demo.aligner,
                    create_presentations(args.int8_live, args.int8_attacks, 50, *int8_frames))
    live_votes = demo.config.temporal.live_votes
    print(f"camera {FPS:.0f} fps; live: {args.live} + {args.int8_live} presentations, attacks: {args.attacks} + "
          f"{args.int8_attacks}; times in ms of the camera clock; projected = {live_votes} live votes × interval")
    print("\n".join(format_rows(rows, live_votes)))
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
