"""Evaluation protocols by name (METHOD.md §5): which split lists train, validate and test.

Benchmark protocols name the datasets (C = CASIA-CeFA, P = PADISI-Face, S = CASIA-SURF, W = WMCA)
as ``SOURCES-TARGETS``: train on the sources' train lists, validate on the sources' val lists (the
target is never looked at before the test), test on the targets' test lists. Every sample's domain
index is the position of its dataset in the protocol name, sources first, so a training sample's
domain is its ADP spoof slot (METHOD.md §3) and the targets get the indices after the sources.
Synthetic protocols ``syn:TRAIN-TEST`` name domains of the synthetic camera by digit (``syn:012-3``).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ..frames import MODALITIES

__all__ = ["SplitList", "Protocol", "list_protocols", "get_protocol", "parse_missing"]

_BENCHMARK_DIR = "MMDG-Benchmark"
_FLEXMODAL_DIR = "FlexModal_Protocols"
_WMCA_ATTACKS = ("fakehead", "flexiblemask", "glasses", "papermask", "print", "replay", "rigidmask")
_SYNTHETIC = re.compile(r"^syn:([0-3]+)-([0-3]+)$")
# FlexModal's CeFA lists mix two datasets; the path's first folder says which one a sample is from.
_FLEXMODAL_DOMAINS = (("CASIA-SURF", 0), ("CeFA", 1))


@dataclass(frozen=True)
class SplitList:
    """One split list file and how its samples map to domain indices.

    Attributes:
        path: the list file, relative to the protocols folder.
        domains: (path prefix, domain) pairs; a sample gets the domain of the first prefix its
            image path starts with ("" matches everything).
    """

    path: str
    domains: Tuple[Tuple[str, int], ...]

    def domain_of(self, sample_path: str) -> int:
        """The domain index of a sample given its (first) image path."""
        for prefix, domain in self.domains:
            if sample_path.startswith(prefix):
                return domain
        raise ValueError(f"{self.path}: sample {sample_path!r} matches none of the domain prefixes "
                         f"{[p for p, _ in self.domains]}")


@dataclass(frozen=True)
class Protocol:
    """A named train/val/test split.

    Attributes:
        name: the registry name.
        description: one line for ``--help`` and reports.
        train, val, test: split lists (empty for synthetic protocols).
        source_domains, target_domains: synthetic camera domains (empty for list protocols).
        test_missing: modalities removed from every test sample (protocol 2, missing modalities).
    """

    name: str
    description: str
    train: Tuple[SplitList, ...] = ()
    val: Tuple[SplitList, ...] = ()
    test: Tuple[SplitList, ...] = ()
    source_domains: Tuple[int, ...] = ()
    target_domains: Tuple[int, ...] = ()
    test_missing: Tuple[str, ...] = ()

    @property
    def is_synthetic(self) -> bool:
        """True for the synthetic camera's protocols (no list files, no data root)."""
        return bool(self.source_domains)


def _benchmark(sources: str, targets: str) -> Protocol:
    index = {letter: i for i, letter in enumerate(sources + targets)}

    def lists(letters: str, split: str) -> Tuple[SplitList, ...]:
        return tuple(SplitList(f"{_BENCHMARK_DIR}/{x}-{split}.txt", (("", index[x]),)) for x in letters)

    return Protocol(f"{sources}-{targets}", f"train {'+'.join(sources)}, test {'+'.join(targets)} (MMDG benchmark)",
                    lists(sources, "train"), lists(sources, "val"), lists(targets, "test"))


def _flexmodal(test: str, description: str) -> Protocol:
    def cefa(split: str) -> SplitList:
        return SplitList(f"{_FLEXMODAL_DIR}/CASIA-SURF_CeFA_{split}.txt", _FLEXMODAL_DOMAINS)

    if test == "cefa":
        test_lists = (cefa("test"),)
    else:
        suffix = "" if test == "wmca" else "_" + test.split("-", 1)[1]
        test_lists = (SplitList(f"{_FLEXMODAL_DIR}/WMCA_test{suffix}.txt", (("", 2),)),)
    return Protocol(f"flexmodal-{test}", description, (cefa("train"),), (cefa("val"),), test_lists)


def _synthetic(name: str) -> Protocol:
    match = _SYNTHETIC.match(name)
    if match is None:
        raise ValueError(f"protocol {name!r}: synthetic protocols are 'syn:TRAIN-TEST' with domain digits 0-3, "
                         "e.g. 'syn:012-3'")
    sources, targets = (tuple(int(c) for c in group) for group in match.groups())
    if len(set(sources)) != len(sources) or len(set(targets)) != len(targets) or set(sources) & set(targets):
        raise ValueError(f"protocol {name!r}: source and target domains must be distinct and not repeat")
    return Protocol(name, f"synthetic camera, train domains {sources}, test domains {targets}",
                    source_domains=sources, target_domains=targets)


def _registry() -> Dict[str, Protocol]:
    protocols = [_benchmark(s, t) for s, t in (("CPS", "W"), ("CPW", "S"), ("CSW", "P"), ("PSW", "C"),
                                               ("CW", "PS"), ("PS", "CW"))]
    protocols.append(_flexmodal("cefa", "FlexModal: train CASIA-SURF+CeFA, test CASIA-SURF+CeFA"))
    protocols.append(_flexmodal("wmca", "FlexModal: train CASIA-SURF+CeFA, test WMCA (all attacks)"))
    protocols += [_flexmodal(f"wmca-{a}", f"FlexModal: train CASIA-SURF+CeFA, test WMCA {a} attacks")
                  for a in _WMCA_ATTACKS]
    protocols += [_synthetic(f"syn:{''.join(str(d) for d in range(4) if d != t)}-{t}") for t in (3, 2, 1, 0)]
    return {p.name: p for p in protocols}


def list_protocols() -> List[str]:
    """Names of the registered protocols (any other ``syn:TRAIN-TEST`` is accepted too)."""
    return list(_registry())


def parse_missing(value: Optional[str | Sequence[str]]) -> Tuple[str, ...]:
    """Parse ``"depth"``, ``"ir"``, ``"depth,ir"`` (or a sequence of names) into modality names."""
    if value is None or value == "":
        return ()
    names = tuple(n.strip() for n in value.split(",")) if isinstance(value, str) else tuple(value)
    allowed = MODALITIES[1:]
    bad = [n for n in names if n not in allowed]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"test_missing: expected distinct names from {list(allowed)} (RGB is never removed), "
                         f"got {list(names)}")
    return names


def get_protocol(name: str, test_missing: Optional[str | Sequence[str]] = None) -> Protocol:
    """Look a protocol up by name.

    Args:
        name: a name from ``list_protocols()`` or any ``syn:TRAIN-TEST``.
        test_missing: modalities absent at test time ("depth", "ir", "depth,ir"): protocol 2.

    Returns:
        The protocol.

    Raises:
        ValueError: unknown name (the message lists the known ones) or bad ``test_missing``.

    Example:
        >>> get_protocol("CPS-W", test_missing="depth").test_missing
        ('depth',)
    """
    registry = _registry()
    if name in registry:
        protocol = registry[name]
    elif name.startswith("syn:"):
        protocol = _synthetic(name)
    else:
        raise ValueError(f"protocol {name!r}: unknown; available: {', '.join(registry)} (or any syn:TRAIN-TEST)")
    return dataclasses.replace(protocol, test_missing=parse_missing(test_missing))
