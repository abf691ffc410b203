"""Gateway settings (environment prefix ``MEDGATE_GW_``), built once and passed in."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from medgate_common.settings import MedgateSettings


class GatewaySettings(MedgateSettings):
    model_config = SettingsConfigDict(env_prefix="MEDGATE_GW_", extra="ignore", frozen=True)

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means a SQLite file under <home>/gateway.db",
    )
    # DICOM listener
    ae_title: str = "MEDGATE"
    dicom_host: str = "0.0.0.0"  # noqa: S104 - a DICOM node listens for the modalities on the network
    dicom_port: int = 11112
    allowed_aes: list[str] = Field(
        default_factory=list,
        description="Calling AE titles allowed to store, each 'AE' or 'AE@host'; empty allows any",
    )
    max_associations: int = 16
    dicom_workers: int = Field(default=1, ge=1, le=64, description="Listener processes sharing the DICOM port")
    max_pdu_bytes: int = Field(default=0, description="Largest PDU we accept; 0 means no limit")
    # HTTP
    http_host: str = "127.0.0.1"
    http_port: int = 8042
    public_url: str = Field(default="", description="Base URL clients use (RetrieveURL); empty: from the request")
    max_upload_bytes: int = Field(default=2 << 30, description="Largest STOW request body")
    max_instance_bytes: int = Field(default=1 << 30, description="Largest single DICOM instance")
    # study completeness
    stable_seconds: float = Field(default=60.0, description="Quiet time after which a study is ready")
    stable_seconds_by_ae: dict[str, float] = Field(default_factory=dict, description="Per calling AE override")
    sweep_interval_seconds: float = 1.0
    # auth
    token_secret: str = Field(default="", description="HMAC key for access tokens; empty: per-home secret file")
    token_ttl_seconds: int = 1800
    token_issuer: str = "medgate"  # noqa: S105 - the JWT issuer name

    # workflow
    workflow: bool = Field(default=True, description="Start a workflow job for every ready study")
    routing_rules: Path | None = Field(default=None, description="YAML routing rules; empty: the packaged default")
    watchdog_interval_seconds: float = Field(default=2.0, gt=0, description="How often lost steps are looked for")
    step_running_timeout_seconds: float = Field(
        default=1200.0, gt=0, description="A step running longer than this is presumed lost with its worker"
    )
    step_queued_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A step queued longer than this is sent again, but only while its queue is empty",
    )
    step_max_dispatches: int = Field(default=5, ge=1, description="Sends of one step before the job fails")

    @field_validator("ae_title")
    @classmethod
    def _check_ae(cls, value: str) -> str:
        value = value.strip()
        if not 0 < len(value) <= 16 or "\\" in value:
            raise ValueError("AE title must be 1-16 characters without backslash")
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'gateway.db').resolve()}"

    def stable_seconds_for(self, calling_ae: str | None) -> float:
        if calling_ae and calling_ae in self.stable_seconds_by_ae:
            return self.stable_seconds_by_ae[calling_ae]
        return self.stable_seconds

    def resolved_token_secret(self) -> str:
        if self.token_secret:
            return self.token_secret
        path: Path = self.home / "gateway" / "token-secret"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_text().strip()
