"""Settings of the image-quality service (environment prefix ``MEDGATE_IQA_``), built once
and passed in. The HTTP API and the workflow worker read the same ones."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from medgate_common.settings import OptionalPath, ServiceSettings


class IqaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDGATE_IQA_", extra="ignore", frozen=True)

    service_name: str = "iqa"
    weights: OptionalPath = Field(
        default=None,
        description="Folder holding quality.onnx and its card quality.json; empty: the weights shipped in the package",
    )
    policy_file: OptionalPath = Field(
        default=None,
        description="JSON or YAML GatePolicy overriding the default thresholds; fields left out keep their defaults",
    )
