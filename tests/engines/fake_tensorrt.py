"""A fake ``tensorrt`` and ``pycuda.driver`` at the boundary TensorRTEngine uses, for runner paths only a GPU exercises.

``FakeGpu(plan_bytes)`` simulates one CUDA device and a TensorRT runtime that deserialises exactly
``plan_bytes``. Device memory is a numpy byte buffer per allocation; the copies and the execution
read and write those buffers through the addresses the runner binds, so a runner that mixes up
buffers gets wrong scores. The "network" computes, per row,
``live_prob = sigmoid(mean(crops row) + 0.1 · present modalities)``. Every copy and the execution
sleep ``step_s`` first (releasing the GIL, as a real driver call waiting on the GPU does), so two
unserialised threads really interleave. ``gpu.modules()`` are the entries for ``sys.modules``.
"""
from __future__ import annotations

import itertools
import time
import types
from typing import Dict, List, Tuple

import numpy as np

TENSORRT_VERSION = "10.3.0"
GPU_NAME = "NVIDIA Fake GPU"
COMPUTE_CAPABILITY = (8, 9)
_TENSORS = (("crops", "FLOAT"), ("mask", "BOOL"), ("live_prob", "FLOAT"))
_NPTYPES = {"FLOAT": np.float32, "BOOL": np.bool_}


def expected_live_prob(crops: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What the fake network returns for a batch, computed directly."""
    logit = crops.reshape(len(crops), -1).astype(np.float64).mean(1) + 0.1 * mask.sum(1)
    return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)


def _as_bytes(array: np.ndarray) -> np.ndarray:
    """A uint8 view of a C-contiguous array (host buffers are contiguous slices of pinned memory)."""
    return array.reshape(-1).view(np.uint8)


class FakeGpu:
    def __init__(self, plan_bytes: bytes, step_s: float = 0.001) -> None:
        self.plan_bytes = plan_bytes
        self.step_s = step_s
        self.memory: Dict[int, np.ndarray] = {}
        self.deserialized: List[bytes] = []  # every plan handed to deserialize_cuda_engine
        self._addresses = itertools.count(0x1000, 0x1000)

    def view(self, address: int, dtype: type, shape: Tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(shape))
        return self.memory[address][: count * np.dtype(dtype).itemsize].view(dtype).reshape(shape)

    def modules(self) -> Dict[str, types.ModuleType]:
        trt = types.ModuleType("tensorrt")
        trt.__version__ = TENSORRT_VERSION
        trt.Logger = _Logger
        trt.Runtime = lambda logger: _Runtime(self)
        trt.nptype = lambda dtype: _NPTYPES[dtype]
        driver = types.ModuleType("pycuda.driver")
        driver.init = lambda: None
        driver.Device = _Device
        driver.Stream = _Stream
        driver.pagelocked_empty = lambda shape, dtype: np.zeros(shape, dtype)
        driver.mem_alloc = self._mem_alloc
        driver.memcpy_htod_async = self._memcpy_htod_async
        driver.memcpy_dtoh_async = self._memcpy_dtoh_async
        pycuda = types.ModuleType("pycuda")
        pycuda.driver = driver
        return {"tensorrt": trt, "pycuda": pycuda, "pycuda.driver": driver}

    def _mem_alloc(self, nbytes: int) -> "_Allocation":
        address = next(self._addresses)
        self.memory[address] = np.zeros(nbytes, np.uint8)
        return _Allocation(self, address)

    def _memcpy_htod_async(self, destination: "_Allocation", source: np.ndarray, stream: "_Stream") -> None:
        time.sleep(self.step_s)
        data = _as_bytes(source)
        self.memory[int(destination)][: data.size] = data

    def _memcpy_dtoh_async(self, destination: np.ndarray, source: "_Allocation", stream: "_Stream") -> None:
        time.sleep(self.step_s)
        data = _as_bytes(destination)
        data[:] = self.memory[int(source)][: data.size]


class _Logger:
    WARNING = 2

    def __init__(self, severity: int) -> None:
        self.severity = severity


class _Runtime:
    def __init__(self, gpu: FakeGpu) -> None:
        self._gpu = gpu

    def deserialize_cuda_engine(self, plan: bytes) -> "_CudaEngine | None":
        self._gpu.deserialized.append(bytes(plan))
        return _CudaEngine(self._gpu) if plan == self._gpu.plan_bytes else None


class _CudaEngine:
    num_io_tensors = len(_TENSORS)

    def __init__(self, gpu: FakeGpu) -> None:
        self._gpu = gpu

    def get_tensor_name(self, index: int) -> str:
        return _TENSORS[index][0]

    def get_tensor_dtype(self, name: str) -> str:
        return dict(_TENSORS)[name]

    def create_execution_context(self) -> "_ExecutionContext":
        return _ExecutionContext(self._gpu)


class _ExecutionContext:
    def __init__(self, gpu: FakeGpu) -> None:
        self._gpu = gpu
        self._addresses: Dict[str, int] = {}
        self._shapes: Dict[str, Tuple[int, ...]] = {}

    def set_tensor_address(self, name: str, address: int) -> bool:
        self._addresses[name] = address
        return True

    def set_input_shape(self, name: str, shape: Tuple[int, ...]) -> bool:
        self._shapes[name] = tuple(shape)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        gpu = self._gpu
        time.sleep(gpu.step_s)
        crops = gpu.view(self._addresses["crops"], np.float32, self._shapes["crops"])
        mask = gpu.view(self._addresses["mask"], np.bool_, self._shapes["mask"])
        live_prob = expected_live_prob(crops, mask)
        gpu.view(self._addresses["live_prob"], np.float32, live_prob.shape)[:] = live_prob
        return True


class _Allocation:
    def __init__(self, gpu: FakeGpu, address: int) -> None:
        self._gpu, self._address = gpu, address

    def __int__(self) -> int:
        return self._address

    def free(self) -> None:
        del self._gpu.memory[self._address]


class _Stream:
    handle = 1

    def synchronize(self) -> None:
        pass


class _PrimaryContext:
    def push(self) -> None:
        pass

    def pop(self) -> None:
        pass

    def detach(self) -> None:
        pass


class _Device:
    def __init__(self, index: int) -> None:
        self.index = index

    @staticmethod
    def count() -> int:
        return 1

    def name(self) -> str:
        return GPU_NAME

    def compute_capability(self) -> Tuple[int, int]:
        return COMPUTE_CAPABILITY

    def retain_primary_context(self) -> _PrimaryContext:
        return _PrimaryContext()
