"""Settings of the FL coordinator's control API (environment prefix ``MEDGATE_FL_``),
built once and passed in."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from medgate_common.settings import MedgateSettings


class FlSettings(MedgateSettings):
    model_config = SettingsConfigDict(env_prefix="MEDGATE_FL_", extra="ignore", frozen=True)

    service_name: str = "fl"
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of runs and per-round metrics (tables fl_runs, fl_rounds); "
        "empty means a SQLite file under <home>/fl.db",
    )
    runs_dir: Path = Field(
        default_factory=lambda: Path.home() / ".medgate" / "fl" / "runs",
        description="One folder per submitted run: the Flower app and the run's out-dir",
    )
    flwr_home: Path = Field(
        default_factory=lambda: Path.home() / ".medgate" / "fl" / "flwr-home",
        description="FLWR_HOME whose config.toml names the SuperLink connection",
    )
    superlink_name: str = Field(default="medgate", description="The connection's name in config.toml")
    cache_dir: Path | None = Field(default=None, description="Held-out data cache the ServerApp may use")

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'fl.db').resolve()}"
