"""Ed25519 signatures over model files and device profiles, so a kiosk runs only what its owner approved.

Without signatures a profile is bound to a model file by that file's SHA-256, but anyone able to
write files on the kiosk could replace both. A kiosk given a trusted public key
(``Detector.load(..., trusted_key=...)``) refuses a model or profile that is unsigned, signed by
another key, or changed since it was signed. A signature is a small JSON file beside the signed
file (``model.onnx.sig``); it signs the file's SHA-256 and its role, so the detector checks the very
bytes its engine loaded and a profile's signature cannot pass for a model's.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Tuple, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .digest import file_sha256
from .errors import SignatureError

PathLike = Union[str, "os.PathLike[str]"]
SIGNATURE_FORMAT = "mmdg-edge-signature/1"
ROLES = ("model", "profile", "bundle")


def signature_path(path: PathLike) -> Path:
    """``model.onnx`` → ``model.onnx.sig``."""
    path = Path(path)
    return path.with_name(path.name + ".sig")


def _message(role: str, sha256: str) -> bytes:
    return f"{SIGNATURE_FORMAT}\n{role}\n{sha256}".encode()


def key_id(public_key: Any) -> str:
    """A short, stable name of a public key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def create_key_pair(private_path: PathLike, public_path: PathLike) -> str:
    """Write a new Ed25519 key pair as PEM files (the private one readable by its owner only).

    Returns:
        The key id.

    Raises:
        FileExistsError: either file exists (a key is never overwritten).
    """
    private_path, public_path = Path(private_path), Path(public_path)
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} exists; keys are never overwritten")
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_id(private_key.public_key())


def _load_key(path: PathLike, private: bool) -> Any:
    path = Path(path)
    try:
        data = path.read_bytes()
        key = (serialization.load_pem_private_key(data, password=None) if private
               else serialization.load_pem_public_key(data))
    except (OSError, ValueError, TypeError) as exc:
        kind = "private" if private else "public"
        raise SignatureError(f"{path}: not a readable {kind} key in PEM form ({exc})") from exc
    expected = Ed25519PrivateKey if private else Ed25519PublicKey
    if not isinstance(key, expected):
        raise SignatureError(f"{path}: an Ed25519 key is expected, this is a {type(key).__name__}")
    return key


def load_private_key(path: PathLike) -> Any:
    """An Ed25519 private key from a PEM file (``mmdg-edge keygen``)."""
    return _load_key(path, private=True)


def load_public_key(path: PathLike) -> Any:
    """An Ed25519 public key from a PEM file (``mmdg-edge keygen``)."""
    return _load_key(path, private=False)


def sign_file(path: PathLike, private_key: Any, role: str) -> Path:
    """Sign a file's SHA-256 for ``role`` ("model", "profile" or "bundle"); writes ``<path>.sig``.

    Example:
        >>> sign_file("model.onnx", load_private_key("kiosk.key"), "model")  # doctest: +SKIP
    """
    if role not in ROLES:
        raise ValueError(f"role: expected one of {ROLES}, got {role!r}")
    sha256 = file_sha256(path)
    signature = private_key.sign(_message(role, sha256))
    record = {"format": SIGNATURE_FORMAT, "algorithm": "ed25519", "role": role, "sha256": sha256,
              "key_id": key_id(private_key.public_key()), "signature": base64.b64encode(signature).decode()}
    out = signature_path(path)
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return out


def _read_signature(path: Path, source: str, role: str) -> Tuple[dict, bytes]:
    if not path.is_file():
        # A bundle's index is signed with the rest of its folder: `sign FOLDER` signs models, profiles and index.
        target = Path(source).parent if role == "bundle" else source
        raise SignatureError(f"{source} is not signed (no {path.name}); a trusted key was given, so unsigned files "
                             f"are refused: sign it with `mmdg-edge sign {target} --key NAME.key`")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        signature = base64.b64decode(record["signature"], validate=True)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SignatureError(f"{path}: not a readable signature ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") != SIGNATURE_FORMAT or record.get("algorithm") != "ed25519":
        raise SignatureError(f"{path}: expected format {SIGNATURE_FORMAT} with algorithm ed25519")
    return record, signature


def verify(sha256: str, path: PathLike, public_key: Any, role: str) -> None:
    """Check that the file at ``path``, whose bytes hash to ``sha256``, is signed by ``public_key`` for ``role``.

    ``sha256`` is the digest of the bytes actually loaded (an engine's ``model_sha256``), so the
    check holds for what runs, not for what the file holds a moment later.

    Raises:
        SignatureError: unsigned, signed by another key, for another role, or changed since signing.
    """
    source = str(path)
    record, signature = _read_signature(signature_path(path), source, role)
    trusted = key_id(public_key)
    if record.get("key_id") != trusted:
        raise SignatureError(f"{source} is signed by key {record.get('key_id')!r}, not by the trusted key {trusted}")
    if record.get("role") != role:
        raise SignatureError(f"{source} carries a {record.get('role')!r} signature, a {role!r} one is needed")
    try:
        public_key.verify(signature, _message(role, sha256))
    except InvalidSignature:
        raise SignatureError(f"{source} was changed after it was signed (or its signature was forged)") from None


def load_signed_json(data: bytes, path: PathLike, public_key: Any, role: str, error: type) -> Any:
    """``data``, read from ``path``, parsed as JSON; first checked for its ``role`` signature when
    ``public_key`` is given (``verify``). Bytes that are not UTF-8 JSON raise ``error`` naming the file."""
    if public_key is not None:
        verify(hashlib.sha256(data).hexdigest(), path, public_key, role)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: not JSON ({exc})") from exc
