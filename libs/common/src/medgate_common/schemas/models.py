"""Identity of the model that produced a result."""

from __future__ import annotations

from pydantic import Field

from medgate_common.schemas.base import WireModel


class ModelInfo(WireModel):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    backend: str = Field(description="e.g. onnxruntime, triton")
    device: str = "cpu"
    endpoint: str | None = Field(
        default=None, description="URL of the model on a remote server (KServe v2, Triton); None when run in-process"
    )
    platform: str | None = Field(default=None, description="what the remote server says runs it, e.g. onnxruntime_onnx")
