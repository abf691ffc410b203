"""ONNX Runtime implementation of :class:`ModelBackend`."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from medgate_common.errors import ModelError, NotFoundError
from medgate_common.inference.backend import Array, InferenceResult, TensorSpec, check_inputs
from medgate_common.schemas.models import ModelInfo
from medgate_common.storage import sha256_file

log = logging.getLogger(__name__)

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(bool)": "bool",
}


def _spec(arg: ort.NodeArg) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in arg.shape)
    dtype = _ORT_TYPES.get(arg.type)
    if dtype is None:
        raise ModelError(f"unsupported tensor type {arg.type} for {arg.name}")
    return TensorSpec(arg.name, dtype, shape)


class OnnxRuntimeBackend:
    """Runs one ONNX file. The sha256 of the file is computed at load and reported with
    every result, so a stored result always names the exact weights that produced it."""

    def __init__(
        self,
        path: Path,
        name: str,
        version: str,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        intra_op_threads: int = 0,
    ) -> None:
        if not path.is_file():
            raise NotFoundError(f"model file not found: {path.name}")
        available = set(ort.get_available_providers())
        chosen = [p for p in providers if p in available] or ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"could not load model {name}: {exc}") from exc
        active = self._session.get_providers()
        device = "cuda" if "CUDAExecutionProvider" in active else "cpu"
        self._info = ModelInfo(
            name=name, version=version, sha256=sha256_file(path), backend="onnxruntime", device=device
        )
        self._inputs = tuple(_spec(a) for a in self._session.get_inputs())
        self._outputs = tuple(_spec(a) for a in self._session.get_outputs())
        log.info("loaded model", extra={"model": name, "version": version, "providers": active})

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    def infer(self, inputs: Mapping[str, Array]) -> InferenceResult:
        feed = check_inputs(self._inputs, inputs)
        started = time.perf_counter()
        try:
            values = self._session.run(None, feed)
        except Exception as exc:
            raise ModelError(f"inference failed in {self._info.name}: {exc}") from exc
        latency = (time.perf_counter() - started) * 1000.0
        outputs = {spec.name: np.asarray(v) for spec, v in zip(self._outputs, values, strict=True)}
        return InferenceResult(outputs=outputs, model=self._info, latency_ms=latency)
