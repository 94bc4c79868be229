"""Read an ONNX model's ``metadata_props`` (from the file or its bytes) without onnx or onnxruntime.

The kiosk installs onnxruntime but not the ``onnx`` package, and onnxruntime only reveals the
metadata after it has built a whole session. Walking the top level of the protobuf is cheap
(the graph is skipped by its length prefix), lets the engine refuse a foreign or truncated file
before onnxruntime touches it, and tells the precision before the session options are chosen.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Dict, Tuple, Union

from ..errors import EngineError

PathLike = Union[str, "os.PathLike[str]"]

_METADATA_PROPS_FIELD = 14  # ModelProto.metadata_props (onnx.proto)
_GRAPH_FIELD = 7  # ModelProto.graph
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


def read_onnx_properties(path: PathLike) -> Dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict, without reading the graph.

    Args:
        path: an ``.onnx`` file (weights inline or external; external data is not read).

    Returns:
        key → value strings, in file order.

    Raises:
        EngineError: missing file, or bytes that are not a complete ONNX ModelProto (truncated,
            corrupt, another format), naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"{path}: no such ONNX file")
    with path.open("rb") as handle:
        return _walk_model(handle, path.stat().st_size, str(path))


def parse_onnx_properties(data: bytes, source: str) -> Dict[str, str]:
    """The ``metadata_props`` of an ONNX model held in memory.

    Engines that hash and load a model from bytes read it here, so the metadata they check comes
    from the very bytes they then run.

    Args:
        data: the whole ``.onnx`` file.
        source: the file name, for messages.

    Returns:
        key → value strings, in file order.

    Raises:
        EngineError: bytes that are not a complete ONNX ModelProto, naming ``source``.
    """
    return _walk_model(io.BytesIO(data), len(data), source)


def _walk_model(handle: BinaryIO, size: int, source: str) -> Dict[str, str]:
    properties: Dict[str, str] = {}
    has_graph = False
    while handle.tell() < size:
        field, wire_type = _read_key(handle, source)
        if wire_type == _VARINT:
            _read_varint(handle, source)
        elif wire_type in (_FIXED64, _FIXED32):
            _skip(handle, 8 if wire_type == _FIXED64 else 4, size, source)
        elif wire_type == _LENGTH:
            length = _read_varint(handle, source)
            if field == _METADATA_PROPS_FIELD:
                key, value = _parse_entry(_read_exact(handle, length, size, source), source)
                properties[key] = value
            else:
                has_graph = has_graph or field == _GRAPH_FIELD
                _skip(handle, length, size, source)
        else:
            raise EngineError(f"{source}: not an ONNX file (protobuf wire type {wire_type} at top level)")
    if not has_graph:
        raise EngineError(f"{source}: not an ONNX model (no graph); the file is empty, truncated or another format")
    return properties


def _read_key(handle: BinaryIO, source: str) -> Tuple[int, int]:
    key = _read_varint(handle, source)
    return key >> 3, key & 7


def _read_varint(handle: BinaryIO, source: str) -> int:
    value, shift = 0, 0
    while True:
        byte = handle.read(1)
        if not byte:
            raise EngineError(f"{source}: the ONNX file is truncated (ends inside a field header)")
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise EngineError(f"{source}: not an ONNX file (malformed protobuf varint)")


def _skip(handle: BinaryIO, length: int, size: int, source: str) -> None:
    if handle.tell() + length > size:
        raise EngineError(
            f"{source}: the ONNX file is truncated ({size} bytes, a field needs {handle.tell() + length}); "
            "re-copy or re-export it"
        )
    handle.seek(length, os.SEEK_CUR)


def _read_exact(handle: BinaryIO, length: int, size: int, source: str) -> bytes:
    start = handle.tell()
    _skip(handle, length, size, source)
    handle.seek(start)
    return handle.read(length)


def _parse_entry(data: bytes, source: str) -> Tuple[str, str]:
    """StringStringEntryProto: field 1 key, field 2 value."""
    fields = {1: "", 2: ""}
    position = 0
    while position < len(data):
        key, position = _varint_at(data, position, source)
        length, position = _varint_at(data, position, source)
        if key & 7 != _LENGTH or position + length > len(data):
            raise EngineError(f"{source}: corrupt ONNX metadata entry")
        if key >> 3 in fields:
            fields[key >> 3] = data[position : position + length].decode("utf-8", errors="replace")
        position += length
    return fields[1], fields[2]


def _varint_at(data: bytes, position: int, source: str) -> Tuple[int, int]:
    value, shift = 0, 0
    while position < len(data):
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
    raise EngineError(f"{source}: corrupt ONNX metadata entry (truncated varint)")
