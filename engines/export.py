"""ONNX export of the inference half of MMDG++ (visual streams + head), FP32/FP16/INT8.

The graph takes ``crops`` (B, 3, 3, 224, 224) float32 and ``mask`` (B, 3) bool and returns
``live_prob`` (B,) float32, with a dynamic batch. The model is exported in eval mode, where
U-Adapter++ is deterministic (METHOD.md §2), and the text tower is never traced. The
checkpoint metadata is copied into the ONNX ``metadata_props`` so every engine checks it.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, Mapping, Optional, Tuple, Union

import numpy as np

from ..checkpoint import METADATA_KEY, load_checkpoint
from ..errors import EngineError, require
from ..version import __version__
from .base import CROPS_SAMPLE_SHAPE, EXPORT_KEY, INPUT_NAMES, OUTPUT_NAME, check_inputs, parse_model_metadata

if TYPE_CHECKING:
    from ..model import MMDGPlusPlus

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_OPSET = 18
# The exporter writes opset 18 natively (onnxruntime ≥ 1.14 and TensorRT 10 read it); opset 17,
# for older runtimes (e.g. TensorRT 8.5 on JetPack 5), is the 18 graph down-converted by ONNX's
# version converter (see ``downgrade_opset``).
MIN_OPSET = 17
_NATIVE_OPSET = 18
INT8_MODES = ("dynamic", "static")
RANDOM_OPS = ("RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli")
_EXAMPLE_BATCH = 2  # torch.export specialises sizes 0 and 1, so trace with 2 to keep the batch symbolic


def export_onnx(
    checkpoint: PathLike,
    output: PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    int8: Optional[str] = None,
    calibration: Optional[Tuple[np.ndarray, np.ndarray]] = None,
) -> Path:
    """Export a checkpoint to an ONNX file the engines accept.

    Args:
        checkpoint: ``.safetensors`` checkpoint (``mmdg_edge.checkpoint.save_checkpoint``).
        output: the ``.onnx`` file to write.
        opset: ONNX opset, ≥ 18.
        fp16: FP16 weights and arithmetic inside, FP32 inputs/outputs (for GPU providers).
        int8: None, ``"dynamic"`` (weights INT8, activations quantised on the fly; no data
            needed) or ``"static"`` (activation ranges from ``calibration``).
        calibration: ``(crops, mask)`` engine inputs used by static INT8, real face crops through
            the aligner and ``preprocess.encode`` (``mmdg-edge export --int8 static`` takes them
            from a recording or the synthetic camera); required for ``int8="static"``.

    Returns:
        The path written.

    Raises:
        ValueError: bad option combination.
        CheckpointError: the checkpoint cannot be loaded.
        EngineError: the export, quantisation or ONNX validation failed.

    Example:
        >>> export_onnx("model.safetensors", "model.onnx")  # doctest: +SKIP
        >>> export_onnx("model.safetensors", "model.int8.onnx", int8="dynamic")  # doctest: +SKIP
    """
    _check_options(opset, fp16, int8, calibration)
    model, metadata = load_checkpoint(checkpoint)
    return export_model(model, metadata, output, opset=opset, fp16=fp16, int8=int8, calibration=calibration)


def _check_options(opset: int, fp16: bool, int8: Optional[str], calibration: Any) -> None:
    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset: expected an int ≥ {MIN_OPSET}, got {opset!r}")
    if int8 is not None and int8 not in INT8_MODES:
        raise ValueError(f"int8: expected None or one of {INT8_MODES}, got {int8!r}")
    if fp16 and int8 is not None:
        raise ValueError("fp16 and int8: choose one precision; INT8 is quantised from the FP32 graph")
    if int8 == "static" and calibration is None:
        raise ValueError("calibration: static INT8 needs calibration inputs (crops, mask) of real faces")


def export_model(model: "MMDGPlusPlus", metadata: Mapping[str, Any], output: PathLike, *, opset: int = DEFAULT_OPSET,
                 fp16: bool = False, int8: Optional[str] = None,
                 calibration: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> Path:
    """Export an in-memory model with its checkpoint metadata (see ``export_onnx``).

    The model is not modified (a copy is put in eval mode and, for FP16, cast).
    """
    _check_options(opset, fp16, int8, calibration)
    output = Path(output)
    if output.suffix != ".onnx":
        raise ValueError(f"output: expected a .onnx file, got {output.name!r}")
    parse_model_metadata(
        {METADATA_KEY: json.dumps(metadata), EXPORT_KEY: json.dumps({"precision": "fp32"})}, "checkpoint metadata"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    export_info: Dict[str, Any] = {
        "opset": opset,
        "precision": "fp16" if fp16 else "fp32",
        "quantization": None,
        "sdk_version": __version__,
        "exporter": "torch.onnx.export(dynamo=True)",
    }
    if int8 is not None:
        with tempfile.TemporaryDirectory() as scratch:
            fp32_path = export_model(model, metadata, Path(scratch) / "fp32.onnx", opset=opset)
            return quantize_onnx(fp32_path, output, int8, calibration=calibration)
    _trace_to_onnx(model, output, max(opset, _NATIVE_OPSET), fp16)
    if opset < _NATIVE_OPSET:
        downgrade_opset(output, opset)
    _finish(output, dict(metadata), export_info)
    return output


def downgrade_opset(path: PathLike, opset: int) -> None:
    """Rewrite an ONNX file in place at an older default-domain opset (17 for an 18 export).

    ONNX's version converter moves the Reduce* ``axes`` back from inputs to attributes but leaves
    opset 18's ``noop_with_empty_axes`` attribute on ops whose opset-13 form lacks it; it is
    dropped when it has its default (0) and refused otherwise.

    Raises:
        EngineError: the converter cannot express the graph at ``opset``.
    """
    onnx = require("onnx", "torch")
    from onnx import version_converter

    path = Path(path)
    try:
        model = version_converter.convert_version(onnx.load(str(path)), opset)
        for node in model.graph.node:
            if node.op_type.startswith("Reduce") and node.op_type != "ReduceSum":
                for attribute in [a for a in node.attribute if a.name == "noop_with_empty_axes"]:
                    if attribute.i:
                        raise ValueError(f"{node.name}: {node.op_type} with noop_with_empty_axes=1 has no opset "
                                         f"{opset} form")
                    node.attribute.remove(attribute)
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # the converter and checker raise assorted internal types
        raise EngineError(f"{path.name}: conversion to opset {opset} failed ({exc})") from exc
    onnx.save(model, str(path))


def _trace_to_onnx(model: "MMDGPlusPlus", output: Path, opset: int, fp16: bool) -> None:
    torch = require("torch", "torch")
    module = _create_live_prob_module(model, fp16)
    crops = torch.zeros(_EXAMPLE_BATCH, *CROPS_SAMPLE_SHAPE)
    mask = torch.ones(_EXAMPLE_BATCH, 3, dtype=torch.bool)
    batch = torch.export.Dim("batch", min=1)
    # The torch.export-based exporter (dynamo=True) proves the batch dimension symbolic, so a
    # specialised size fails the export instead of being baked in silently; it is the maintained
    # path since torch 2.9 and matches eager torch to ~1e-7 in onnxruntime. The legacy TorchScript
    # tracer cannot export the central-difference conv (its kernel is computed from the weights).
    with warnings.catch_warnings():
        # Both inputs share the one batch Dim on purpose; the exporter warns that it merges the names.
        warnings.filterwarnings("ignore", message=".*axis name: batch will not be used.*")
        try:
            torch.onnx.export(
                module,
                (crops, mask),
                str(output),
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"crops": {0: batch}, "mask": {0: batch}},
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        except Exception as exc:  # the exporter raises many internal types; keep the cause
            raise EngineError(f"ONNX export to {output} failed ({exc})") from exc


def _create_live_prob_module(model: "MMDGPlusPlus", fp16: bool) -> Any:
    """The exported module: FP32 crops/mask in, FP32 live_prob out, an eval copy of the model inside."""
    torch = require("torch", "torch")
    dtype = torch.float16 if fp16 else torch.float32
    inner = copy.deepcopy(model).eval().to(dtype)

    class LiveProb(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = inner

        def forward(self, crops: Any, mask: Any) -> Any:
            return self.model.live_prob(crops.to(dtype), mask).float()

    return LiveProb().eval()


def quantize_onnx(
    source: PathLike,
    output: PathLike,
    mode: str = "dynamic",
    *,
    calibration: Optional[Tuple[np.ndarray, np.ndarray]] = None,
) -> Path:
    """Quantise an exported FP32 ONNX file to INT8 with onnxruntime, keeping its metadata.

    Args:
        source: FP32 ``.onnx`` written by ``export_onnx``.
        output: the INT8 ``.onnx`` to write.
        mode: ``"dynamic"`` (INT8 per-channel MatMul/Gemm weights, activation ranges computed per
            run) or ``"static"`` (QDQ with per-channel weights and activation ranges fixed from
            ``calibration``).
        calibration: ``(crops, mask)`` engine inputs for static mode.

    Returns:
        The path written.

    Raises:
        ValueError: unknown mode, missing calibration, or a source that is not FP32.
        EngineError, EngineMismatch: unreadable source or failed quantisation.

    Example:
        >>> quantize_onnx("model.onnx", "model.int8.onnx", "dynamic")  # doctest: +SKIP
    """
    from onnxruntime import quantization

    _check_options(MIN_OPSET, False, mode, calibration)
    source, output = Path(source), Path(output)
    metadata, export_info = read_onnx_metadata(source)
    if export_info["precision"] != "fp32":
        raise ValueError(f"source: INT8 is quantised from an FP32 export, {source.name} is {export_info['precision']}")
    if mode == "static":
        crops, mask = check_inputs(*calibration)
    try:
        if mode == "dynamic":
            # MatMul/Gemm only: onnxruntime's ConvInteger for the one patch-embedding conv is slower
            # than the FP32 conv it replaces. reduce_range (7-bit weights) avoids the u8×s8 pair-sum
            # saturation of AVX2 without VNNI, at the same speed and with a smaller live-probability error.
            # The gain is in the ViT's own 768–3072-wide MatMuls; ops INT8 does not touch (attention
            # scores, Softmax, Transpose, LayerNorm, adapter glue) cap the ratio at batch 1
            # (benchmarks/bench_engines.py measures it). The U-Adapter++ MatMuls (width 8) stay quantised
            # too: excluding them (nodes_to_exclude) un-fuses their bias Adds and was no faster end to
            # end, and a width cut-off would leave the tiny/demo model (width 64) wholly FP32.
            quantization.quantize_dynamic(
                str(source),
                str(output),
                op_types_to_quantize=["MatMul", "Gemm"],
                per_channel=True,
                reduce_range=True,
                weight_type=quantization.QuantType.QInt8,
            )
        else:
            quantization.quantize_static(
                str(source),
                str(output),
                _CalibrationReader(crops, mask),
                quant_format=quantization.QuantFormat.QDQ,
                # Weight-bearing ops only: quantising the softmax output would round live_prob to
                # 1/255 steps right where the threshold decides.
                op_types_to_quantize=["MatMul", "Gemm", "Conv"],
                activation_type=quantization.QuantType.QUInt8,
                weight_type=quantization.QuantType.QInt8,
                per_channel=True,
            )
    except Exception as exc:  # onnxruntime quantisation raises assorted internal errors
        raise EngineError(f"INT8 {mode} quantisation of {source.name} failed ({exc})") from exc
    _finish(output, metadata, {**export_info, "precision": "int8", "quantization": mode, "sdk_version": __version__})
    return output


class _CalibrationReader:
    """onnxruntime CalibrationDataReader over (crops, mask), one frameset per step."""

    def __init__(self, crops: np.ndarray, mask: np.ndarray) -> None:
        self._items: Iterator[Dict[str, np.ndarray]] = (
            {"crops": crops[i : i + 1], "mask": mask[i : i + 1]} for i in range(crops.shape[0])
        )

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self._items, None)


def _finish(path: Path, metadata: Dict[str, Any], export_info: Dict[str, Any]) -> None:
    """Write the metadata into the file, then refuse anything nondeterministic or invalid."""
    onnx = require("onnx", "torch")
    model = onnx.load(str(path))
    props = {prop.key: prop.value for prop in model.metadata_props}
    props.update({METADATA_KEY: json.dumps(metadata), EXPORT_KEY: json.dumps(export_info)})
    # Per-node exporter annotations (Python class paths, rewrite-rule names) are debugging aids
    # that double a small model's file size and tell a kiosk nothing.
    for node in model.graph.node:
        del node.metadata_props[:]
    del model.metadata_props[:]
    for key, value in sorted(props.items()):
        model.metadata_props.add(key=key, value=value)
    opset = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), None)
    if opset != export_info.get("opset", opset):
        raise EngineError(f"{path}: the graph has opset {opset}, {export_info['opset']} was requested")
    random_ops = sorted({node.op_type for node in model.graph.node if node.op_type in RANDOM_OPS})
    if random_ops:
        raise EngineError(f"{path}: the exported graph contains random ops {random_ops}; engines must be deterministic")
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise EngineError(f"{path}: the exported graph fails onnx.checker ({exc})") from exc
    onnx.save(model, str(path))


def read_onnx_metadata(path: PathLike) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Checkpoint metadata and export info of an exported ONNX file (needs the ``onnx`` package).

    Raises:
        EngineError: the file cannot be parsed.
        EngineMismatch: the metadata is missing or incompatible.
    """
    onnx = require("onnx", "torch")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise EngineError(f"{path}: cannot parse the ONNX file; it is truncated or corrupt ({exc})") from exc
    return parse_model_metadata({prop.key: prop.value for prop in model.metadata_props}, str(path))
