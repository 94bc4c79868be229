"""Read an ONNX file's ``metadata_props`` without onnx or onnxruntime.

The kiosk installs onnxruntime but not the ``onnx`` package, and onnxruntime only reveals the
metadata after it has built a whole session. Walking the top level of the protobuf is cheap
(the graph is skipped by its length prefix), lets the engine refuse a foreign or truncated file
before onnxruntime touches it, and tells the precision before the session options are chosen.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Dict, Tuple, Union

from ..errors import EngineError

PathLike = Union[str, "os.PathLike[str]"]

_METADATA_PROPS_FIELD = 14  # ModelProto.metadata_props (onnx.proto)
_GRAPH_FIELD = 7  # ModelProto.graph
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


def read_onnx_properties(path: PathLike) -> Dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict.

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
    size = path.stat().st_size
    properties: Dict[str, str] = {}
    has_graph = False
    with path.open("rb") as handle:
        while handle.tell() < size:
            field, wire_type = _read_key(handle, path)
            if wire_type == _VARINT:
                _read_varint(handle, path)
            elif wire_type in (_FIXED64, _FIXED32):
                _skip(handle, 8 if wire_type == _FIXED64 else 4, size, path)
            elif wire_type == _LENGTH:
                length = _read_varint(handle, path)
                if field == _METADATA_PROPS_FIELD:
                    key, value = _parse_entry(_read_exact(handle, length, size, path), path)
                    properties[key] = value
                else:
                    has_graph = has_graph or field == _GRAPH_FIELD
                    _skip(handle, length, size, path)
            else:
                raise EngineError(f"{path}: not an ONNX file (protobuf wire type {wire_type} at top level)")
    if not has_graph:
        raise EngineError(f"{path}: not an ONNX model (no graph); the file is empty, truncated or another format")
    return properties


def _read_key(handle: BinaryIO, path: Path) -> Tuple[int, int]:
    key = _read_varint(handle, path)
    return key >> 3, key & 7


def _read_varint(handle: BinaryIO, path: Path) -> int:
    value, shift = 0, 0
    while True:
        byte = handle.read(1)
        if not byte:
            raise EngineError(f"{path}: the ONNX file is truncated (ends inside a field header)")
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise EngineError(f"{path}: not an ONNX file (malformed protobuf varint)")


def _skip(handle: BinaryIO, length: int, size: int, path: Path) -> None:
    if handle.tell() + length > size:
        raise EngineError(
            f"{path}: the ONNX file is truncated ({size} bytes, a field needs {handle.tell() + length}); "
            "re-copy or re-export it"
        )
    handle.seek(length, os.SEEK_CUR)


def _read_exact(handle: BinaryIO, length: int, size: int, path: Path) -> bytes:
    start = handle.tell()
    _skip(handle, length, size, path)
    handle.seek(start)
    return handle.read(length)


def _parse_entry(data: bytes, path: Path) -> Tuple[str, str]:
    """StringStringEntryProto: field 1 key, field 2 value."""
    fields = {1: "", 2: ""}
    position = 0
    while position < len(data):
        key, position = _varint_at(data, position, path)
        length, position = _varint_at(data, position, path)
        if key & 7 != _LENGTH or position + length > len(data):
            raise EngineError(f"{path}: corrupt ONNX metadata entry")
        if key >> 3 in fields:
            fields[key >> 3] = data[position : position + length].decode("utf-8", errors="replace")
        position += length
    return fields[1], fields[2]


def _varint_at(data: bytes, position: int, path: Path) -> Tuple[int, int]:
    value, shift = 0, 0
    while position < len(data):
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
    raise EngineError(f"{path}: corrupt ONNX metadata entry (truncated varint)")
