"""Make the bundle a kiosk loads (``Detector.load(folder)``) from a checkpoint and the collection it was tuned on.

Steps: export the checkpoint to FP32 and INT8 ONNX; for each, choose the operating point on the
collection's validation subjects and write the device profile bound to that model file; score the
test subjects at it (the held-out report, JSON, and the FP32 DET plot with the operating point
marked); list every file with its SHA-256 in bundle.json with the manifest's digest; sign every file
and the index when a private key is given.
"""
from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..bundle import entry, sign_bundle, write_index
from ..calibration import calibrate_on_collection, check_collection_sample, collection_scores
from ..checkpoint import read_metadata
from ..collection import load_manifest, manifest_sha256, splits_for_model
from ..digest import file_sha256
from ..engines.export import export_onnx, quantize_onnx
from ..engines.onnxruntime_engine import OnnxRuntimeEngine
from ..signing import load_private_key
from ..version import __version__
from .reporting import save_det_plot

PathLike = Union[str, "os.PathLike[str]"]
_MODELS = {"fp32": ("model.onnx", "profile.json"), "int8": ("model.int8.onnx", "profile.int8.json")}


def create_bundle(checkpoint: PathLike, collection: PathLike, output: PathLike, *, target_apcer: float = 0.05,
                  uncertainty_band: float = 0.05, key: Optional[PathLike] = None,
                  split_seed: Optional[int] = None) -> Path:
    """Write a bundle folder; returns the path of its bundle.json.

    ``split_seed`` defaults to the one the checkpoint was fine-tuned with; splits that would reuse
    its training subjects are refused (``collection.splits_for_model``). A private ``key``, those
    splits and the attack framesets the target needs are checked before any work starts.

    Raises:
        FileExistsError: ``output`` exists and is not empty (nothing is overwritten).
        ValueError, MMDGEdgeError: what calibration or export refuse (too few attacks for the
            target, several cameras in the collection, ...). Nothing is left behind then: a half
            bundle would block the next try.
    """
    output = Path(output)
    private = load_private_key(key) if key is not None else None
    if output.exists() and any(output.iterdir()):
        raise FileExistsError(f"{output} exists and is not empty; bundles are never overwritten")
    captures = load_manifest(collection)
    splits = splits_for_model(collection, captures, read_metadata(checkpoint)["provenance"], split_seed)
    check_collection_sample(captures, splits, target_apcer)  # before the export and quantisation it would waste
    output.mkdir(parents=True, exist_ok=True)
    try:
        return _write_bundle(Path(checkpoint), collection, output, target_apcer, uncertainty_band, private, split_seed)
    except BaseException:
        shutil.rmtree(output, ignore_errors=True)
        raise


def _write_bundle(checkpoint: Path, collection: PathLike, output: Path, target_apcer: float, uncertainty_band: float,
                  private: Any, split_seed: Optional[int]) -> Path:
    fp32 = export_onnx(checkpoint, output / _MODELS["fp32"][0])
    quantize_onnx(fp32, output / _MODELS["int8"][0], "dynamic")
    models, held_out = {}, {}
    for precision, (model_name, profile_name) in _MODELS.items():
        engine = OnnxRuntimeEngine(output / model_name)
        profile, report = calibrate_on_collection(engine, collection, target_apcer, uncertainty_band, split_seed)
        profile_path = profile.save(output / profile_name)
        models[precision] = {"model": entry(output, output / model_name), "profile": entry(output, profile_path)}
        held_out[precision] = {"calibration": profile.report.to_dict(), "test_subjects": report.to_dict()}
        if precision == "fp32":
            plot = _det_plot(engine, collection, profile.threshold, output / "det.png", split_seed)
    report_path = output / "report.json"
    report_path.write_text(json.dumps(held_out, indent=2) + "\n", encoding="utf-8")
    index = write_index(output, {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "sdk_version": __version__,
        "checkpoint_sha256": file_sha256(checkpoint), "manifest_sha256": manifest_sha256(collection),
        "target_apcer": target_apcer, "models": models, "report": entry(output, report_path),
        "plot": entry(output, plot),
    })
    if private is not None:
        sign_bundle(output, private)
    return index


def _det_plot(engine: OnnxRuntimeEngine, collection: PathLike, threshold: float, path: Path,
              split_seed: Optional[int]) -> Path:
    captures = load_manifest(collection, verify=False)
    test = splits_for_model(collection, captures, engine.metadata["provenance"], split_seed).of(captures, "test")
    scores, _ = collection_scores(engine, collection, test)
    labels = np.concatenate([np.full(len(s), 0 if c.is_attack else 1) for c, s in zip(test, scores)])
    return save_det_plot(np.concatenate(scores), labels, path, threshold=threshold,
                         title=f"DET curve, {Path(collection).name} test subjects (FP32)")
