"""The SDK's exception types and the one helper for optional heavy imports."""
from __future__ import annotations

import importlib
from types import ModuleType


class MMDGEdgeError(Exception):
    """Base class of every error the SDK raises on purpose."""


class MissingDependency(MMDGEdgeError, ImportError):
    """An optional package (torch, pyrealsense2, tensorrt, ...) is not installed."""


class FrameTimeout(MMDGEdgeError):
    """A camera or recording delivered no frameset within the allowed time."""


class DeviceDisconnected(MMDGEdgeError):
    """A camera went away and could not be reopened within the allowed attempts."""


class SourceError(MMDGEdgeError):
    """A frame source (recording file, camera spec) cannot be opened or read."""


class CheckpointError(MMDGEdgeError):
    """A checkpoint file is missing, unsafe, corrupt or does not match its metadata."""


class EngineMismatch(MMDGEdgeError):
    """A compiled model (ONNX, TensorRT plan) does not match what the SDK or this machine expects."""


class EngineError(MMDGEdgeError):
    """An inference engine failed to build, load or run."""


class SignatureError(MMDGEdgeError):
    """A file that must be signed by a trusted key is unsigned, signed by another key, or changed since."""


class ProfileMismatch(MMDGEdgeError):
    """A device profile belongs to another camera or another model file, or is malformed."""


class BundleError(MMDGEdgeError):
    """A bundle folder is incomplete, malformed, or holds a file changed since it was bundled."""


class CaptureRefused(MMDGEdgeError, ValueError):
    """A collected capture where most framesets show no face: deleted, never added to the manifest."""


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency or explain how to install it.

    Args:
        module: importable name, e.g. ``"pyrealsense2"`` or ``"tensorrt"``.
        extra: the mmdg-edge extra that provides it, e.g. ``"realsense"``.

    Returns:
        The imported module.

    Raises:
        MissingDependency: the module cannot be imported; the message says
            ``pip install "mmdg-edge[<extra>]"`` and keeps the original ImportError as cause.

    Example:
        >>> rs = require("pyrealsense2", "realsense")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"{module!r} is needed for this feature but could not be imported ({exc}). "
            f'Install it with: pip install "mmdg-edge[{extra}]"'
        ) from exc
