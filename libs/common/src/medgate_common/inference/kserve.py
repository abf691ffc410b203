"""KServe v2 (Open Inference Protocol) implementation of :class:`ModelBackend`.

Triton, MLServer and KServe's model servers answer the same REST protocol, so this one
client lets a service run its model on any of them instead of in-process. Tensors travel as
JSON: MLServer rejects the binary tensor extension (HTTP 422), and JSON numbers carry
float32 values exactly, because each one round-trips through a float64 repr.

Transport failures and overloaded servers (502/503/504/429) raise :class:`TransientError`,
which Celery retries; a server that refuses the request raises a permanent error naming the
model and quoting the server. Inputs are checked against the served metadata before
anything is sent.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from medgate_common.errors import (
    ConfigError,
    ModelError,
    ModelInputError,
    NotFoundError,
    NotReadyError,
    TransientError,
)
from medgate_common.inference.backend import Array, InferenceResult, TensorSpec, check_inputs
from medgate_common.schemas.models import ModelInfo

log = logging.getLogger(__name__)

# v2 datatype -> numpy dtype name. BYTES tensors are object arrays of str.
V2_TO_NUMPY = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
NUMPY_TO_V2 = {numpy: v2 for v2, numpy in V2_TO_NUMPY.items()}

_RETRY_LATER = {429, 502, 503, 504}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MESSAGE_LIMIT = 300


def spec_from_metadata(tensor: Mapping[str, Any]) -> TensorSpec:
    """A TensorSpec from one ``inputs``/``outputs`` entry of v2 model metadata (-1 = dynamic)."""
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if not isinstance(name, str) or not isinstance(shape, list):
        raise ModelError(f"malformed tensor metadata: {dict(tensor)}")
    dtype = V2_TO_NUMPY.get(str(datatype))
    if dtype is None:
        raise ModelError(f"unsupported v2 datatype {datatype} for tensor {name!r}")
    return TensorSpec(name, dtype, tuple(None if int(d) < 0 else int(d) for d in shape))


def _encode(spec: TensorSpec, array: Array) -> dict[str, object]:
    flat = array.ravel()
    data = [_text(spec.name, item) for item in flat] if spec.dtype == "object" else flat.tolist()
    return {"name": spec.name, "shape": list(array.shape), "datatype": NUMPY_TO_V2[spec.dtype], "data": data}


def _text(name: str, item: object) -> str:
    if isinstance(item, bytes):
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ModelInputError(f"input {name!r} holds bytes that are not UTF-8", input=name) from exc
    if not isinstance(item, str):
        raise ModelInputError(f"input {name!r} is a string tensor; got {type(item).__name__}", input=name)
    return item


def _decode(tensor: Mapping[str, Any]) -> Array:
    spec = spec_from_metadata(tensor)
    data = tensor.get("data")
    if not isinstance(data, list):
        raise ModelError(f"output {spec.name!r} has no data (binary outputs are not requested)")
    try:
        shape = tuple(int(d) for d in tensor["shape"])
        if spec.dtype == "object":
            array = np.empty(len(data), dtype=object)
            array[:] = [item.decode() if isinstance(item, bytes) else item for item in data]
            return array.reshape(shape)
        return np.asarray(data, dtype=spec.dtype).reshape(shape)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"output {spec.name!r} does not fit shape {list(shape)}: {exc}") from exc


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    message = (body.get("error") or body.get("detail")) if isinstance(body, dict) else None
    text = str(message) if message else response.text.strip() or response.reason_phrase
    return text[:_MESSAGE_LIMIT]


class KServeV2Backend:
    """One model on a KServe v2 server, e.g. ``KServeV2Backend("http://triton:8000", "lesion-seg")``.

    Construction asks the server for the model's metadata and readiness, so a missing model
    fails at start-up rather than on the first study. The version is pinned: given, or the
    only one the server lists. ``sha256`` names the served weights (as on the model card);
    a server may report it instead in its metadata ``parameters`` (our MLServer runtimes
    do), and if both are known they must agree. One ``httpx.Client`` (one connection pool)
    serves all calls; ``close()`` it, or use the backend as a context manager.
    """

    def __init__(
        self,
        url: str,
        model: str,
        *,
        version: str | None = None,
        sha256: str | None = None,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._server = str(httpx.URL(url).copy_with(userinfo=b"")).rstrip("/")
        self._model = model
        self._version = version
        self._timeout_s = timeout_s
        self._client = httpx.Client(base_url=self._server, timeout=timeout_s, transport=transport)
        try:
            self._info, self._inputs, self._outputs = self._load(sha256)
        except BaseException:
            self._client.close()
            raise
        log.info("remote model ready", extra={"model": model, "version": self._info.version, "server": self._server})

    def _path(self) -> str:
        path = f"/v2/models/{quote(self._model, safe='')}"
        return f"{path}/versions/{quote(self._version, safe='')}" if self._version else path

    def _load(self, sha256: str | None) -> tuple[ModelInfo, tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        meta = self._call("GET", self._path())
        if self._version is None:
            versions = [str(v) for v in meta.get("versions") or []]
            if len(versions) != 1:
                raise ConfigError(
                    f"model {self._model!r} on {self._server} lists versions {versions}; pass version=",
                    model=self._model,
                )
            self._version = versions[0]
        inputs = tuple(spec_from_metadata(t) for t in meta.get("inputs") or [])
        outputs = tuple(spec_from_metadata(t) for t in meta.get("outputs") or [])
        if not inputs or not outputs:
            raise ModelError(
                f"{self._where()} declares no inputs or outputs; declare them in the server's model config",
                model=self._model,
            )
        if not self.model_ready():
            raise NotReadyError(f"{self._where()} is not ready", model=self._model, server=self._server)
        parameters = meta.get("parameters")
        reported = parameters.get("sha256") if isinstance(parameters, dict) else None
        if sha256 and reported and sha256 != reported:
            raise ModelError(
                f"{self._where()} serves weights {reported}, not the expected {sha256}",
                model=self._model,
                expected=sha256,
                served=reported,
            )
        digest = sha256 or reported
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ConfigError(
                f"{self._where()} does not report the sha256 of its weights; pass sha256= from the model card",
                model=self._model,
            )
        platform = meta.get("platform")
        info = ModelInfo(
            name=self._model,
            version=self._version,
            sha256=digest,
            backend="kserve-v2",
            device="remote",
            endpoint=self._server + self._path(),
            platform=str(platform) if platform else None,
        )
        return info, inputs, outputs

    def _where(self) -> str:
        version = f" version {self._version}" if self._version else ""
        return f"model {self._model!r}{version} on {self._server}"

    def _send(self, method: str, path: str, body: dict[str, object] | None = None) -> httpx.Response:
        details = {"model": self._model, "server": self._server}
        try:
            return self._client.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{self._where()} did not answer within {self._timeout_s} s", **details) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise TransientError(f"{self._where()} is unreachable: {exc}", **details) from exc
        except httpx.HTTPError as exc:
            raise ConfigError(f"cannot call {self._where()}: {exc}", **details) from exc

    def _call(self, method: str, path: str, body: dict[str, object] | None = None) -> dict[str, Any]:
        response = self._send(method, path, body)
        status = response.status_code
        if status == 200:
            try:
                reply = response.json()
            except ValueError as exc:
                raise ModelError(f"{self._where()} answered with something that is not JSON") from exc
            if not isinstance(reply, dict):
                raise ModelError(f"{self._where()} answered with unexpected JSON")
            return reply
        message = _server_message(response)
        details = {"model": self._model, "server": self._server, "status": status, "server_message": message}
        # Triton answers 400 "Request for unknown model", MLServer and KServe answer 404.
        if status == 404 or (status == 400 and "unknown model" in message.lower()):
            raise NotFoundError(f"{self._where()} is not served: {message}", **details)
        if status in _RETRY_LATER:
            raise TransientError(f"{self._where()} is busy or unavailable (HTTP {status}): {message}", **details)
        if status < 500:
            raise ModelError(f"{self._where()} rejected the request (HTTP {status}): {message}", **details)
        raise ModelError(f"{self._where()} failed (HTTP {status}): {message}", **details)

    def _probe(self, path: str) -> bool:
        try:
            return self._client.get(path).status_code == 200
        except httpx.HTTPError:
            return False

    def server_live(self) -> bool:
        return self._probe("/v2/health/live")

    def server_ready(self) -> bool:
        return self._probe("/v2/health/ready")

    def model_ready(self) -> bool:
        return self._probe(f"{self._path()}/ready")

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
        body: dict[str, object] = {"inputs": [_encode(spec, feed[spec.name]) for spec in self._inputs]}
        started = time.perf_counter()
        reply = self._call("POST", f"{self._path()}/infer", body)
        latency = (time.perf_counter() - started) * 1000.0
        received = {t.get("name"): t for t in reply.get("outputs") or [] if isinstance(t, dict)}
        missing = [spec.name for spec in self._outputs if spec.name not in received]
        if missing:
            raise ModelError(f"{self._where()} did not return outputs {missing}", model=self._model)
        outputs = {spec.name: _decode(received[spec.name]) for spec in self._outputs}
        return InferenceResult(outputs=outputs, model=self._info, latency_ms=latency)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KServeV2Backend:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
