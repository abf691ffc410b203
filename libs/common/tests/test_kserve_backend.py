"""KServeV2Backend's error mapping without a model server.

Refused connections and timeouts use real loopback sockets. Triton cannot run here (no
container engine, no GPU), so the answers where it differs from MLServer (a 400 for an
unknown model, several versions, no sha256 in the metadata) are replayed from its
documented protocol through httpx.MockTransport; the real-server tests are in
test_kserve_mlserver.py.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest

from medgate_common.errors import ConfigError, ModelError, NotFoundError, NotReadyError, TransientError
from medgate_common.inference import KServeV2Backend

WEIGHTS = "ab" * 32
METADATA = {
    "name": "lesion-seg",
    "versions": ["1"],
    "platform": "onnxruntime_onnx",
    "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 64, 64]}],
    "outputs": [
        {"name": "mask", "datatype": "UINT8", "shape": [-1, 1, 64, 64]},
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
    ],
}


def triton(
    metadata: dict[str, object] = METADATA, infer: Callable[[httpx.Request], httpx.Response] | None = None
) -> httpx.MockTransport:
    """Answers the way Triton's HTTP endpoint does for one model, ``lesion-seg``."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not path.startswith("/v2/models/lesion-seg"):
            name = path.split("/")[3]
            return httpx.Response(400, json={"error": f"Request for unknown model: '{name}' is not found"})
        if path.endswith("/ready"):
            return httpx.Response(200)
        if path.endswith("/infer") and infer is not None:
            return infer(request)
        return httpx.Response(200, json=metadata)

    return httpx.MockTransport(handle)


def test_triton_metadata_and_outputs() -> None:
    def infer(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["inputs"][0]
        assert (sent["name"], sent["datatype"], sent["shape"]) == ("image", "FP32", [2, 1, 64, 64])
        batch = sent["shape"][0]
        outputs = [
            {"name": "mask", "datatype": "UINT8", "shape": [batch, 1, 64, 64], "data": [1] * (batch * 64 * 64)},
            {"name": "label", "datatype": "BYTES", "shape": [batch], "data": ["nodule", "none"]},
        ]
        return httpx.Response(200, json={"model_name": "lesion-seg", "model_version": "1", "outputs": outputs})

    backend = KServeV2Backend("http://triton:8000/", "lesion-seg", sha256=WEIGHTS, transport=triton(infer=infer))
    assert backend.info.platform == "onnxruntime_onnx"
    assert backend.info.endpoint == "http://triton:8000/v2/models/lesion-seg/versions/1"
    result = backend.infer({"image": np.zeros((2, 1, 64, 64), np.float32)})
    assert result.outputs["mask"].dtype == np.uint8
    assert result.outputs["mask"].shape == (2, 1, 64, 64)
    assert result.outputs["label"].tolist() == ["nodule", "none"]


def test_triton_unknown_model_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="'liver-seg' on http://triton:8000 is not served: Request for unknown"):
        KServeV2Backend("http://triton:8000", "liver-seg", sha256=WEIGHTS, transport=triton())


def test_identity_of_the_weights_is_required() -> None:
    with pytest.raises(ConfigError, match="sha256"):
        KServeV2Backend("http://triton:8000", "lesion-seg", transport=triton())
    reported = {**METADATA, "parameters": {"sha256": "cd" * 32}}
    with pytest.raises(ModelError, match="serves weights cdcd"):
        KServeV2Backend("http://triton:8000", "lesion-seg", sha256=WEIGHTS, transport=triton(reported))
    several = {**METADATA, "versions": ["1", "2"]}
    with pytest.raises(ConfigError, match="pass version="):
        KServeV2Backend("http://triton:8000", "lesion-seg", sha256=WEIGHTS, transport=triton(several))


@pytest.mark.parametrize(
    ("status", "error"), [(503, TransientError), (429, TransientError), (500, ModelError), (400, ModelError)]
)
def test_http_status_to_error(status: int, error: type[Exception]) -> None:
    def infer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": "inference request batch-size must be <= 8"})

    backend = KServeV2Backend("http://triton:8000", "lesion-seg", sha256=WEIGHTS, transport=triton(infer=infer))
    with pytest.raises(error, match=f"'lesion-seg' version 1 .*HTTP {status}.*batch-size must be <= 8"):
        backend.infer({"image": np.zeros((9, 1, 64, 64), np.float32)})


def test_model_not_ready() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ready"):
            return httpx.Response(400, json={"error": "model is loading"})
        return httpx.Response(200, json=METADATA)

    with pytest.raises(NotReadyError, match="not ready"):
        KServeV2Backend("http://triton:8000", "lesion-seg", sha256=WEIGHTS, transport=httpx.MockTransport(handle))


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def test_refused_connection_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(TransientError, match="unreachable") as info:
        KServeV2Backend(f"http://127.0.0.1:{port}", "lesion-seg")
    assert info.value.retryable
    assert info.value.details["model"] == "lesion-seg"


def test_timeout_is_transient(silent_listener: int) -> None:
    with pytest.raises(TransientError, match=r"did not answer within 0.3 s"):
        KServeV2Backend(f"http://127.0.0.1:{silent_listener}", "lesion-seg", timeout_s=0.3)
