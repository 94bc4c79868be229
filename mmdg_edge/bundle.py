"""A bundle: the one folder a kiosk loads for its own camera, ``Detector.load(folder)``.

``bundle.json`` lists every file with its SHA-256: the FP32 and INT8 ONNX models, each with the
device profile calibrated for it, the held-out report (JSON and DET plot) and the digest of the
collection's manifest they came from. Loading checks every digest (a model file changed after
bundling is refused) and, with a trusted key, every signature (``mmdg-edge bundle --key``).
``mmdg-edge bundle`` writes one (it needs the train extra); reading one needs nothing beyond the
kiosk install.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from .digest import file_sha256
from .errors import BundleError
from .signing import check_not_before, created_time, load_signed_json, sign_file

PathLike = Union[str, "os.PathLike[str]"]
BUNDLE_FILE = "bundle.json"
BUNDLE_FORMAT = "mmdg-edge-bundle/1"
PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class BundleEntry:
    """The model of one precision in a bundle, with its profile, each with the digest bundle.json lists."""

    model: Path
    model_sha256: str
    profile: Path
    profile_sha256: str


def is_bundle(path: PathLike) -> bool:
    return Path(path).is_dir()


def _checked(folder: Path, entry: Any, what: str) -> Path:
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not isinstance(entry.get("sha256"), str):
        raise BundleError(f"{folder / BUNDLE_FILE}: the {what} entry is malformed: {entry!r}")
    path = folder / entry["file"]
    if Path(entry["file"]).is_absolute() or ".." in Path(entry["file"]).parts or not path.is_file():
        raise BundleError(f"{folder}: the {what} file {entry['file']!r} is missing (or outside the bundle)")
    if file_sha256(path) != entry["sha256"]:
        raise BundleError(f"{path} was modified after it was bundled (its SHA-256 differs from {BUNDLE_FILE})")
    return path


def read_bundle(folder: PathLike, precision: str = "fp32", trusted_key: Any = None,
                min_created: Optional[datetime] = None) -> BundleEntry:
    """The model and profile of ``precision`` in a bundle, every listed file checked against its digest.

    Args:
        folder: the bundle folder.
        precision: "fp32" or "int8".
        trusted_key: an Ed25519 public key object: bundle.json must then carry its signature.
        min_created: refuse a bundle created before this time (a rollback to an older signed one).

    Raises:
        BundleError: no bundle.json, a malformed one, a missing file or one changed since bundling,
            or one created before ``min_created``.
        SignatureError: with ``trusted_key``, an unsigned or foreign bundle.json.
    """
    folder = Path(folder)
    index_path = folder / BUNDLE_FILE
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if not index_path.is_file():
        raise BundleError(f"{folder}: not a bundle (no {BUNDLE_FILE}); make one with `mmdg-edge bundle`")
    index = load_signed_json(index_path.read_bytes(), index_path, trusted_key, "bundle", BundleError)
    if not isinstance(index, dict) or index.get("format") != BUNDLE_FORMAT or not isinstance(index.get("models"), dict):
        raise BundleError(f"{index_path}: expected format {BUNDLE_FORMAT} with a models table")
    created_time(index.get("created"), f"{index_path}: created", BundleError)
    check_not_before(index["created"], min_created, str(index_path), BundleError)
    models: Dict[str, Any] = index["models"]
    if precision not in models:
        raise BundleError(f"{index_path}: no {precision} model (has {sorted(models)})")
    entry = models[precision]
    model = _checked(folder, entry.get("model") if isinstance(entry, dict) else None, f"{precision} model")
    profile = _checked(folder, entry.get("profile"), f"{precision} profile")
    return BundleEntry(model, entry["model"]["sha256"], profile, entry["profile"]["sha256"])


def files_to_sign(folder: PathLike) -> List[Tuple[Path, str]]:
    """Every model and profile a bundle lists with its signature role (each checked against its digest
    first), then the index.

    Raises:
        BundleError: what ``read_bundle`` refuses (no index, a missing or changed file).
    """
    folder = Path(folder)
    targets: List[Tuple[Path, str]] = []
    for precision in PRECISIONS:
        entry = read_bundle(folder, precision)
        targets += [(entry.model, "model"), (entry.profile, "profile")]
    return targets + [(folder / BUNDLE_FILE, "bundle")]


def sign_bundle(folder: PathLike, private_key: Any) -> List[Path]:
    """Sign a bundle whole (``files_to_sign``); returns the signature files, the index's last."""
    return [sign_file(path, private_key, role) for path, role in files_to_sign(folder)]


def write_index(folder: PathLike, index: Dict[str, Any]) -> Path:
    """``bundle.json`` (the caller lists the files; ``format`` is added)."""
    path = Path(folder) / BUNDLE_FILE
    path.write_text(json.dumps({"format": BUNDLE_FORMAT, **index}, indent=2) + "\n", encoding="utf-8")
    return path


def entry(folder: PathLike, path: Optional[PathLike]) -> Optional[Dict[str, str]]:
    """``{"file", "sha256"}`` of a file inside the bundle folder (None for None)."""
    if path is None:
        return None
    path = Path(path)
    return {"file": str(path.relative_to(folder)), "sha256": file_sha256(path)}
