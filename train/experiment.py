"""Protocol-level entry points behind ``mmdg-edge train`` and ``mmdg-edge eval``.

A protocol name resolves to datasets (split lists under a data root, or the synthetic camera),
training runs ``trainer.fit``, evaluation scores the protocol's test split at the checkpoint's
validation threshold and writes the ROC plot.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from ..model import MMDGConfig
from .protocols import Protocol, get_protocol

logger = logging.getLogger(__name__)

__all__ = ["SyntheticSizes", "default_protocols_dir", "load_datasets", "run_training", "evaluate_checkpoint"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclasses.dataclass(frozen=True)
class SyntheticSizes:
    """Framesets rendered per split for ``syn:`` protocols."""

    train: int = 320
    val: int = 96
    test: int = 128


def default_protocols_dir() -> Path:
    """The split lists beside a source checkout (``../shared/data/protocols``).

    They are not shipped with the package (they come from the benchmark's authors): outside a
    checkout, pass ``protocols_dir``.

    Raises:
        FileNotFoundError: no split lists beside this installation.
    """
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "protocols"
    if not path.is_dir():
        raise FileNotFoundError("the benchmark split lists are not installed with mmdg-edge: pass --protocols-dir, the "
                                "folder holding MMDG-Benchmark/ and FlexModal_Protocols/")
    return path


def load_datasets(protocol: Protocol, data_root: Optional[PathLike] = None, protocols_dir: Optional[PathLike] = None,
                  splits: Sequence[str] = ("train", "val", "test"), sizes: SyntheticSizes = SyntheticSizes(),
                  seed: int = 0) -> Dict[str, Any]:
    """The protocol's datasets by split.

    Raises:
        ValueError: a list protocol without ``data_root``.
        FileNotFoundError: split lists or listed images missing (count and first paths named).
    """
    if protocol.is_synthetic:
        from .synthetic_data import create_synthetic_datasets

        datasets = create_synthetic_datasets(protocol, sizes.train, sizes.val, sizes.test, seed)
        return {s: datasets[s] for s in splits}
    if data_root is None:
        raise ValueError(f"data_root: protocol {protocol.name!r} reads benchmark images; give the folder the "
                         "split-list paths are relative to")
    from .data import create_protocol_datasets

    return create_protocol_datasets(protocol, protocols_dir or default_protocols_dir(), data_root, splits)


def run_training(protocol_name: str, model_config: MMDGConfig, train_config, out_dir: PathLike,
                 data_root: Optional[PathLike] = None, protocols_dir: Optional[PathLike] = None,
                 sizes: SyntheticSizes = SyntheticSizes(), resume: Optional[PathLike] = None,
                 note: Optional[str] = None, init: Optional[PathLike] = None) -> Dict[str, Any]:
    """Train on a protocol by name; returns ``trainer.fit``'s result (best checkpoint, HTER, history).

    ``init``: start from this checkpoint's model instead of a new one of ``model_config``.

    Example:
        >>> run_training("syn:012-3", MMDGConfig.tiny(), TrainConfig(epochs=2), "runs/syn")  # doctest: +SKIP
    """
    from .trainer import fit

    protocol = get_protocol(protocol_name)
    datasets = load_datasets(protocol, data_root, protocols_dir, ("train", "val"), sizes, train_config.seed)
    provenance = {"protocol": protocol.name, "epochs": train_config.epochs, "seed": train_config.seed,
                  "data": str(data_root) if data_root is not None else f"synthetic camera, {dataclasses.asdict(sizes)}",
                  "train_samples": len(datasets["train"]), "val_samples": len(datasets["val"])}
    if note:
        provenance["note"] = note
    model = None
    if init is not None:
        from ..checkpoint import load_checkpoint

        model = load_checkpoint(init)[0]
        provenance["init"] = str(init)
    return fit(model_config, datasets["train"], datasets["val"], train_config, out_dir, provenance, model=model,
               resume=resume)


def evaluate_checkpoint(checkpoint: PathLike, protocol_name: str, data_root: Optional[PathLike] = None,
                        protocols_dir: Optional[PathLike] = None, test_missing: Optional[str] = None,
                        roc_path: Optional[PathLike] = None, sizes: SyntheticSizes = SyntheticSizes(),
                        seed: int = 0, batch_size: int = 32, det_path: Optional[PathLike] = None) -> Dict[str, Any]:
    """Metrics of a checkpoint on a protocol's test split, at the threshold stored in the checkpoint.

    Returns:
        ``compute_metrics``' dict plus ``"protocol"``, ``"samples"``, ``"iso"`` (the ISO/IEC 30107-3
        ``IsoReport``, per attack species where the data name them) and ``"roc"``/``"det"`` (PNG
        paths, if written).
    """
    from ..checkpoint import load_checkpoint
    from .metrics import compute_metrics
    from .reporting import iso_report, save_det_plot, save_roc_plot
    from .trainer import predict

    protocol = get_protocol(protocol_name, test_missing)
    model, metadata = load_checkpoint(checkpoint)
    test = load_datasets(protocol, data_root, protocols_dir, ("test",), sizes, seed)["test"]
    classes = set(test.labels.tolist())
    if classes != {0, 1}:
        raise ValueError(f"the test split of {protocol.name} holds only {'live' if 1 in classes else 'attack'} samples; "
                         "its metrics need both")
    scores, labels = predict(model, test, batch_size, progress=True)
    result = compute_metrics(scores, labels, threshold=metadata["threshold"])
    result.update(protocol=protocol.name, test_missing=list(protocol.test_missing), samples=len(labels))
    result["iso"] = iso_report(scores, labels, getattr(test, "species", None), threshold=metadata["threshold"])
    if roc_path is not None:
        result["roc"] = str(save_roc_plot(scores, labels, roc_path, threshold=metadata["threshold"],
                                          title=f"ROC curve, {protocol.name}"))
    if det_path is not None:
        result["det"] = str(save_det_plot(scores, labels, det_path, threshold=metadata["threshold"],
                                          title=f"DET curve, {protocol.name}"))
    return result
