"""`mmdg-edge doctor`: what is installed and usable, and how to fix what is not."""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One piece: whether it is usable, what was found, how to fix it, and whether the kiosk path needs it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = False


def _import(name: str):
    try:
        return importlib.import_module(name), ""
    except ImportError as exc:  # the missing piece is the answer, not an error
        return None, str(exc)
    except OSError as exc:  # e.g. pyrealsense2 without libusb
        return None, str(exc)


def _realsense() -> Check:
    rs, error = _import("pyrealsense2")
    if rs is None:
        return Check("pyrealsense2", False, f"not importable ({error})",
                     'pip install "mmdg-edge[realsense]"; apt-get install libusb-1.0-0')
    devices = [
        f"{d.get_info(rs.camera_info.name)} serial {d.get_info(rs.camera_info.serial_number)} "
        f"firmware {d.get_info(rs.camera_info.firmware_version)}"
        for d in rs.context().query_devices()
    ]
    if not devices:
        return Check("camera", False, f"pyrealsense2 {rs.__version__}, no camera connected",
                     "plug a D4xx camera into a USB 3 port; on Linux install librealsense's udev rules "
                     "(99-realsense-libusb.rules) and replug it")
    return Check("pyrealsense2", True, f"{rs.__version__}; " + "; ".join(devices))


def _onnxruntime() -> Check:
    ort, error = _import("onnxruntime")
    if ort is None:
        return Check("onnxruntime", False, error, "pip install onnxruntime (or onnxruntime-gpu)", required=True)
    return Check("onnxruntime", True, f"{ort.__version__}, providers: {', '.join(ort.get_available_providers())}",
                 required=True)


def _torch() -> Check:
    torch, error = _import("torch")
    if torch is None:
        return Check("torch", False, error, 'pip install "mmdg-edge[torch]"')
    cuda = torch.cuda.is_available()
    gpu = f"CUDA {torch.version.cuda}: {torch.cuda.get_device_name(0)}" if cuda else "no CUDA device"
    return Check("torch", True, f"{torch.__version__}, {gpu}")


def _module(name: str, fix: str) -> Callable[[], Check]:
    def check() -> Check:
        module, error = _import(name)
        if module is None:
            return Check(name, False, error, fix)
        return Check(name, True, str(getattr(module, "__version__", "installed")))

    return check


def _opencv() -> Check:
    cv2, error = _import("cv2")
    if cv2 is None:
        return Check("opencv", False, error, 'pip install "opencv-python<5"', required=True)
    cascade = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml" if hasattr(cv2, "data") else None
    if cascade is None or not cascade.is_file():
        return Check("opencv", False, f"{cv2.__version__} without Haar cascades", 'pip install "opencv-python<5"',
                     required=True)
    return Check("opencv", True, f"{cv2.__version__}, Haar cascades present", required=True)


def run_checks() -> List[Check]:
    """Run every check; none raises."""
    checks = [_opencv, _onnxruntime, _realsense, _torch, _module("open_clip", 'pip install "mmdg-edge[torch]"'),
              _module("tensorrt", 'pip install "mmdg-edge[tensorrt]" (JetPack ships it on Jetson)'),
              _module("pycuda", 'pip install "mmdg-edge[tensorrt]"')]
    return [check() for check in checks]
