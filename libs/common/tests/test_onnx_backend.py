"""The ONNX Runtime backend on a model built with onnx.helper (no torch in serving code)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from medgate_common.errors import ModelError, ModelInputError, NotFoundError
from medgate_common.inference import ModelBackend, OnnxRuntimeBackend


@pytest.fixture(scope="module")
def affine_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """y = 2 * x + 1 on float32 [batch, 1, 8, 8]."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 8, 8])
    y = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1, 8, 8])
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["image", "two"], ["t"]), helper.make_node("Add", ["t", "one"], ["score"])],
        "affine",
        [x],
        [y],
        initializer=[two, one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("model") / "affine.onnx"
    onnx.save(model, str(path))
    return path


def test_infer_returns_outputs_and_model_identity(affine_model: Path) -> None:
    backend = OnnxRuntimeBackend(affine_model, name="affine", version="3")
    assert isinstance(backend, ModelBackend)
    assert [s.name for s in backend.inputs] == ["image"]
    assert backend.inputs[0].shape == (None, 1, 8, 8)
    x = np.arange(2 * 64, dtype=np.float32).reshape(2, 1, 8, 8)
    result = backend.infer({"image": x})
    np.testing.assert_array_equal(result.outputs["score"], 2 * x + 1)
    assert result.model.name == "affine"
    assert result.model.version == "3"
    assert result.model.sha256 == hashlib.sha256(affine_model.read_bytes()).hexdigest()
    assert result.model.backend == "onnxruntime"
    assert result.latency_ms >= 0


def test_bad_inputs_get_clear_errors(affine_model: Path) -> None:
    backend = OnnxRuntimeBackend(affine_model, name="affine", version="3")
    with pytest.raises(ModelInputError, match="float32"):
        backend.infer({"image": np.zeros((1, 1, 8, 8), dtype=np.float64)})
    with pytest.raises(ModelInputError, match="shape"):
        backend.infer({"image": np.zeros((1, 1, 9, 8), dtype=np.float32)})
    with pytest.raises(ModelInputError) as info:
        backend.infer({"pixels": np.zeros((1, 1, 8, 8), dtype=np.float32)})
    assert info.value.details == {"missing": ["image"], "unexpected": ["pixels"]}


def test_missing_and_corrupt_model_files(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        OnnxRuntimeBackend(tmp_path / "none.onnx", name="x", version="1")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelError, match="could not load"):
        OnnxRuntimeBackend(broken, name="x", version="1")
