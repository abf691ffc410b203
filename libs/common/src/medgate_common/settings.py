"""Typed settings shared by every package.

Each package subclasses :class:`MedgateSettings` with its own ``env_prefix``
(``MEDGATE_GW_``, ``MEDGATE_IQA_``, ...). Settings are built once at start-up and passed in;
tests construct their own instance instead of touching ``os.environ``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def _empty_is_unset(value: object) -> object:
    return None if value == "" else value


OptionalPath = Annotated[Path | None, BeforeValidator(_empty_is_unset)]
"""A path setting that an empty environment variable (``MEDGATE_SEG_WEIGHTS=``) leaves unset."""


def default_home() -> Path:
    return Path.home() / ".medgate"


class MedgateSettings(BaseSettings):
    """Settings every MedGate process understands (environment prefix ``MEDGATE_``)."""

    model_config = SettingsConfigDict(env_prefix="MEDGATE_", extra="ignore", frozen=True, populate_by_name=True)

    # Shared by every package: always read from MEDGATE_*, whatever a subclass's prefix is.
    home: Path = Field(
        default_factory=default_home,
        description="Working directory for data and state",
        validation_alias=AliasChoices("MEDGATE_HOME"),
    )
    storage_uri: str = Field(
        default="",
        description="Artifact store; empty means file://<home>/storage",
        validation_alias=AliasChoices("MEDGATE_STORAGE_URI"),
    )
    log_level: LogLevel = Field(default="INFO", validation_alias=AliasChoices("MEDGATE_LOG_LEVEL"))
    log_json: bool = Field(default=True, validation_alias=AliasChoices("MEDGATE_LOG_JSON"))
    broker_url: str = Field(
        default="",
        description="Celery broker; empty means the embedded one, mgsqla+sqlite:///<home>/broker.sqlite",
        validation_alias=AliasChoices("MEDGATE_BROKER_URL"),
    )
    broker_visibility_timeout: float = Field(
        default=3600.0,
        gt=0,
        description="Redis: an unacknowledged task goes back to its queue after this many seconds",
        validation_alias=AliasChoices("MEDGATE_BROKER_VISIBILITY_TIMEOUT"),
    )
    service_name: str = "medgate"

    def resolved_storage_uri(self) -> str:
        if self.storage_uri:
            return self.storage_uri
        return (self.home / "storage").resolve().as_uri()

    def resolved_broker_url(self) -> str:
        if self.broker_url:
            return self.broker_url
        return "mgsqla+sqlite:///" + str((self.home / "broker.sqlite").resolve())


class ServiceSettings(MedgateSettings):
    """What every model service (HTTP API and workflow worker) adds: how its ONNX model runs
    and how large an upload its API takes. Subclasses set their own ``env_prefix``."""

    providers: tuple[str, ...] = Field(
        default=("CPUExecutionProvider",),
        min_length=1,
        description="ONNX Runtime execution providers, in order of preference (JSON list in the environment)",
    )
    max_upload_bytes: int = Field(
        default=256 << 20, gt=0, description="Largest request body of the HTTP API (and largest unzipped upload)"
    )
    max_instances: int = Field(default=2000, ge=1, description="Most DICOM files in one HTTP request")
    max_concurrent: int = Field(
        default=2, ge=1, description="Model runs the HTTP API does at once; more requests wait their turn"
    )
