"""A generated corpus of bad inputs through ``Detector.check``/``stream`` and the public loaders (issue #9).

Frameset cases start from one synthetic live frameset that the bundled demo model scores "live" and
break one thing; each must come back non-live, without an exception, with a reason that names the
cause. Loader cases (recordings, checkpoints, ONNX files, TensorRT plans, model arguments) must
raise the expected SDK error (or ValueError / FileNotFoundError / TypeError) naming the file or field.

At the end of the session a table "category | cases | crashes | wrong lives" is printed (visible with
``pytest -s``) and written to ``$MMDG_RELIABILITY_REPORT`` when that is set. Frameset cases: a crash is
an exception out of check/stream, a wrong live a "live" verdict. Loader cases: a crash is an exception
of another type than the expected refusal, a wrong live a bad file or argument that was accepted.
"""
from __future__ import annotations

import copy
import functools
import json
import math
import os
import pickle
import sqlite3
import struct
import types
import zlib
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import pytest

from mmdg_edge.checkpoint import METADATA_KEY, _metadata_digest, load_checkpoint
from mmdg_edge.assets import ASSETS
from mmdg_edge.detector import Detector
from mmdg_edge.engines import create_engine
from mmdg_edge.errors import CheckpointError, EngineError, EngineMismatch, MMDGEdgeError, SourceError
from mmdg_edge.frames import Extrinsics, FrameSet, Intrinsics, Verdict
from mmdg_edge.sensors import open_source
from mmdg_edge.sensors.synthetic import render_frameset

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning"),  # the np.matrix case
]

RESULTS: Dict[str, Counter] = {}
H, W = 480, 640  # the synthetic camera's default frame
HUGE = 8000


def _record(category: str, crashed: bool, wrong_live: bool) -> None:
    row = RESULTS.setdefault(category, Counter())
    row["cases"] += 1
    row["crashes"] += crashed
    row["wrong lives"] += wrong_live


def _table() -> str:
    header = ("category", "cases", "crashes", "wrong lives")
    rows = [(name, str(row["cases"]), str(row["crashes"]), str(row["wrong lives"])) for name, row in RESULTS.items()]
    totals = [sum(row[column] for row in RESULTS.values()) for column in header[1:]]
    rows.append(("total", *map(str, totals)))
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(4)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in [header, *rows]]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


@pytest.fixture(scope="session", autouse=True)
def reliability_table() -> Iterator[None]:
    yield
    table = _table()
    print(f"\nbad-input corpus\n{table}")
    report = os.environ.get("MMDG_RELIABILITY_REPORT")
    if report:
        Path(report).write_text(table + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load("demo")


@pytest.fixture(scope="module")
def live_frameset() -> FrameSet:
    return render_frameset("live", 0, np.random.default_rng(0), 0)


# Frameset cases: Detector.check on a broken copy of the live frameset.


@dataclass(frozen=True)
class CheckCase:
    id: str
    category: str
    build: Callable[[FrameSet], Any]  # the live frameset (a copy is made) → the thing to check
    keywords: Tuple[str, ...]  # all must appear in the verdict's reason (case-insensitive)


def _with(**changes: Any) -> Callable[[FrameSet], FrameSet]:
    """A copy of the live frameset with fields replaced; a callable value is called with the copy.

    Fields are set after construction (as a caller may do on the mutable dataclass), so the checks
    inside ``Detector.check`` are what stands between the broken field and the model.
    """
    def build(base: FrameSet) -> FrameSet:
        frameset = copy.deepcopy(base)
        for name, value in changes.items():
            setattr(frameset, name, value(frameset) if callable(value) else value)
        return frameset

    return build


def _only(**images: Any) -> Callable[[FrameSet], FrameSet]:
    """The live frameset with every image replaced (absent ones None)."""
    return _with(**{name: images.get(name) for name in ("rgb", "depth", "ir")})


def _cast(name: str, dtype: str) -> Callable[[FrameSet], np.ndarray]:
    return lambda frameset: getattr(frameset, name).astype(dtype)


def _face_pixels(name: str, value: float, dtype: str = "float32") -> Callable[[FrameSet], np.ndarray]:
    """Image ``name`` as ``dtype`` with ``value`` on the face (the image centre)."""
    def build(frameset: FrameSet) -> np.ndarray:
        image = getattr(frameset, name).astype(dtype)
        image[H // 2 - 40 : H // 2 + 40, W // 2 - 40 : W // 2 + 40] = value
        return image

    return build


def _not_a_frameset_cases() -> Iterator[CheckCase]:
    not_framesets = {
        "None": None, "empty-dict": {}, "text": "frame.png", "bytes": b"\x00" * 16, "int": 42, "float": 0.5,
        "list-of-images": lambda f: [f.rgb, f.depth, f.ir], "tuple-of-images": lambda f: (f.rgb, f.depth, f.ir),
        "dict-of-images": lambda f: {"rgb": f.rgb, "depth": f.depth, "ir": f.ir}, "bare-array": lambda f: f.rgb,
        "FrameSet-class": lambda f: FrameSet, "object": object(), "verdict": Verdict("live", "forged"),
        "duck-typed": lambda f: types.SimpleNamespace(**vars(f)),
    }
    for name, value in not_framesets.items():
        build = (lambda f, v=value: v(f)) if callable(value) else (lambda f, v=value: v)
        yield CheckCase(name, "not_a_frameset", build, ("expected a FrameSet",))


def _wrong_type_cases() -> Iterator[CheckCase]:
    wrong_types = {
        "rgb-nested-list": ("rgb", [[[0, 0, 0]]], "numpy array"),
        "rgb-tuple-of-channels": ("rgb", lambda f: tuple(f.rgb[..., c] for c in range(3)), "numpy array"),
        "depth-memoryview": ("depth", lambda f: memoryview(f.depth), "numpy array"),
        "ir-bytes": ("ir", lambda f: f.ir.tobytes(), "numpy array"),
        "depth-np-matrix": ("depth", lambda f: np.asmatrix(f.depth), "plain numpy array"),
        "depth-masked-array": ("depth", lambda f: np.ma.masked_equal(f.depth, 0), "plain numpy array"),
    }
    for case_id, (name, value, keyword) in wrong_types.items():
        yield CheckCase(case_id, "wrong_type", _with(**{name: value}), (f"FrameSet.{name}", keyword))

    dtypes = {
        "rgb": ("float16", "float32", "float64", "int8", "int16", "uint16", "int32", "int64", "bool", "complex64",
                "object"),
        "depth": ("float16", "float32", "float64", "int16", "int32", "int64", "uint8", "uint32", "uint64", "bool"),
        "ir": ("float32", "float64", "int8", "int16", "int32", "bool"),
    }
    for name, names in dtypes.items():
        for dtype in names:
            yield CheckCase(f"{name}-{dtype}", "wrong_dtype", _with(**{name: _cast(name, dtype)}),
                            (f"FrameSet.{name}", "dtype"))

    shapes = {
        "rgb": ((H, W), (H, W, 1), (H, W, 4), (3, H, W), (H, W, 3, 1), (1, H, W, 3), (H * W * 3,), ()),
        "depth": ((H, W, 1), (H, W, 3), (1, H, W), (H * W,), ()),
        "ir": ((H, W, 3), (H, W, 1), (H * W,), ()),
    }
    for name, options in shapes.items():
        for shape in options:
            dtype = {"rgb": np.uint8, "depth": np.uint16, "ir": np.uint8}[name]
            label = "x".join(map(str, shape)) or "scalar"
            build = _with(**{name: lambda f, s=shape, d=dtype: np.zeros(s, d)})
            yield CheckCase(f"{name}-{label}", "wrong_shape", build, (f"FrameSet.{name}", "shape"))


def _bad_value_cases() -> Iterator[CheckCase]:
    nan, inf = float("nan"), float("inf")
    non_finite = {
        "depth-all-nan": ({"depth": lambda f: np.full((H, W), nan, np.float32)}, ("FrameSet.depth",)),
        "depth-nan-on-face": ({"depth": _face_pixels("depth", nan)}, ("FrameSet.depth",)),
        "depth-one-nan-pixel": ({"depth": lambda f: np.where(np.arange(H * W).reshape(H, W) == 0, nan,
                                                             f.depth).astype(np.float32)}, ("FrameSet.depth",)),
        "depth-inf-on-face": ({"depth": _face_pixels("depth", inf)}, ("FrameSet.depth",)),
        "depth-minus-inf-on-face": ({"depth": _face_pixels("depth", -inf)}, ("FrameSet.depth",)),
        "depth-negative-int16": ({"depth": lambda f: -(f.depth.astype(np.int16))}, ("FrameSet.depth",)),
        "depth-negative-on-face-int32": ({"depth": _face_pixels("depth", -600, "int32")}, ("FrameSet.depth",)),
        "depth-negative-metres": ({"depth": lambda f: -f.depth.astype(np.float32) / 1000}, ("FrameSet.depth",)),
        "rgb-nan": ({"rgb": lambda f: np.full((H, W, 3), nan, np.float32)}, ("FrameSet.rgb",)),
        "ir-nan-on-face": ({"ir": _face_pixels("ir", nan)}, ("FrameSet.ir",)),
        "ir-inf": ({"ir": lambda f: np.full((H, W), inf, np.float32)}, ("FrameSet.ir",)),
        "depth-scale-nan": ({"depth_scale_m": nan}, ("depth_scale_m",)),
        "depth-scale-inf": ({"depth_scale_m": inf}, ("depth_scale_m",)),
        "depth-scale-negative": ({"depth_scale_m": -0.001}, ("depth_scale_m",)),
        "depth-scale-zero": ({"depth_scale_m": 0.0}, ("depth_scale_m",)),
        "depth-scale-one-metre": ({"depth_scale_m": 1.0}, ("depth_scale_m",)),
        "depth-scale-none": ({"depth_scale_m": None}, ("depth_scale_m",)),
        "depth-scale-text": ({"depth_scale_m": "0.001"}, ("depth_scale_m",)),
        "depth-scale-puts-face-at-300m": ({"depth_scale_m": 0.5}, ("face at",)),
        "depth-scale-flattens-face": ({"depth_scale_m": 1e-9}, ("nose stands",)),
        "timestamp-nan": ({"timestamps_ms": {"depth": nan}}, ("timestamps_ms",)),
        "timestamp-inf": ({"timestamps_ms": {"depth": inf}}, ("timestamps_ms",)),
    }
    for case_id, (changes, keywords) in non_finite.items():
        yield CheckCase(case_id, "non_finite_negative", _with(**changes), keywords)

    # A stream whose every pixel is one value is a dead or covered sensor: "unreliable", never an
    # attack (a dead IR sensor reads as a screen to the IR presence check).
    zero_saturated = {
        "all-zero": ({"rgb": lambda f: np.zeros_like(f.rgb), "depth": lambda f: np.zeros_like(f.depth),
                      "ir": lambda f: np.zeros_like(f.ir)}, ("blank", "rgb, depth, ir")),
        "all-saturated": ({"rgb": lambda f: np.full_like(f.rgb, 255), "depth": lambda f: np.full_like(f.depth, 65535),
                           "ir": lambda f: np.full_like(f.ir, 255)}, ("blank", "rgb, depth, ir")),
        "depth-zero": ({"depth": lambda f: np.zeros_like(f.depth)}, ("blank", "depth")),
        "depth-saturated": ({"depth": lambda f: np.full_like(f.depth, 65535)}, ("blank", "depth")),
        "depth-constant-600mm": ({"depth": lambda f: np.full_like(f.depth, 600)}, ("blank", "depth")),
        "depth-constant-one-unit": ({"depth": lambda f: np.ones_like(f.depth)}, ("blank", "depth")),
        "depth-and-ir-zero": ({"depth": lambda f: np.zeros_like(f.depth), "ir": lambda f: np.zeros_like(f.ir)},
                              ("blank", "depth, ir")),
        "ir-zero": ({"ir": lambda f: np.zeros_like(f.ir)}, ("blank", "ir")),
        "ir16-zero": ({"ir": lambda f: np.zeros(f.ir.shape, np.uint16)}, ("blank", "ir")),
        "ir-saturated": ({"ir": lambda f: np.full_like(f.ir, 255)}, ("blank", "ir")),
        "ir16-saturated": ({"ir": lambda f: np.full(f.ir.shape, 65535, np.uint16)}, ("blank", "ir")),
        "rgb-saturated": ({"rgb": lambda f: np.full_like(f.rgb, 255)}, ("blank", "rgb")),
        "rgb-zero-without-ir": ({"rgb": lambda f: np.zeros_like(f.rgb), "ir": None}, ("required stream missing: ir",)),
        "rgb-and-ir-zero": ({"rgb": lambda f: np.zeros_like(f.rgb), "ir": lambda f: np.zeros_like(f.ir)},
                            ("blank", "rgb, ir")),
    }
    for case_id, (changes, keywords) in zero_saturated.items():
        yield CheckCase(case_id, "zero_saturated", _with(**changes), keywords)


def _geometry_cases() -> Iterator[CheckCase]:
    mismatched = {
        "ir-half-size": ({"ir": lambda f: np.ascontiguousarray(f.ir[::2, ::2])}, ("FrameSet.ir", "differs")),
        "ir-transposed": ({"ir": lambda f: np.ascontiguousarray(f.ir.T)}, ("FrameSet.ir", "differs")),
        "ir-one-row-short": ({"ir": lambda f: f.ir[:-1].copy()}, ("FrameSet.ir", "differs")),
        "ir16-double-size": ({"ir": lambda f: np.zeros((2 * H, 2 * W), np.uint16)}, ("FrameSet.ir", "differs")),
        "depth-one-column-short": ({"depth": lambda f: f.depth[:, :-1].copy()}, ("differs from depth",)),
        "rgb-half-size-aligned": ({"rgb": lambda f: np.ascontiguousarray(f.rgb[::2, ::2])},
                                  ("FrameSet.rgb", "differs")),
        "rgb-one-pixel-wider-aligned": ({"rgb": lambda f: np.zeros((H, W + 1, 3), np.uint8)},
                                        ("FrameSet.rgb", "differs")),
        "rgb-double-size-aligned": ({"rgb": lambda f: np.zeros((2 * H, 2 * W, 3), np.uint8)},
                                    ("FrameSet.rgb", "differs")),
        "rgb-half-size-no-intrinsics": ({"rgb": lambda f: np.ascontiguousarray(f.rgb[::2, ::2]),
                                         "color_aligned_to_depth": False, "intrinsics": {}}, ("intrinsics",)),
        "rgb-half-size-no-extrinsics": ({"rgb": lambda f: np.ascontiguousarray(f.rgb[::2, ::2]),
                                         "color_aligned_to_depth": False, "depth_to_color": None}, ("depth_to_color",)),
    }
    for case_id, (changes, keywords) in mismatched.items():
        yield CheckCase(case_id, "mismatched_sizes", _with(**changes), keywords)

    # np.zeros pages stay unmapped until written: a frame over the pixel limit is refused before it is read.
    over = "exceeds the limit of 16777216"
    huge = {
        "rgb-8000x8000-alone": (_only(rgb=lambda f: np.zeros((HUGE, HUGE, 3), np.uint8)), ("FrameSet.rgb", over)),
        "ir-8000x8000-alone": (_only(ir=lambda f: np.zeros((HUGE, HUGE), np.uint8)), ("FrameSet.ir", over)),
        "depth-8000x8000-alone": (_only(depth=lambda f: np.zeros((HUGE, HUGE), np.uint16)), ("FrameSet.depth", over)),
        "rgb-8000x8000-with-vga-depth": (_with(rgb=lambda f: np.zeros((HUGE, HUGE, 3), np.uint8)),
                                         ("FrameSet.rgb", over)),
        "ir-8000x8000-with-vga-depth": (_with(ir=lambda f: np.zeros((HUGE, HUGE), np.uint8)), ("FrameSet.ir", over)),
        "rgb-8000x1-column": (_only(rgb=lambda f: np.zeros((HUGE, 1, 3), np.uint8)), ("missing: depth, ir",)),
        "triplet-10000x10000": (_only(rgb=lambda f: np.zeros((10000, 10000, 3), np.uint8),
                                      depth=lambda f: np.zeros((10000, 10000), np.uint16),
                                      ir=lambda f: np.zeros((10000, 10000), np.uint8)), ("FrameSet.rgb", over)),
        "triplet-4097x4096": (_only(rgb=lambda f: np.zeros((4096, 4097, 3), np.uint8),
                                    depth=lambda f: np.zeros((4096, 4097), np.uint16),
                                    ir=lambda f: np.zeros((4096, 4097), np.uint8)), ("4097×4096", over)),
    }
    for case_id, (build, keywords) in huge.items():
        yield CheckCase(case_id, "huge_frames", build, keywords)

    zero_size = {
        "rgb": ((0, W, 3), (H, 0, 3), (0, 0, 3)),
        "depth": ((0, W), (H, 0), (0, 0)),
        "ir": ((0, W), (0, 0)),
    }
    for name, options in zero_size.items():
        for shape in options:
            dtype = {"rgb": np.uint8, "depth": np.uint16, "ir": np.uint8}[name]
            yield CheckCase(f"{name}-{'x'.join(map(str, shape))}", "zero_size",
                            _with(**{name: lambda f, s=shape, d=dtype: np.zeros(s, d)}), (f"FrameSet.{name}", "empty"))


def _missing_field_cases() -> Iterator[CheckCase]:
    missing = {
        "no-images": (_only(), ("missing: rgb, depth, ir",)),
        "depth-only": (_only(depth=lambda f: f.depth), ("missing: rgb, ir",)),
        "timestamps-none": (_with(timestamps_ms=None), ("FrameSet.timestamps_ms",)),
        "timestamps-list": (_with(timestamps_ms=[0.0]), ("FrameSet.timestamps_ms",)),
        "timestamp-text": (_with(timestamps_ms={"depth": "now"}), ("FrameSet.timestamps_ms",)),
        "frame-numbers-none": (_with(frame_numbers=None), ("FrameSet.frame_numbers",)),
        "intrinsics-none": (_with(intrinsics=None), ("FrameSet.intrinsics",)),
        "intrinsics-value-text": (_with(intrinsics={"rgb": "615 615 320 240"}), ("FrameSet.intrinsics",)),
        "metadata-none": (_with(metadata=None), ("FrameSet.metadata",)),
        "extrinsics-tuple": (_with(depth_to_color=(1.0, 0.0, 0.0)), ("FrameSet.depth_to_color",)),
        "unaligned-without-intrinsics": (_with(color_aligned_to_depth=False, intrinsics={}), ("intrinsics",)),
        "unaligned-without-rgb-intrinsics": (
            _with(color_aligned_to_depth=False, intrinsics=lambda f: {"depth": f.intrinsics["depth"]}),
            ("intrinsics",)),
        "unaligned-without-extrinsics": (_with(color_aligned_to_depth=False, depth_to_color=None), ("depth_to_color",)),
    }
    for case_id, (build, keywords) in missing.items():
        yield CheckCase(case_id, "missing_fields", build, keywords)


CHECK_CASES = [
    pytest.param(case, id=f"{case.category}/{case.id}")
    for cases in (_not_a_frameset_cases, _wrong_type_cases, _bad_value_cases, _geometry_cases, _missing_field_cases)
    for case in cases()
] + [
    pytest.param(CheckCase("rgb-1x8000-row", "huge_frames", _only(rgb=lambda f: np.zeros((1, HUGE, 3), np.uint8)),
                           ("missing: depth, ir",)), id="huge_frames/rgb-1x8000-row"),
]


def test_the_unbroken_frameset_is_live(detector, live_frameset):
    """Every case breaks one thing of this frameset: without the break the demo model says live."""
    assert detector.check(copy.deepcopy(live_frameset)).status == "live"


@pytest.mark.parametrize("case", CHECK_CASES)
def test_bad_frameset_is_denied_with_its_cause(case, detector, live_frameset):
    item = case.build(live_frameset)
    verdict = None
    try:
        verdict = detector.check(item)
    finally:
        _record(case.category, crashed=verdict is None, wrong_live=verdict is not None and verdict.is_live)
    assert verdict.status != "live", verdict.reason
    reason = verdict.reason.lower()
    assert all(keyword.lower() in reason for keyword in case.keywords), (case.keywords, verdict.reason)


# Frame sequences: Detector.stream with timestamps that do not advance.


def _stamped(stamps: Any) -> Callable[[FrameSet], FrameSet]:
    """A frameset with these timestamps: a number for every stream, or a dict as given."""
    value = {name: stamps for name in ("rgb", "depth", "ir")} if isinstance(stamps, (int, float)) else stamps
    return _with(timestamps_ms=lambda f: copy.deepcopy(value))


def _raw(item: Any) -> Callable[[FrameSet], Any]:
    return lambda frameset: item


# id → (the sequence, {index: keyword its verdict's reason must hold}); every indexed verdict must be non-live.
STREAM_CASES: Dict[str, Tuple[List[Callable[[FrameSet], Any]], Dict[int, str]]] = {
    "repeated": ([_stamped(0.0), _stamped(33.0), _stamped(33.0)], {2: "stale"}),
    "backwards": ([_stamped(0.0), _stamped(33.0), _stamped(20.0)], {2: "stale"}),
    "backwards-by-a-microsecond": ([_stamped(33.0), _stamped(32.999)], {1: "stale"}),
    "backwards-to-negative": ([_stamped(0.0), _stamped(33.0), _stamped(-100.0)], {2: "stale"}),
    "far-back": ([_stamped(1e6), _stamped(0.0)], {1: "stale"}),
    "replay-from-start": ([_stamped(0.0), _stamped(33.0), _stamped(66.0), _stamped(0.0), _stamped(33.0)],
                          {3: "stale", 4: "stale"}),
    "every-frame-older": ([_stamped(100.0), _stamped(90.0), _stamped(80.0), _stamped(70.0)],
                          {1: "stale", 2: "stale", 3: "stale"}),
    "one-stream-runs-ahead": ([_stamped({"rgb": 50.0, "depth": 10.0, "ir": 10.0}),
                               _stamped({"rgb": 40.0, "depth": 45.0, "ir": 45.0})], {1: "stale"}),
    "nan-then-backwards": ([_stamped(0.0), _stamped(33.0), _stamped(float("nan")), _stamped(10.0)],
                           {2: "timestamps_ms", 3: "stale"}),
    "inf-then-backwards": ([_stamped(0.0), _stamped(33.0), _stamped(float("inf")), _stamped(10.0)],
                           {2: "timestamps_ms", 3: "stale"}),
    "text-then-backwards": ([_stamped(0.0), _stamped(33.0), _stamped({"depth": "later"}), _stamped(10.0)],
                            {2: "timestamps_ms", 3: "stale"}),
    "one-text-stream-then-backwards": ([_stamped(0.0), _stamped(33.0), _stamped({"depth": 50.0, "rgb": "x"}),
                                        _stamped(20.0)], {2: "timestamps_ms", 3: "stale"}),
    "no-timestamps-dict-then-backwards": ([_stamped(0.0), _stamped(33.0), _with(timestamps_ms=None), _stamped(10.0)],
                                          {2: "timestamps_ms", 3: "stale"}),
    "none-then-backwards": ([_stamped(0.0), _stamped(33.0), _raw(None), _stamped(10.0)],
                            {2: "expected a FrameSet", 3: "stale"}),
    "dict-then-backwards": ([_stamped(0.0), _stamped(33.0), _raw({"timestamp_ms": 99.0}), _stamped(10.0)],
                            {2: "expected a FrameSet", 3: "stale"}),
}


@pytest.mark.parametrize("case_id", list(STREAM_CASES))
def test_frames_that_go_back_in_time_are_denied_in_a_stream(case_id, detector, live_frameset):
    builders, expected = STREAM_CASES[case_id]
    results = None
    try:
        results = list(detector.stream(build(live_frameset) for build in builders))
    finally:
        wrong = results is not None and any(results[index].verdict.is_live for index in expected)
        _record("timestamps_backwards", crashed=results is None, wrong_live=wrong)
    for index, keyword in expected.items():
        verdict = results[index].verdict
        assert verdict.status != "live" and keyword.lower() in verdict.reason.lower(), (index, verdict.reason)


# Issue #13 paths: absent streams, frozen feeds, engine outputs, threshold tampering, a face swapped
# mid-session, a false face box over a depth edge.

ABSENT = [pytest.param(names, id="none-" + "-".join(names)) for names in
          [("rgb",), ("depth",), ("ir",), ("rgb", "depth"), ("rgb", "ir"), ("depth", "ir")]]


@pytest.mark.parametrize("names", ABSENT)
def test_an_absent_stream_is_a_denial_that_names_it(names, detector, live_frameset):
    frameset = _with(**{name: None for name in names})(live_frameset)
    verdict = None
    try:
        verdict = detector.check(frameset)
    finally:
        _record("none_streams", crashed=verdict is None, wrong_live=verdict is not None and verdict.is_live)
    assert verdict.status == "unreliable" and all(name in verdict.reason for name in names), verdict.reason


@pytest.mark.parametrize("names", [("rgb",), ("depth",), ("ir",)], ids=lambda n: f"zero-{n[0]}")
def test_an_all_zero_stream_is_a_denial(names, detector, live_frameset):
    frameset = _with(**{name: (lambda f, n=name: np.zeros_like(getattr(f, n))) for name in names})(live_frameset)
    verdict = None
    try:
        verdict = detector.check(frameset)
    finally:
        _record("none_streams", crashed=verdict is None, wrong_live=verdict is not None and verdict.is_live)
    assert verdict.status != "live", verdict.reason


def _sequence(count: int, seed: int = 5) -> List[FrameSet]:
    from mmdg_edge.sensors.synthetic import Segment, render_sequence

    return list(render_sequence([Segment("live", count, distance_start_m=0.55)], seed=seed))


def _freeze(frames: List[FrameSet], names: Tuple[str, ...], what: str) -> List[FrameSet]:
    """``names`` keep their first frameset's pixels (``what`` = "pixels") or timestamps ("timestamps")."""
    for frameset in frames[1:]:
        for name in names:
            if what == "pixels":
                setattr(frameset, name, getattr(frames[0], name).copy())
            else:
                frameset.timestamps_ms[name] = frames[0].timestamps_ms[name]
    return frames


FROZEN = {f"{what}-{'-'.join(names)}": (names, what) for what in ("pixels", "timestamps")
          for names in (("rgb", "depth", "ir"), ("depth",), ("ir",), ("rgb",), ("depth", "ir"))}


@pytest.mark.parametrize("case_id", list(FROZEN))
def test_a_frozen_feed_or_stream_never_reaches_a_live_session(case_id, detector):
    names, what = FROZEN[case_id]
    category = "frozen_frames" if len(names) == 3 else "frozen_single_streams"
    results = None
    try:
        results = list(detector.stream(_freeze(_sequence(8), names, what), allow_recorded=True))
    finally:
        wrong = results is not None and any(r.verdict.is_live or r.session.status == "live" for r in results[1:])
        _record(category, crashed=results is None, wrong_live=wrong)
    keywords = ("frozen stream",) if what == "pixels" else ("stale frame", "out of step")
    assert all(r.verdict.status == "unreliable" and any(k in r.verdict.reason for k in keywords) for r in results[1:])


class _Returns:
    """A duck-typed engine (not built on engines.base) that returns whatever it is given."""

    def __init__(self, metadata: Dict[str, Any], value: Any) -> None:
        self.metadata, self.value = metadata, value

    def run(self, crops: np.ndarray, mask: np.ndarray) -> Any:
        return self.value


ENGINE_OUTPUTS = {
    "nan": np.array([np.nan], np.float32), "inf": np.array([np.inf], np.float32),
    "minus-inf": np.array([-np.inf], np.float32), "above-one": np.array([1.5], np.float32),
    "below-zero": np.array([-0.1], np.float32), "two-rows": np.array([0.9, 0.9], np.float32),
    "column": np.array([[0.9]], np.float32), "scalar": np.float32(0.9), "zero-d": np.array(0.9, np.float32),
    "int": np.array([1], np.int64), "bool": np.array([True]), "text": np.array(["0.9"]), "object": np.array([0.9], object),
    "list": [0.9], "tuple": (0.9,), "none": None, "dict": {"live_prob": 0.9},
}


@pytest.mark.parametrize("case_id", list(ENGINE_OUTPUTS))
def test_an_engine_output_that_is_not_one_probability_is_an_error(case_id, detector, live_frameset):
    verdict = None
    try:
        verdict = Detector(_Returns(detector.engine.metadata, ENGINE_OUTPUTS[case_id]), threshold=0.5).check(
            copy.deepcopy(live_frameset))
    finally:
        _record("engine_outputs", crashed=verdict is None, wrong_live=verdict is not None and verdict.is_live)
    assert verdict.status == "error" and "engine output" in verdict.reason, verdict.reason


TAMPERING = {"threshold-negative": ("threshold", -1.0), "threshold-zero": ("threshold", 0.0),
             "threshold-one": ("threshold", 1.0), "threshold-nan": ("threshold", math.nan),
             "threshold-text": ("threshold", "0.5"), "threshold-bool": ("threshold", True)}


@pytest.mark.parametrize("case_id", list(TAMPERING))
def test_a_threshold_is_fixed_and_checked_once(case_id, detector):
    name, value = TAMPERING[case_id]
    with pytest.raises(AttributeError):
        setattr(detector, name, value)
    with pytest.raises(AttributeError):
        detector.band = 0.0
    refused = False
    try:
        Detector(detector.engine, threshold=value)
    except ValueError:
        refused = True
    _record("threshold_tampering", crashed=False, wrong_live=not refused)
    assert refused and detector.threshold == pytest.approx(detector.engine.metadata["threshold"])


@pytest.mark.parametrize("attack", ["print", "replay", "mask"])
@pytest.mark.parametrize("seed", [4, 8])
def test_a_face_swapped_mid_session_ends_it_at_once(attack, seed, detector):
    from mmdg_edge.sensors.synthetic import Segment, render_sequence

    segments = [Segment("live", 7, distance_start_m=0.55, centre=(320.0, 240.0)),
                Segment(attack, 4, distance_start_m=0.55, centre=(320.0, 240.0))]
    results = None
    try:
        results = list(detector.stream(render_sequence(segments, seed=seed), allow_recorded=True))
    finally:
        wrong = results is not None and any(r.session.status == "live" for r in results[7:])
        _record("swapped_face", crashed=results is None, wrong_live=wrong)
    assert not any(r.session.status == "live" or r.verdict.is_live for r in results[7:])


@pytest.mark.parametrize("distance,seed", [(0.45, 3), (0.5, 5), (0.6, 7)])
def test_a_false_face_box_over_a_depth_edge_is_vetoed(distance, seed, detector):
    from mmdg_edge.align import FaceAligner

    frameset = render_frameset("print", 0, np.random.default_rng(seed), 0, distance_m=distance, centre=(320.0, 200.0))
    x0, y0, x1, y1 = frameset.metadata["truth"]["box"]
    sheet = np.abs(frameset.depth.astype(np.float64) / 1000 - distance) < 0.05
    edge = int(np.flatnonzero(sheet[:, int((x0 + x1) / 2)]).max())
    side = 1.4 * (x1 - x0)
    false_box = ((x0 + x1) / 2 - side / 2, edge - side / 2, (x0 + x1) / 2 + side / 2, edge + side / 2)
    boxes = [(x0, y0, x1, y1), false_box]
    aligner = FaceAligner(detector=lambda image: [tuple(v * image.shape[1] / W for v in b) for b in boxes])
    verdict = None
    try:
        verdict = Detector(detector.engine, aligner, threshold=0.01).check(frameset)  # any score would pass
    finally:
        _record("false_face_box", crashed=verdict is None, wrong_live=verdict is not None and verdict.is_live)
    # The landmark model finds no face in the false box; the real one is the print's, vetoed as a sheet.
    assert verdict.status == "attack" and "not a face" in verdict.reason, verdict.reason


# Loader cases: recordings, checkpoints, ONNX files, TensorRT plans and Detector.load arguments.


@dataclass(frozen=True)
class LoaderCase:
    id: str
    category: str
    make: Callable[[Path], Any]  # a scratch folder → the argument handed to ``load``
    load: Callable[[Any], Any]
    error: type  # the refusal expected
    names: Tuple[str, ...] = ()  # must all appear in the message, besides the file's name for a path argument


@functools.lru_cache(maxsize=None)
def _asset(name: str) -> bytes:
    return (ASSETS / name).read_bytes()


def _file(name: str, content: Any) -> Callable[[Path], Path]:
    """A file ``name`` holding ``content`` (bytes, or a callable giving them) in the scratch folder."""
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content() if callable(content) else content)
        return path

    return make


def _missing(name: str) -> Callable[[Path], Path]:
    return lambda folder: folder / name


def _directory(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / name).mkdir()
        return folder / name

    return make


def _scrambled(name: str, start: int, length: int, fill: Optional[int] = None) -> Callable[[], bytes]:
    """The asset with ``length`` bytes from ``start`` replaced by seeded noise (or by ``fill``)."""
    def content() -> bytes:
        data = bytearray(_asset(name))
        noise = np.random.default_rng(start).integers(0, 256, length, dtype=np.uint8).tobytes()
        data[start : start + length] = bytes([fill]) * length if fill is not None else noise
        return bytes(data)

    return content


def _play(spec: Any) -> int:
    with open_source(str(spec) if isinstance(spec, Path) else spec) as frames:
        return sum(1 for _ in frames)


def _empty_sqlite(folder: Path) -> Path:
    path = folder / "unrelated.db3"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.commit()
    return path


def _edited_db3(name: str, topic: str, old: str, new: str) -> Callable[[Path], Path]:
    """The demo recording with ``old`` replaced by ``new`` in every std_msgs/String message (CDR: a
    4-byte encapsulation header, a uint32 length, the text and its NUL) of the topic ending in ``topic``."""
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(_asset("demo.db3"))
        with closing(sqlite3.connect(path)) as connection:
            (topic_id,) = connection.execute("SELECT id FROM topics WHERE name LIKE ?", (f"%{topic}",)).fetchone()
            rows = connection.execute("SELECT id, data FROM messages WHERE topic_id = ?", (topic_id,)).fetchall()
            for message_id, data in rows:
                text = data[8:-1].decode().replace(old, new).encode() + b"\0"
                connection.execute("UPDATE messages SET data = ? WHERE id = ?",
                                   (data[:4] + struct.pack("<I", len(text)) + text, message_id))
            connection.commit()
        return path

    return make


def _recording_cases() -> Iterator[LoaderCase]:
    noise = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    bag, db3 = len(_asset("d435_office.bag")), len(_asset("demo.db3"))
    files = {
        "missing-bag": (_missing("missing.bag"), "no such file or folder"),
        "missing-db3": (_missing("missing.db3"), "no such file or folder"),
        "empty-bag": (_file("empty.bag", b""), "empty"),
        "empty-db3": (_file("empty.db3", b""), "empty"),
        "noise-bag": (_file("noise.bag", noise), "not a readable RealSense recording"),
        "noise-db3": (_file("noise.db3", noise), "not a readable RealSense recording"),
        "text-bag": (_file("notes.bag", b"hello\n" * 100), "not a readable RealSense recording"),
        "directory-bag": (_directory("folder.bag"), "is not a file"),
        "sqlite-without-ros-tables": (_empty_sqlite, "not a readable RealSense recording"),
        "bag-renamed-db3": (_file("bag.db3", lambda: _asset("d435_office.bag")), "not a readable RealSense recording"),
        "db3-renamed-bag": (_file("db3.bag", lambda: _asset("demo.db3")), "not a readable RealSense recording"),
        "bag-zeroed-header-region": (_file("zeroed.bag", _scrambled("d435_office.bag", 4000, 4000, fill=0)),
                                     "not a readable RealSense recording"),
    }
    for cut in (13, 1024, bag // 2, bag - 1024):
        files[f"bag-cut-at-{cut}"] = (_file(f"cut{cut}.bag", lambda c=cut: _asset("d435_office.bag")[:c]),
                                      "not a readable RealSense recording")
    for offset in (200_000, 500_000, 900_000):
        files[f"bag-noise-at-{offset}"] = (_file(f"noise{offset}.bag", _scrambled("d435_office.bag", offset, 4096)),
                                           "not a readable RealSense recording")
    for cut in (16, 4096, db3 // 2, db3 - 1024):
        files[f"db3-cut-at-{cut}"] = (_file(f"cut{cut}.db3", lambda c=cut: _asset("demo.db3")[:c]),
                                      "not a readable RealSense recording")
    # Issue 21 items 2 and 9: declared sizes past the frames' buffers (a copy read other heap memory, or
    # crashed the process), and depth units of 0 (a ValueError out of iteration).
    files["db3-colour-declared-424x250-holds-424x240"] = (
        _edited_db3("taller.db3", "Color_0/camera_info", "height=240", "height=250"), "holds 305280")
    files["db3-ir-declared-848x240"] = (
        _edited_db3("wider.db3", "Infrared_1/camera_info", "width=424", "width=848"), "but holds")
    files["db3-colour-declared-100000x100000"] = (
        _edited_db3("vast.db3", "Color_0/camera_info", "width=424;height=240", "width=100000;height=100000"),
        "exceeds the limit")
    files["db3-depth-units-0"] = (_edited_db3("units0.db3", "Depth_Units/value", "0.001000", "0.000000"),
                                  "Depth_Units")
    files["db3-depth-units-2"] = (_edited_db3("units2.db3", "Depth_Units/value", "0.001000", "2.000000"),
                                  "Depth_Units")
    for case_id, (make, keyword) in files.items():
        yield LoaderCase(case_id, "recording_files", make, _play, SourceError, (keyword,))
    for case_id, (make, keyword) in _image_folder_cases().items():
        yield LoaderCase(case_id, "image_files", make, _play, SourceError, (keyword,))
    specs = {"unknown-suffix": _file("clip.mp4", b"\x00" * 64), "none": lambda folder: None,
             "empty": lambda folder: "", "number": lambda folder: 42,
             "realsense-without-serial": lambda folder: "realsense:"}
    for case_id, make in specs.items():
        yield LoaderCase(f"spec-{case_id}", "recording_files", make, _play, ValueError, ("source",))


@functools.lru_cache(maxsize=None)
def _png(width: int, height: int, channels: int = 3, rows: Optional[int] = None) -> bytes:
    """A black 8-bit PNG of ``width``×``height``, compressed row by row (never held whole); with ``rows``,
    truncated after that many rows (a header that promises more than the file holds)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor, row = zlib.compressobj(1), b"\0" * (1 + width * channels)
    body = b"".join(compressor.compress(row) for _ in range(height if rows is None else rows)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, {1: 0, 3: 2}[channels], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _stills(**files: Callable[[], bytes]) -> Callable[[Path], Path]:
    """A folder of stills, e.g. ``big_rgb=...`` → ``big_rgb.png``."""
    def make(folder: Path) -> Path:
        stills = folder / "stills"
        stills.mkdir()
        for name, content in files.items():
            (stills / f"{name}.png").write_bytes(content())
        return stills

    return make


def _image_folder_cases() -> Dict[str, Tuple[Callable[[Path], Path], str]]:
    """Issue 21 item 3: PNGs under 1 MB each that decode to gigabytes; the size is refused from the header."""
    return {
        "png-triplet-5000x5000": (_stills(big_rgb=lambda: _png(5000, 5000), big_depth=lambda: _png(5000, 5000, 1),
                                          big_ir=lambda: _png(5000, 5000, 1)), "exceeds the limit"),
        "png-declares-100000x100000": (_stills(vast_rgb=lambda: _png(100000, 100000, rows=2)), "exceeds the limit"),
        "png-header-cut": (_stills(cut_rgb=lambda: _png(64, 64)[:20]), "cannot be read as an image"),
        "not-an-image": (_stills(text_rgb=lambda: b"hello, not a picture\n" * 4), "cannot be read as an image"),
    }


@functools.lru_cache(maxsize=None)
def _demo_checkpoint() -> Tuple[Dict[str, np.ndarray], str]:
    safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="rewriting checkpoints needs safetensors")
    from safetensors import safe_open

    path = ASSETS / "demo.safetensors"
    with safe_open(str(path), framework="numpy") as handle:
        header = handle.metadata()
    return safetensors_numpy.load_file(str(path)), header[METADATA_KEY]


def _checkpoint(edit: Optional[Callable[[dict], Any]] = None, *, digest: bool = True,
                metadata_text: Optional[str] = None, tensors: Optional[Callable[[dict], dict]] = None,
                header: Optional[Dict[str, str]] = None) -> Callable[[Path], Path]:
    """The demo checkpoint re-saved with its metadata edited (and re-digested unless ``digest`` is
    False), its metadata replaced by raw text, its tensors changed, or a header of our own."""
    def make(folder: Path) -> Path:
        from safetensors.numpy import save_file

        weights, text = _demo_checkpoint()
        metadata = json.loads(text)
        if edit is not None:
            edit(metadata)
            if digest:
                metadata["metadata_sha256"] = _metadata_digest(metadata)
        written = {METADATA_KEY: metadata_text if metadata_text is not None else json.dumps(metadata)}
        path = folder / "edited.safetensors"
        save_file(tensors(dict(weights)) if tensors else weights, str(path), metadata=header or written)
        return path

    return make


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """Set metadata[a][b]... = value for path "a.b...", or delete the key when value is _DELETE."""
    def edit(metadata: dict) -> None:
        *parents, key = path.split(".")
        target = functools.reduce(lambda node, name: node[name], parents, metadata)
        if value is _DELETE:
            del target[key]
        else:
            target[key] = value

    return edit


_DELETE = object()


def _first_tensor(change: Callable[[dict, str], None]) -> Callable[[dict], dict]:
    def edit(tensors: dict) -> dict:
        change(tensors, sorted(tensors)[0])
        return tensors

    return edit


def _checkpoint_cases() -> Iterator[LoaderCase]:
    pickled = pickle.dumps({"state_dict": {"weight": [0.0] * 8}}, protocol=2)
    header = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    files = {
        "missing": (_missing("missing.safetensors"), "no such checkpoint"),
        "directory": (_directory("folder.safetensors"), "not a regular file"),
        "empty": (_file("empty.safetensors", b""), "truncated"),
        "seven-bytes": (_file("short.safetensors", b"\x01" * 7), "truncated"),
        "header-length-impossible": (_file("huge.safetensors", b"\xff" * 64), "impossible"),
        "json-text": (_file("config.safetensors", b'{"threshold": 0.5}' * 4), "impossible"),
        "pickle": (_file("pickled.safetensors", pickled), "pickle"),
        "torch-zip": (_file("zipped.safetensors", b"PK\x03\x04" + b"\x00" * 60), "never unpickles"),
        "header-not-json": (_file("garbled.safetensors", struct.pack("<Q", 16) + b"{not json at all" + b"\x00" * 8),
                            "corrupt safetensors"),
        "weights-cut": (_file("cut.safetensors", lambda: _asset("demo.safetensors")[:-1000]), "corrupt"),
        "weights-scrambled": (_file("scrambled.safetensors", _scrambled("demo.safetensors", 14_000_000, 64)),
                              "SHA-256"),
        "no-mmdg-metadata": (_checkpoint(header={"format": "pt"}), "no 'mmdg_edge' metadata"),
        "header-without-metadata": (_file("bare.safetensors", lambda: struct.pack("<Q", len(header)) + header
                                          + b"\x00" * 4), "no 'mmdg_edge' metadata"),
        "metadata-not-json": (_checkpoint(metadata_text="{threshold: 0.5"), "not valid JSON"),
        "metadata-a-list": (_checkpoint(metadata_text="[]"), "JSON object"),
        "threshold-edited-without-digest": (_checkpoint(_set("threshold", 0.01), digest=False),
                                            "metadata was modified"),
        "digest-removed": (_checkpoint(_set("metadata_sha256", _DELETE), digest=False), "lacks"),
        "key-removed": (_checkpoint(_set("classes", _DELETE), digest=False), "lacks"),
        "format-version-3": (_checkpoint(_set("format_version", 3)), "format"),
        "format-version-1-biased-adapters": (_checkpoint(_set("format_version", 1)), "bias"),
        "modalities-reordered": (_checkpoint(_set("modalities", ["ir", "depth", "rgb"])), "modality order"),
        "classes-swapped": (_checkpoint(_set("classes", ["live", "attack"])), "class order"),
        "foreign-crop-encoding": (_checkpoint(_set("preprocess.version", "someone-else/0")), "someone-else/0"),
        "preprocess-not-an-object": (_checkpoint(_set("preprocess", "clip")), "crops encoded"),
        "preprocess-one-value-mean": (_checkpoint(_set("preprocess.mean", [0.5])), "invalid preprocess"),
        "preprocess-text-mean": (_checkpoint(_set("preprocess.mean", "rgb")), "invalid preprocess"),
        "preprocess-zero-std": (_checkpoint(_set("preprocess.std", [0.0, 0.0, 0.0])), "invalid preprocess"),
        "threshold-above-one": (_checkpoint(_set("threshold", 1.5)), "threshold"),
        "threshold-zero": (_checkpoint(_set("threshold", 0)), "threshold"),
        "threshold-nan": (_checkpoint(_set("threshold", math.nan)), "threshold"),
        "threshold-text": (_checkpoint(_set("threshold", "0.5")), "threshold"),
        "weights-hash-changed": (_checkpoint(_set("sha256", "0" * 64)), "SHA-256"),
        "tensor-added": (_checkpoint(tensors=lambda t: {**t, "backdoor": np.ones(4, np.float32)}), "SHA-256"),
        "tensor-removed": (_checkpoint(tensors=_first_tensor(lambda t, name: t.pop(name))), "SHA-256"),
        "tensor-scaled": (_checkpoint(tensors=_first_tensor(lambda t, name: t.update({name: t[name] * 2}))), "SHA-256"),
        "config-unknown-key": (_checkpoint(_set("config.backdoor", True)), "invalid model config"),
        "config-deeper-than-weights": (_checkpoint(_set("config.clip_overrides.vision_cfg.layers", 3)),
                                       "do not fit the stored config"),
    }
    for case_id, (make, keyword) in files.items():
        yield LoaderCase(case_id, "checkpoint_files", make, load_checkpoint, CheckpointError, (keyword,))
    through_detector = {"threshold-edited-without-digest": "metadata was modified", "weights-scrambled": "SHA-256",
                        "pickle": "pickle"}
    for case_id, keyword in through_detector.items():
        yield LoaderCase(f"detector-load-{case_id}", "checkpoint_files", files[case_id][0], Detector.load,
                         CheckpointError, (keyword,))


@functools.lru_cache(maxsize=None)
def _demo_onnx_properties() -> Dict[str, str]:
    from mmdg_edge.engines._onnx_props import read_onnx_properties

    return read_onnx_properties(ASSETS / "demo.onnx")


def _onnx_with(edit: Callable[[Dict[str, str]], None]) -> Callable[[Path], Path]:
    """The demo ONNX model with its metadata properties edited."""
    def make(folder: Path) -> Path:
        onnx = pytest.importorskip("onnx", reason="editing ONNX files needs the onnx package (torch extra)")
        model = onnx.load(str(ASSETS / "demo.onnx"))
        properties = {entry.key: entry.value for entry in model.metadata_props}
        edit(properties)
        del model.metadata_props[:]
        for key, value in properties.items():
            model.metadata_props.add(key=key, value=value)
        path = folder / "edited.onnx"
        onnx.save(model, str(path))
        return path

    return make


def _foreign_onnx(inputs: List[Tuple[str, str, list]], output: Tuple[str, str, list],
                  metadata: bool = True) -> Callable[[Path], Path]:
    """Another model: an Identity graph with these (name, ONNX type, shape) inputs and output, carrying
    the demo model's metadata (copied verbatim) unless ``metadata`` is False."""
    def make(folder: Path) -> Path:
        onnx = pytest.importorskip("onnx", reason="building ONNX graphs needs the onnx package (torch extra)")
        from onnx import helper

        def info(name: str, type_name: str, shape: list) -> Any:
            return helper.make_tensor_value_info(name, getattr(onnx.TensorProto, type_name), shape)

        graph = helper.make_graph([helper.make_node("Identity", [inputs[0][0]], [output[0]])], "other",
                                  [info(*spec) for spec in inputs], [info(*output)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        for key, value in (_demo_onnx_properties() if metadata else {}).items():
            model.metadata_props.add(key=key, value=value)
        path = folder / "other.onnx"
        onnx.save(model, str(path))
        return path

    return make


def _edit_json(key: str, change: Callable[[Any], Any], digest: bool = True) -> Callable[[Dict[str, str]], None]:
    def edit(properties: Dict[str, str]) -> None:
        value = change(json.loads(properties[key]))
        if digest and key == METADATA_KEY:
            value["metadata_sha256"] = _metadata_digest(value)
        properties[key] = json.dumps(value)

    return edit


def _onnx_cases() -> Iterator[LoaderCase]:
    size = len(_asset("demo.onnx"))
    crops, mask = ("crops", "FLOAT", ["B", 3, 3, 224, 224]), ("mask", "BOOL", ["B", 3])
    unreadable: Dict[str, Tuple[Callable[[Path], Path], str]] = {
        f"cut-at-{cut}": (_file(f"cut{cut}.onnx", lambda c=cut: _asset("demo.onnx")[:c]),
                          "not an ONNX model" if cut == 0 else "truncated")
        for cut in (0, 1, 10, 1000, size // 2, size - 100, size - 1)
    }
    unreadable.update({
        "noise": (_file("noise.onnx", lambda: np.random.default_rng(3).bytes(4096)), "ONNX"),
        "text": (_file("readme.onnx", b"this is not a model\n" * 20), "ONNX"),
        "checkpoint-renamed": (_file("weights.onnx", lambda: _asset("demo.safetensors")), "not an ONNX file"),
    })
    for case_id, (make, keyword) in unreadable.items():
        yield LoaderCase(case_id, "onnx_files", make, Detector.load, EngineError, (keyword,))
    mismatched = {
        "imagenet-classifier-with-copied-metadata": (
            _foreign_onnx([("input", "FLOAT", ["N", 3, 224, 224])], ("output", "FLOAT", ["N", 3, 224, 224])),
            "inputs are ['input']"),
        "imagenet-classifier-without-metadata": (
            _foreign_onnx([("input", "FLOAT", ["N", 3, 224, 224])], ("output", "FLOAT", ["N", 3, 224, 224]), False),
            "no 'mmdg_edge' metadata"),
        "static-batch": (_foreign_onnx([("crops", "FLOAT", [1, 3, 3, 224, 224]), ("mask", "BOOL", [1, 3])],
                                       ("live_prob", "FLOAT", [1, 3, 3, 224, 224])), "dynamic batch"),
        "half-precision-inputs": (_foreign_onnx([("crops", "FLOAT16", ["B", 3, 3, 224, 224]), mask],
                                                ("live_prob", "FLOAT16", ["B", 3, 3, 224, 224])), "float16"),
        "other-output-name": (_foreign_onnx([crops, mask], ("score", "FLOAT", ["B", 3, 3, 224, 224])), "score"),
        "output-not-one-per-frameset": (_foreign_onnx([crops, mask], ("live_prob", "FLOAT", ["B", 3, 3, 224, 224])),
                                        "live_prob"),
        "mask-missing": (_foreign_onnx([crops], ("live_prob", "FLOAT", ["B"])), "inputs are ['crops']"),
        "no-metadata": (_onnx_with(lambda p: p.clear()), "no 'mmdg_edge' metadata"),
        "no-export-info": (_onnx_with(lambda p: p.pop("mmdg_edge_export")), "no 'mmdg_edge_export' metadata"),
        "metadata-not-json": (_onnx_with(lambda p: p.update({METADATA_KEY: "{"})), "not valid JSON"),
        "threshold-edited-without-digest": (
            _onnx_with(_edit_json(METADATA_KEY, lambda m: {**m, "threshold": 0.01}, digest=False)),
            "metadata was modified"),
        "modalities-reordered": (_onnx_with(_edit_json(METADATA_KEY, lambda m: {**m, "modalities": ["ir", "depth",
                                                                                                   "rgb"]})),
                                 "modality order"),
        "foreign-crop-encoding": (_onnx_with(_edit_json(METADATA_KEY, lambda m: {
            **m, "preprocess": {**m["preprocess"], "version": "someone-else/0"}})), "someone-else/0"),
        "precision-int4": (_onnx_with(_edit_json("mmdg_edge_export", lambda e: {**e, "precision": "int4"})), "int4"),
    }
    for case_id, (make, keyword) in mismatched.items():
        yield LoaderCase(case_id, "onnx_files", make, Detector.load, EngineMismatch, (keyword,))
    yield LoaderCase("checkpoint-given-to-onnxruntime", "onnx_files", lambda folder: ASSETS / "demo.safetensors",
                     lambda path: create_engine("onnxruntime", path), EngineError, ("not an ONNX file",))
    yield LoaderCase("onnx-given-to-torch", "onnx_files", lambda folder: ASSETS / "demo.onnx",
                     lambda path: create_engine("torch", path), CheckpointError, ("demo.onnx", "not a safetensors"))


def _plan(sidecar: Any = None) -> Callable[[Path], Path]:
    """``model.plan`` (not a real plan) with ``sidecar``: None for none, text, or an edit of a valid one."""
    def make(folder: Path) -> Path:
        from mmdg_edge.engines.base import parse_model_metadata
        from mmdg_edge.engines.tensorrt_engine import OptimizationProfile, PlanSidecar, sidecar_path

        plan = folder / "model.plan"
        plan.write_bytes(b"not a serialized TensorRT engine")
        if isinstance(sidecar, str):
            sidecar_path(plan).write_text(sidecar, encoding="utf-8")
        elif sidecar is not None:
            metadata, export_info = parse_model_metadata(_demo_onnx_properties(), "demo.onnx")
            valid = PlanSidecar(
                onnx_sha256="0" * 64, plan_sha256="0" * 64, tensorrt_version="10.0.0", gpu_name="NVIDIA Test GPU",
                compute_capability=(8, 6), precision="fp16", profile=OptimizationProfile(), metadata=metadata,
                export_info=export_info,
            )
            data = valid.to_dict()
            sidecar(data)
            sidecar_path(plan).write_text(json.dumps(data), encoding="utf-8")
        return plan

    return make


def _plan_cases() -> Iterator[LoaderCase]:
    def metadata_edit(key: str, value: Any) -> Callable[[dict], None]:
        return lambda data: data["metadata"].update({key: value})

    tensorrt = functools.partial(Detector.load, engine="tensorrt")
    sidecars = {
        "no-sidecar": (None, "no sidecar model.plan.json"),
        "sidecar-not-json": ("{", "unreadable sidecar"),
        "sidecar-a-list": ("[]", "JSON object"),
        "sidecar-empty-object": ("{}", "sidecar lacks"),
        "sidecar-unknown-key": (lambda d: d.update(extra=1), "unknown keys ['extra']"),
        "sidecar-version-2": (lambda d: d.update(sidecar_version=2), "sidecar version 2"),
        "precision-int8": (lambda d: d.update(precision="int8"), "precision"),
        "compute-capability-text": (lambda d: d.update(compute_capability="8.6"), "compute_capability"),
        "profile-min-above-max": (lambda d: d.update(profile={"min_batch": 8, "opt_batch": 4, "max_batch": 2}),
                                  "profile"),
        "metadata-threshold-edited": (metadata_edit("threshold", 0.01), "metadata was modified"),
        "metadata-lacks-keys": (lambda d: d.update(metadata={"threshold": 0.5}), "lacks"),
        "export-precision-bad": (lambda d: d["export_info"].update(precision="fp8"), "precision"),
    }
    for case_id, (sidecar, keyword) in sidecars.items():
        yield LoaderCase(case_id, "plan_files", _plan(sidecar), tensorrt, EngineMismatch, (keyword,))
    # Without TensorRT "auto" refuses the plan up front; with it, the sidecar's made-up GPU is refused.
    yield LoaderCase("valid-sidecar-garbage-plan-auto", "plan_files", _plan(lambda d: None), Detector.load,
                     MMDGEdgeError)
    yield LoaderCase("missing-plan-auto", "plan_files", _missing("absent.plan"),
                     lambda path: create_engine("auto", path), MMDGEdgeError)
    yield LoaderCase("missing-plan-tensorrt", "plan_files", _missing("absent.plan"),
                     lambda path: create_engine("tensorrt", path), EngineError)
    yield LoaderCase("missing-plan-detector", "plan_files", _missing("absent.plan"), tensorrt, FileNotFoundError)


def _argument_cases() -> Iterator[LoaderCase]:
    demo = lambda folder: "demo"  # noqa: E731
    arguments = {
        "missing-onnx": (_missing("absent.onnx"), Detector.load, FileNotFoundError, ()),
        "directory": (_directory("models.onnx"), Detector.load, MMDGEdgeError, ("models.onnx", "not a bundle")),
        "text-file": (_file("notes.md", b"# notes\n"), Detector.load, ValueError, ("notes.md", "cannot tell")),
        "no-suffix": (_file("model", b"\x00" * 32), Detector.load, ValueError, ("'model'", "cannot tell")),
        "pytorch-suffix": (_file("model.pt", b"\x00" * 32), Detector.load, ValueError, ("model.pt", "cannot tell")),
        "none": (lambda folder: None, Detector.load, TypeError, ("model",)),
        "number": (lambda folder: 3, Detector.load, TypeError, ("model",)),
        "empty-string": (lambda folder: "", Detector.load, ValueError, ("model",)),
        "unknown-engine": (demo, functools.partial(Detector.load, engine="tflite"), ValueError, ("engine", "tflite")),
        "threshold-above-one": (demo, functools.partial(Detector.load, threshold=1.5), ValueError, ("threshold",)),
        "threshold-zero": (demo, functools.partial(Detector.load, threshold=0.0), ValueError, ("threshold",)),
        "threshold-nan": (demo, functools.partial(Detector.load, threshold=math.nan), ValueError, ("threshold",)),
        "providers-as-text": (demo, functools.partial(Detector.load, providers="CPUExecutionProvider"), ValueError,
                              ("providers",)),
        "providers-unavailable": (demo, functools.partial(Detector.load, providers=["NoSuchExecutionProvider"]),
                                  EngineError, ("providers", "NoSuchExecutionProvider")),
        "negative-threads": (demo, functools.partial(Detector.load, intra_op_num_threads=-1), ValueError,
                             ("intra_op_num_threads",)),
        "profile-missing": (demo, functools.partial(Detector.load, profile="/nonexistent/profile.json"), MMDGEdgeError,
                            ("profile.json",)),
        "profile-malformed": (_file("profile.json", b'{"camera_serial": "SN1"}'),
                              lambda path: Detector.load("demo", profile=path), MMDGEdgeError, ("expected keys",)),
        # Issue 21 item 9: a RecursionError (and a 47-line traceback in the CLI) before.
        "profile-nested-100000-deep": (_file("deep.json", b"[" * 100_000 + b"]" * 100_000),
                                       lambda path: Detector.load("demo", profile=path), MMDGEdgeError,
                                       ("not JSON", "RecursionError")),
        "engine-name-unknown-to-create-engine": (lambda folder: str(ASSETS / "demo.onnx"),
                                                 lambda path: create_engine("tflite", path), ValueError, ("tflite",)),
    }
    for case_id, (make, load, error, names) in arguments.items():
        yield LoaderCase(case_id, "model_arguments", make, load, error, names)


LOADER_CASES = [*_recording_cases(), *_checkpoint_cases(), *_onnx_cases(), *_plan_cases(), *_argument_cases()]


@pytest.mark.parametrize("case", LOADER_CASES, ids=lambda case: f"{case.category}/{case.id}")
def test_bad_file_or_argument_is_refused_with_a_clear_error(case, tmp_path):
    argument = case.make(tmp_path)
    error = None
    try:
        case.load(argument)
    except Exception as exc:  # sorted below: the expected type is the refusal, any other type is a crash
        error = exc
    _record(case.category, crashed=error is not None and not isinstance(error, case.error), wrong_live=error is None)
    assert error is not None, f"{case.id}: {argument!r} was accepted"
    if not isinstance(error, case.error):
        raise error
    names = (argument.name, *case.names) if isinstance(argument, Path) else case.names
    assert all(name in str(error) for name in names), (names, str(error))


def test_invalid_calibration_is_refused_where_it_is_built():
    """Intrinsics and extrinsics check themselves, so a NaN or zero focal length cannot reach the aligner
    (before, it surfaced there as 'ZeroDivisionError' or 'cannot convert float NaN to integer')."""
    intrinsics = dict(width=W, height=H, fx=615.0, fy=615.0, ppx=320.0, ppy=240.0)
    for name, value in (("fx", 0.0), ("fy", -615.0), ("fx", math.nan), ("ppx", math.inf), ("width", 0)):
        with pytest.raises(ValueError, match=f"Intrinsics.{name}"):
            Intrinsics(**{**intrinsics, name: value})
    with pytest.raises(ValueError, match="finite"):
        Extrinsics(translation=(math.nan, 0.0, 0.0))
