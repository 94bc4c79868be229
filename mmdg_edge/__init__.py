"""mmdg-edge: MMDG++ multimodal face anti-spoofing for RealSense-class kiosks.

The public API is re-exported here by name. Heavy optional parts (torch model, training,
TensorRT) are imported by their own modules only when used.
"""
from .errors import (
    CheckpointError,
    DeviceDisconnected,
    EngineError,
    EngineMismatch,
    FrameTimeout,
    MissingDependency,
    MMDGEdgeError,
    SourceError,
    require,
)
from .frames import MODALITIES, Extrinsics, FaceCrops, FaceQuality, FrameSet, Intrinsics, Verdict
from .preprocess import PreprocessConfig, crops_to_input, images_to_input
from .engines import available_engines, create_engine, select_engine
from .version import __version__
