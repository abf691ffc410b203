"""FL runs and their per-round metrics in the database (tables ``fl_runs``, ``fl_rounds``).

The ServerApp writes a row per finished round when the run config names a database
(``metrics-db``); the control API reads them back. A run is keyed by Flower's run id
(an unsigned 64-bit number, kept as its decimal text: it does not fit a signed BIGINT).
The schema has its own Alembic history (version table ``alembic_version_fl``), so it can
share a database with the gateway's tables without touching them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Integer, MetaData, String, create_engine, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version_fl"
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: Run-config keys never stored or shown: the database URL may carry a password.
PRIVATE_KEYS = frozenset({"metrics-db"})


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in PRIVATE_KEYS}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class FlRun(Base):
    __tablename__ = "fl_runs"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    out_dir: Mapped[str] = mapped_column(String(1024), default="")
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FlRound(Base):
    __tablename__ = "fl_rounds"

    run_id: Mapped[str] = mapped_column(ForeignKey("fl_runs.id", ondelete="CASCADE"), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    macro_f1: Mapped[float | None] = mapped_column(Float, nullable=True)
    selection_precision: Mapped[float | None] = mapped_column(Float, nullable=True)
    selection_recall: Mapped[float | None] = mapped_column(Float, nullable=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)
    replies: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class RoundMetrics:
    """One finished round: held-out metrics of the new global model, the sites' selection
    quality (FedGSCA and local-GMM only), serialised bytes both ways, wall seconds, and the
    valid train replies the round was aggregated from."""

    round: int
    bytes: int
    seconds: float
    replies: int
    accuracy: float | None = None
    macro_f1: float | None = None
    selection_precision: float | None = None
    selection_recall: float | None = None


def engine_url(url: str) -> URL:
    """``postgresql://`` means psycopg 3 here (the only PostgreSQL driver installed)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg") if parsed.drivername == "postgresql" else parsed


def migrate(url: str, revision: str = "head") -> None:
    """Bring the FL tables at ``url`` to ``revision`` (idempotent)."""
    from alembic import command
    from alembic.config import Config

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine_url(url).render_as_string(hide_password=False).replace("%", "%%"))
    command.upgrade(cfg, revision)


class RunStore:
    """Reads and writes FL runs; one per process, made once and passed in."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(engine_url(url), pool_pre_ping=True)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def ensure_run(self, run_id: int, config: dict[str, Any], out_dir: str, status: str) -> None:
        """Create the run's row, or fill in config and out-dir if the ServerApp made it first
        (it may start writing rounds before the submitter has recorded the run). Private
        keys of ``config`` are dropped."""
        config = public_config(config)
        try:
            with self._write() as s:
                s.add(FlRun(id=str(run_id), status=status, config=config, out_dir=out_dir))
        except IntegrityError:
            with self._write() as s:
                row = s.get(FlRun, str(run_id))
                assert row is not None
                row.config, row.out_dir = config or row.config, out_dir or row.out_dir
                row.updated_at = utcnow()

    def set_status(self, run_id: int, status: str, summary: dict[str, Any] | None = None) -> None:
        with self._write() as s:
            row = s.get(FlRun, str(run_id))
            if row is None:
                raise KeyError(run_id)
            row.status, row.updated_at = status, utcnow()
            if summary is not None:
                row.summary = summary

    def add_round(self, run_id: int, metrics: RoundMetrics) -> None:
        with self._write() as s:
            s.merge(FlRound(run_id=str(run_id), **asdict(metrics)))

    def run(self, run_id: int) -> FlRun | None:
        with Session(self.engine) as s:
            return s.get(FlRun, str(run_id))

    def runs(self, limit: int = 100) -> list[FlRun]:
        with Session(self.engine) as s:
            return list(s.scalars(select(FlRun).order_by(FlRun.created_at.desc()).limit(limit)))

    def rounds(self, run_id: int) -> list[FlRound]:
        with Session(self.engine) as s:
            return list(s.scalars(select(FlRound).where(FlRound.run_id == str(run_id)).order_by(FlRound.round)))

    def dispose(self) -> None:
        self.engine.dispose()
