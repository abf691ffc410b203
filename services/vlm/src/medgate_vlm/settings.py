"""Settings of the reasoning service (environment prefix ``MEDGATE_VLM_``), built once and
passed in. The HTTP API and the workflow worker read the same ones."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from medgate_common.settings import OptionalPath, ServiceSettings


class VlmSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDGATE_VLM_", extra="ignore", frozen=True)

    service_name: str = "vlm"
    weights: OptionalPath = Field(
        default=None,
        description="Folder holding vqa.onnx + vqa.json (grounded VQA) and, optionally, triage.onnx + "
        "triage.json (the FL coordinator's exported classifier); empty: the weights shipped in the package",
    )
    threads: int = Field(default=0, ge=0, description="ONNX Runtime intra-op threads; 0: one per core")
