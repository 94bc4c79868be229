"""Ed25519 signatures over model files and device profiles, so a kiosk runs only what its owner approved.

Without signatures a profile is bound to a model file by that file's SHA-256, but anyone able to
write files on the kiosk could replace both. A kiosk given a trusted public key
(``Detector.load(..., trusted_key=...)``) refuses any file it would act on (a model, a TensorRT
plan's sidecar, a profile, a bundle's index) that is unsigned, signed by another key, or changed
since it was signed. A signature is a small JSON file beside the signed
file (``model.onnx.sig``); it signs the file's SHA-256 and its role, so the detector checks the very
bytes its engine loaded and a profile's signature cannot pass for a model's.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from datetime import datetime
from typing import Any, Dict, Iterable, Optional, Tuple, Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .digest import file_sha256
from .errors import SignatureError
from .outputs import check_output, write_output

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
    write_output(public_path, private_key.public_key().public_bytes(serialization.Encoding.PEM,
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


def sign_file(path: PathLike, private_key: Any, role: str, force: bool = False) -> Path:
    """Sign a file's SHA-256 for ``role`` ("model", "profile" or "bundle"); writes ``<path>.sig``.

    The signature is written beside the file under a temporary name and renamed into place, so it
    never follows a link planted at ``<path>.sig``; an existing signature is replaced only with ``force``.

    Raises:
        FileExistsError: ``<path>.sig`` exists and ``force`` is False.

    Example:
        >>> sign_file("model.onnx", load_private_key("kiosk.key"), "model")  # doctest: +SKIP
    """
    if role not in ROLES:
        raise ValueError(f"role: expected one of {ROLES}, got {role!r}")
    out = check_output(signature_path(path), force)
    sha256 = file_sha256(path)
    signature = private_key.sign(_message(role, sha256))
    record = {"format": SIGNATURE_FORMAT, "algorithm": "ed25519", "role": role, "sha256": sha256,
              "key_id": key_id(private_key.public_key()), "signature": base64.b64encode(signature).decode()}
    return write_output(out, json.dumps(record, indent=2) + "\n", force)


def _read_signature(path: Path, source: str, role: str) -> Tuple[dict, bytes]:
    if not path.is_file():
        # A bundle's index is signed with the rest of its folder: `sign FOLDER` signs models, profiles and index.
        target = Path(source).parent if role == "bundle" else source
        raise SignatureError(f"{source} is not signed (no {path.name}); a trusted key was given, so unsigned files "
                             f"are refused: sign it with `mmdg-edge sign {target} --key NAME.key`")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        signature = base64.b64decode(record["signature"], validate=True)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, RecursionError) as exc:
        raise SignatureError(f"{path}: not a readable signature ({type(exc).__name__}: {exc})") from exc
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


def verify_files(paths: Iterable[PathLike], public_key: Any, role: str) -> Dict[Path, str]:
    """Check every file's ``role`` signature by ``public_key`` before anything parses it.

    Returns:
        Each file's SHA-256 as verified: ``check_loaded`` then compares what a reader actually
        read, so a file swapped between this check and the read is refused as well.

    Raises:
        SignatureError: a file that cannot be read, or one ``verify`` refuses.
    """
    verified = {}
    for path in map(Path, paths):
        try:
            digest = file_sha256(path)
        except OSError as exc:
            raise SignatureError(f"{path}: cannot be read to check its signature ({exc})") from exc
        verify(digest, path, public_key, role)
        verified[path] = digest
    return verified


def check_loaded(loaded: Iterable[Tuple[Path, str]], verified: Dict[Path, str]) -> None:
    """Refuse unless every file a reader acted on (path, SHA-256 of the bytes read) is one ``verify_files``
    checked, with the same bytes; and at least one file was read.

    Raises:
        SignatureError: a file read but never verified, one changed in between, or nothing read.
    """
    loaded = tuple(loaded)
    if not loaded:
        raise SignatureError("the engine names no file it read (an in-memory model), so no signature can cover it")
    for path, digest in loaded:
        if Path(path) not in verified:
            raise SignatureError(f"{path} was read without its signature being checked")
        if verified[Path(path)] != digest:
            raise SignatureError(f"{path} changed while it was loaded (the bytes read are not the signed ones)")


def created_time(value: Any, source: str, error: type) -> datetime:
    """A signed file's ``created`` stamp (ISO 8601 with its UTC offset) as a datetime, or ``error`` naming ``source``."""
    try:
        created = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        created = None
    if created is None or created.tzinfo is None:
        raise error(f"{source}: expected an ISO 8601 time with its UTC offset, e.g. 2026-01-31T12:00:00+00:00, "
                    f"got {value!r}")
    return created


def parse_min_created(value: Union[str, datetime, None]) -> Optional[datetime]:
    """``min_created`` of ``Detector.load``: None, an aware datetime or its ISO 8601 text.

    Raises:
        ValueError: a time without its UTC offset (ambiguous across time zones) or not a time.
    """
    if value is None or isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, datetime):
        raise ValueError(f"min_created: expected a time with its UTC offset, got the naive {value.isoformat()}")
    return created_time(value, "min_created", ValueError)


def check_not_before(created: str, minimum: Optional[datetime], source: str, error: type) -> None:
    """Refuse a profile or bundle created before ``minimum``: one its key signed earlier is still
    validly signed, so only its age tells a rollback apart."""
    if minimum is not None and created_time(created, f"{source}: created", error) < minimum:
        raise error(f"{source} was created {created}, before the minimum {minimum.isoformat()} this detector was "
                    "given: an older profile or bundle is refused (a rollback); install the current one")


def load_signed_json(data: bytes, path: PathLike, public_key: Any, role: str, error: type) -> Any:
    """``data``, read from ``path``, parsed as JSON; first checked for its ``role`` signature when
    ``public_key`` is given (``verify``). Bytes that are not UTF-8 JSON raise ``error`` naming the file."""
    if public_key is not None:
        verify(hashlib.sha256(data).hexdigest(), path, public_key, role)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise error(f"{path}: not JSON ({type(exc).__name__}: {exc})") from exc
