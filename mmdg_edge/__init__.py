"""mmdg-edge: MMDG++ multimodal face anti-spoofing for RealSense-class kiosks.

    from mmdg_edge import Detector, open_source

    detector = Detector.load("demo")
    with open_source("realsense") as frames:
        for result in detector.stream(frames):
            if result.session.opened:
                open_the_door()

The public API is re-exported here by name. Heavy optional parts (the torch model, training,
TensorRT) are imported by their own modules only when used.
"""
from .align import AlignConfig, FaceAligner
from .detector import Detector, DetectorConfig, StreamResult
from .engines import available_engines, create_engine, select_engine
from .errors import (
    BundleError,
    CaptureRefused,
    CheckpointError,
    DeviceDisconnected,
    EngineError,
    EngineMismatch,
    FrameTimeout,
    MissingDependency,
    MMDGEdgeError,
    ProfileMismatch,
    SignatureError,
    SourceError,
    require,
)
from .frames import MODALITIES, Extrinsics, FaceCrops, FaceQuality, FrameSet, Intrinsics, Verdict
from .preprocess import PreprocessConfig, encode
from .sensors import open_source
from .version import __version__

__all__ = [
    "AlignConfig", "BundleError", "CaptureRefused", "CheckpointError", "Detector", "DetectorConfig",
    "DeviceDisconnected", "EngineError", "EngineMismatch", "Extrinsics", "FaceAligner", "FaceCrops", "FaceQuality", "FrameSet",
    "FrameTimeout", "Intrinsics", "MMDGEdgeError", "MODALITIES", "MissingDependency", "PreprocessConfig",
    "ProfileMismatch", "SignatureError", "SourceError", "StreamResult", "Verdict", "__version__", "available_engines",
    "create_engine", "encode", "open_source", "require", "select_engine",
]
