"""Protocols by name, and the real split lists parsed with their counts as in PROVENANCE.md."""
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmdg_edge.train.data import create_list_dataset, read_split_list
from mmdg_edge.train.protocols import SplitList, get_protocol, list_protocols, parse_missing

# PROVENANCE.md's "line counts" are newline counts (wc -l). The C, S and W lists (and the FlexModal
# lists without a per-attack suffix) have no final newline, so they hold one sample more.
PROVENANCE_LINES = {"C": (4799, 2400, 6738), "P": (1090, 272, 667), "S": (6296, 2099, 12563),
                    "W": (1694, 1670, 1670)}
SAMPLES = {"C": (4800, 2401, 6739), "P": (1090, 272, 667), "S": (6297, 2100, 12564), "W": (1695, 1671, 1671)}
LIVE = {"C": (1200, 601, 1200), "P": (597, 145, 363), "S": (900, 300, 1800), "W": (372, 324, 345)}
SPLITS = ("train", "val", "test")


@pytest.mark.parametrize("dataset", "CPSW")
def test_benchmark_lists_parse_with_the_provenance_counts(protocols_dir, dataset):
    for split, lines, samples, live in zip(SPLITS, PROVENANCE_LINES[dataset], SAMPLES[dataset], LIVE[dataset]):
        path = protocols_dir / "MMDG-Benchmark" / f"{dataset}-{split}.txt"
        assert path.read_bytes().count(b"\n") == lines
        parsed = read_split_list(path)
        assert len(parsed) == samples
        assert Counter(s.label for s in parsed) == {1: live, 0: samples - live}
        # PADISI lists name one .npz per sample, the others rgb/depth/ir images
        assert {len(s.paths) for s in parsed} == ({1} if dataset == "P" else {3})
        assert all(p.endswith(".npz" if dataset == "P" else ".jpg") for s in parsed for p in s.paths)


def test_flexmodal_lists_parse_and_every_sample_has_a_domain(protocols_dir):
    expected = {"train": (11097, 2100), "val": (4501, 901), "test": (19303, 3000)}
    for split, (count, live) in expected.items():
        (split_list,) = getattr(get_protocol("flexmodal-cefa"), split)
        parsed = read_split_list(protocols_dir / split_list.path)
        assert (len(parsed), sum(s.label for s in parsed)) == (count, live)
        domains = Counter(split_list.domain_of(s.paths[0]) for s in parsed)
        assert set(domains) == {0, 1} and sum(domains.values()) == count
    per_attack = {"fakehead": 366, "flexiblemask": 1137, "glasses": 225, "papermask": 213, "print": 600,
                  "replay": 1044, "rigidmask": 411}
    for attack, count in per_attack.items():
        (split_list,) = get_protocol(f"flexmodal-wmca-{attack}").test
        parsed = read_split_list(protocols_dir / split_list.path)
        assert len(parsed) == count and not any(s.label for s in parsed)  # attacks only
    (whole,) = get_protocol("flexmodal-wmca").test
    parsed = read_split_list(protocols_dir / whole.path)
    assert len(parsed) == 5037 and sum(s.label for s in parsed) == 1041


def test_every_registered_list_exists(protocols_dir):
    for name in list_protocols():
        protocol = get_protocol(name)
        for split_list in protocol.train + protocol.val + protocol.test:
            assert (protocols_dir / split_list.path).is_file(), (name, split_list.path)


@pytest.mark.parametrize("name, train, test, domains", [
    ("CPS-W", "CPS", "W", {"C": 0, "P": 1, "S": 2, "W": 3}),
    ("CPW-S", "CPW", "S", {"C": 0, "P": 1, "W": 2, "S": 3}),
    ("CSW-P", "CSW", "P", {"C": 0, "S": 1, "W": 2, "P": 3}),
    ("PSW-C", "PSW", "C", {"P": 0, "S": 1, "W": 2, "C": 3}),
    ("CW-PS", "CW", "PS", {"C": 0, "W": 1, "P": 2, "S": 3}),
    ("PS-CW", "PS", "CW", {"P": 0, "S": 1, "C": 2, "W": 3}),
])
def test_benchmark_protocols_train_on_sources_and_test_on_targets(name, train, test, domains):
    protocol = get_protocol(name)
    assert protocol.name == name and not protocol.is_synthetic and protocol.test_missing == ()

    def described(lists):
        return [(s.path, s.domains) for s in lists]

    def expected(letters, split):
        return [(f"MMDG-Benchmark/{x}-{split}.txt", (("", domains[x]),)) for x in letters]

    assert described(protocol.train) == expected(train, "train")
    assert described(protocol.val) == expected(train, "val")  # the target is never used for validation
    assert described(protocol.test) == expected(test, "test")


def test_missing_modalities_at_test_and_synthetic_protocols():
    assert get_protocol("CPS-W", test_missing="depth,ir").test_missing == ("depth", "ir")
    assert parse_missing(["ir"]) == ("ir",) and parse_missing(None) == ()
    synthetic = get_protocol("syn:02-13")
    assert synthetic.is_synthetic and synthetic.source_domains == (0, 2) and synthetic.target_domains == (1, 3)
    assert {"syn:012-3", "syn:123-0"} <= set(list_protocols())


@pytest.mark.parametrize("name, missing, message", [
    ("CPS-X", None, "unknown; available: CPS-W"),
    ("syn:01-1", None, "must be distinct"),
    ("syn:0a-1", None, "synthetic protocols are 'syn:TRAIN-TEST'"),
    ("CPS-W", "rgb", "RGB is never removed"),
    ("CPS-W", "ir,ir", "expected distinct names"),
])
def test_bad_protocol_names_and_missing_modalities_are_named(name, missing, message):
    with pytest.raises(ValueError, match=message):
        get_protocol(name, test_missing=missing)


def test_domain_of_an_unmatched_sample_is_named():
    with pytest.raises(ValueError, match="matches none of the domain prefixes"):
        SplitList("x.txt", (("CeFA", 1),)).domain_of("WMCA/a.jpg")


def _write_head(protocols_dir: Path, out: Path, relative: str, count: int) -> None:
    lines = (protocols_dir / relative).read_text().splitlines()[:count]
    (out / relative).parent.mkdir(parents=True, exist_ok=True)
    (out / relative).write_text("\n".join(lines) + "\n")


def test_list_loader_reads_generated_images_under_a_temporary_data_root(protocols_dir, tmp_path):
    # The first lines of the real C (images) and P (npz) lists, with generated files at their paths.
    lists, root = tmp_path / "lists", tmp_path / "root"
    for relative in ("MMDG-Benchmark/C-train.txt", "MMDG-Benchmark/P-train.txt"):
        _write_head(protocols_dir, lists, relative, 2)
    c_samples = read_split_list(lists / "MMDG-Benchmark/C-train.txt")
    p_samples = read_split_list(lists / "MMDG-Benchmark/P-train.txt")
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[..., 2] = 200  # BGR on disk: red
    for sample in c_samples:
        for i, relative in enumerate(sample.paths):
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / relative), rgb if i == 0 else np.full((40, 40), 90, np.uint8))
    for sample in p_samples:
        (root / sample.paths[0]).parent.mkdir(parents=True, exist_ok=True)
        np.savez(root / sample.paths[0], rgb=np.full((30, 30, 3), 7, np.uint8), depth=np.full((30, 30), 60, np.uint8),
                 ir=np.arange(900, dtype=np.uint8).reshape(30, 30))
    protocol = get_protocol("CPS-W")
    dataset = create_list_dataset(protocol.train[:2], lists, root)
    assert len(dataset) == 4
    assert [int(dataset[i]["domain"]) for i in range(4)] == [0, 0, 1, 1]  # C then P
    assert [int(dataset[i]["label"]) for i in range(4)] == [s.label for s in c_samples + p_samples]
    first = dataset[0]
    assert tuple(first["crops"].shape) == (3, 3, 224, 224) and bool(first["mask"].all())
    # red stays in the red channel after BGR → RGB: channel 0 is the brightest after normalisation
    red = first["crops"][0].mean(dim=(1, 2))
    assert red[0] > red[1] and red[0] > red[2]

    (root / c_samples[1].paths[2]).unlink()
    with pytest.raises(FileNotFoundError, match=r"1 listed image file\(s\) missing"):
        create_list_dataset(protocol.train[:1], lists, root)
