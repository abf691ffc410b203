"""Settings of the image-quality service (environment prefix ``MEDGATE_IQA_``), built once
and passed in. The HTTP API and the workflow worker read the same ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from medgate_common.settings import ServiceSettings


class IqaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDGATE_IQA_", extra="ignore", frozen=True)

    service_name: str = "iqa"
    weights: Path | None = Field(
        default=None,
        description="Folder holding quality.onnx and its card quality.json; empty: the weights shipped in the package",
    )
    policy_file: Path | None = Field(
        default=None,
        description="JSON or YAML GatePolicy overriding the default thresholds; fields left out keep their defaults",
    )

    @field_validator("weights", "policy_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value
