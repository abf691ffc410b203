"""Settings of the image-quality service (environment prefix ``MEDGATE_IQA_``), built once
and passed in. The HTTP API and the workflow worker read the same ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from medgate_common.settings import MedgateSettings


class IqaSettings(MedgateSettings):
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
    providers: tuple[str, ...] = Field(
        default=("CPUExecutionProvider",),
        min_length=1,
        description="ONNX Runtime execution providers, in order of preference (JSON list in the environment)",
    )
    max_upload_bytes: int = Field(default=256 << 20, gt=0, description="Largest request body of the HTTP API")
    max_instances: int = Field(default=2000, ge=1, description="Most DICOM files in one HTTP request")
    max_concurrent: int = Field(
        default=2, ge=1, description="Assessments the HTTP API runs at once; more requests wait their turn"
    )

    @field_validator("weights", "policy_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value
