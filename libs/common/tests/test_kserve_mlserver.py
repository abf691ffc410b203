"""KServeV2Backend against a real KServe v2 server: MLServer in its own venv.

MLServer cannot share the main venv with Flower (fastapi pins), so scripts/setup-mlserver.sh
makes ``.venv-mlserver``; these tests skip only when it is missing. One server per module
serves two of the runtimes in deploy/mlserver: a small ONNX model through onnxruntime, and
the image + prompt -> text stand-in, whose answers the tests compute themselves (the
grounded VQA model behind that contract is tested in services/vlm/tests/test_vqa_kserve.py).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from shared_fixtures import MLSERVER_VENV, MLServerProcess, mlserver_repository

from medgate_common.errors import ModelError, ModelInputError, NotFoundError, TransientError
from medgate_common.inference import KServeV2Backend, ModelBackend, OnnxRuntimeBackend, TensorSpec

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def toy_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3x3 convolution (1 -> 2 channels, random weights) and a sigmoid on [batch, 1, 16, 16]."""
    rng = np.random.default_rng(7)
    weight = numpy_helper.from_array(rng.normal(size=(2, 1, 3, 3)).astype(np.float32), "weight")
    bias = numpy_helper.from_array(rng.normal(size=2).astype(np.float32), "bias")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "weight", "bias"], ["logits"], pads=[1, 1, 1, 1]),
            helper.make_node("Sigmoid", ["logits"], ["score"]),
        ],
        "toy",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 16, 16])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 2, 16, 16])],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("onnx") / "toy.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def mlserver(tmp_path_factory: pytest.TempPathFactory, toy_onnx: Path) -> Iterator[MLServerProcess]:
    if not (MLSERVER_VENV / "bin" / "mlserver").exists():
        pytest.skip("no MLServer venv (.venv-mlserver); scripts/setup-mlserver.sh creates it")
    repository = mlserver_repository(tmp_path_factory.mktemp("mlserver"))
    model_dir = repository / "seg-toy"
    model_dir.mkdir()
    shutil.copy(toy_onnx, model_dir / "toy.onnx")
    (model_dir / "model-settings.json").write_text(
        '{"name": "seg-toy", "implementation": "medgate_runtimes.OnnxModel", "versions": ["3"],'
        ' "parameters": {"uri": "./toy.onnx", "version": "3"}}'
    )
    stand_in = repository / "vlm-stand-in"
    stand_in.mkdir()
    (stand_in / "model-settings.json").write_text(
        '{"name": "vlm-stand-in", "implementation": "medgate_runtimes.ImageQuestionStandIn", "versions": ["1"],'
        ' "parameters": {"version": "1"},'
        ' "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, -1, -1]},'
        ' {"name": "prompt", "datatype": "BYTES", "shape": [-1]}],'
        ' "outputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}]}'
    )
    process = MLServerProcess(repository, repository / "mlserver.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def server(mlserver: MLServerProcess) -> MLServerProcess:
    """The module's server, started again if a test killed it."""
    if not mlserver.alive:
        mlserver.start()
    return mlserver


class CountingTransport(httpx.HTTPTransport):
    """A real HTTP transport that records the path of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def test_metadata_becomes_specs_and_model_identity(server: MLServerProcess, toy_onnx: Path) -> None:
    with KServeV2Backend(server.url, "seg-toy") as backend:
        assert isinstance(backend, ModelBackend)
        assert backend.inputs == (TensorSpec("image", "float32", (None, 1, 16, 16)),)
        assert backend.outputs == (TensorSpec("score", "float32", (None, 2, 16, 16)),)
        assert backend.server_live() and backend.server_ready() and backend.model_ready()
        info = backend.info
        assert (info.name, info.version, info.backend) == ("seg-toy", "3", "kserve-v2")
        assert info.sha256 == hashlib.sha256(toy_onnx.read_bytes()).hexdigest()
        assert info.endpoint == f"{server.url}/v2/models/seg-toy/versions/3"
    with KServeV2Backend(server.url, "vlm-stand-in", version="1") as vlm:
        assert vlm.inputs == (
            TensorSpec("image", "float32", (None, None, None)),
            TensorSpec("prompt", "object", (None,)),
        )
        assert vlm.outputs == (TensorSpec("text", "object", (None,)),)
        runtime_source = ROOT / "deploy" / "mlserver" / "medgate_runtimes.py"
        assert vlm.info.sha256 == hashlib.sha256(runtime_source.read_bytes()).hexdigest()


def test_fp32_inference_equals_local_onnxruntime(server: MLServerProcess, toy_onnx: Path) -> None:
    image = np.random.default_rng(1).normal(size=(3, 1, 16, 16)).astype(np.float32)
    local = OnnxRuntimeBackend(toy_onnx, name="seg-toy", version="3").infer({"image": image})
    with KServeV2Backend(server.url, "seg-toy", version="3") as backend:
        remote = backend.infer({"image": image})
    score = remote.outputs["score"]
    assert score.dtype == np.float32
    assert score.shape == (3, 2, 16, 16)
    assert float(np.max(np.abs(score - local.outputs["score"]))) <= 1e-6
    assert remote.model.sha256 == local.model.sha256
    assert remote.latency_ms > 0


def _expected_answer(image: np.ndarray, prompt: str) -> str:
    values = image.astype(np.float64)
    return (
        f"Answer to {prompt!r}: a {image.shape[0]}x{image.shape[1]} image, "
        f"mean {values.mean():.4f}, min {values.min():.4f}, max {values.max():.4f}."
    )


def test_image_and_prompt_to_text(server: MLServerProcess) -> None:
    images = np.stack([np.full((8, 6), 0.25, np.float32), np.arange(48, dtype=np.float32).reshape(8, 6)])
    prompts = ["Is there a lesion?", "Décrivez le contraste — 肺"]
    with KServeV2Backend(server.url, "vlm-stand-in") as vlm:
        result = vlm.infer({"image": images, "prompt": np.array(prompts)})
        as_bytes = vlm.infer({"image": images[:1], "prompt": np.array([prompts[1].encode()])})
    text = result.outputs["text"]
    assert text.dtype == object
    assert text.tolist() == [_expected_answer(img, p) for img, p in zip(images, prompts, strict=True)]
    assert text[1] == "Answer to 'Décrivez le contraste — 肺': a 8x6 image, mean 23.5000, min 0.0000, max 47.0000."
    assert as_bytes.outputs["text"].tolist() == [text[0].replace("Is there a lesion?", prompts[1])]


def test_unknown_model_or_version_is_not_found(server: MLServerProcess) -> None:
    with pytest.raises(NotFoundError, match=r"'no-such-model'.*not found") as info:
        KServeV2Backend(server.url, "no-such-model")
    assert info.value.details["status"] == 404
    with pytest.raises(NotFoundError, match="version 9"):
        KServeV2Backend(server.url, "seg-toy", version="9")


def test_bad_inputs_fail_before_anything_is_sent(server: MLServerProcess) -> None:
    transport = CountingTransport()
    with KServeV2Backend(server.url, "seg-toy", transport=transport) as backend:
        sent = len(transport.paths)
        with pytest.raises(ModelInputError, match=r"shape \(2, 1, 15, 16\)"):
            backend.infer({"image": np.zeros((2, 1, 15, 16), np.float32)})
        with pytest.raises(ModelInputError, match="float64"):
            backend.infer({"image": np.zeros((2, 1, 16, 16), np.float64)})
        with pytest.raises(ModelInputError) as info:
            backend.infer({"pixels": np.zeros((2, 1, 16, 16), np.float32)})
        assert info.value.details == {"missing": ["image"], "unexpected": ["pixels"]}
        assert len(transport.paths) == sent
        backend.infer({"image": np.zeros((1, 1, 16, 16), np.float32)})
        assert transport.paths[-1] == "/v2/models/seg-toy/versions/3/infer"
    with KServeV2Backend(server.url, "vlm-stand-in", transport=transport) as vlm:
        sent = len(transport.paths)
        with pytest.raises(ModelInputError, match="string tensor"):
            vlm.infer({"image": np.zeros((1, 4, 4), np.float32), "prompt": np.array([3], dtype=object)})
        assert len(transport.paths) == sent


def test_server_refusal_names_model_and_server_message(server: MLServerProcess) -> None:
    with KServeV2Backend(server.url, "vlm-stand-in") as vlm, pytest.raises(ModelError) as info:
        # Both shapes are dynamic, so only the runtime can see one prompt too many.
        vlm.infer({"image": np.zeros((1, 4, 4), np.float32), "prompt": np.array(["a", "b"])})
    assert "'vlm-stand-in'" in info.value.message
    assert "one prompt per image" in info.value.message
    assert not info.value.retryable


def test_killed_server_gives_transient_error(server: MLServerProcess) -> None:
    backend = KServeV2Backend(server.url, "seg-toy", timeout_s=5.0)
    server.kill()
    with pytest.raises(TransientError, match="unreachable") as info:
        backend.infer({"image": np.zeros((1, 1, 16, 16), np.float32)})
    assert info.value.retryable
    assert not backend.server_live()
    backend.close()
