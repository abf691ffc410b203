"""The ``ModelBackend`` protocol shared by ONNX Runtime, Triton and any later runtime."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from medgate_common.schemas.models import ModelInfo

Array = npt.NDArray[np.generic]


@dataclass(frozen=True)
class TensorSpec:
    """Name, element type and shape of one model input or output (``None`` = dynamic)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    def accepts(self, array: Array) -> bool:
        if np.dtype(self.dtype) != array.dtype or len(self.shape) != array.ndim:
            return False
        return all(dim is None or dim == got for dim, got in zip(self.shape, array.shape, strict=True))


@dataclass(frozen=True)
class InferenceResult:
    """Outputs by name, with the identity of the model that made them."""

    outputs: Mapping[str, Array]
    model: ModelInfo
    latency_ms: float


@runtime_checkable
class ModelBackend(Protocol):
    @property
    def info(self) -> ModelInfo: ...

    @property
    def inputs(self) -> tuple[TensorSpec, ...]: ...

    @property
    def outputs(self) -> tuple[TensorSpec, ...]: ...

    def infer(self, inputs: Mapping[str, Array]) -> InferenceResult: ...
