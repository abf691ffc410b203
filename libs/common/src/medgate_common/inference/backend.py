"""The ``ModelBackend`` protocol shared by ONNX Runtime, Triton and any later runtime."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from medgate_common.errors import ModelInputError
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


def check_inputs(specs: Sequence[TensorSpec], inputs: Mapping[str, Array]) -> dict[str, Array]:
    """The arrays to feed, in ``specs`` order, or a :class:`ModelInputError` that says what is
    wrong. Text goes in as numpy ``str``/``bytes`` arrays or object arrays; a spec of dtype
    ``object`` (a string tensor) takes any of them, converted to an object array."""
    expected = {s.name: s for s in specs}
    missing = sorted(set(expected) - set(inputs))
    extra = sorted(set(inputs) - set(expected))
    if missing or extra:
        raise ModelInputError("model inputs do not match", missing=missing, unexpected=extra)
    feed: dict[str, Array] = {}
    for name, spec in expected.items():
        array = np.asarray(inputs[name])
        if spec.dtype == "object" and array.dtype.kind in "US":
            array = array.astype(object)
        if not spec.accepts(array):
            raise ModelInputError(
                f"input {name!r} has dtype {array.dtype} and shape {array.shape}; "
                f"the model wants {spec.dtype} {spec.shape}",
                input=name,
            )
        feed[name] = array
    return feed


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
