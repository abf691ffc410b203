"""The schema comes from Alembic migrations, identical to the ORM models, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from medgate_common.errors import ConfigError
from medgate_gateway.db.engine import Database
from medgate_gateway.db.migrate import downgrade, migrate
from medgate_gateway.db.orm import Base

pytestmark = pytest.mark.integration
TABLES = {"patients", "studies", "series", "instances", "jobs", "results", "users", "api_keys", "audit_log"}


def engine_for(url: str):  # type: ignore[no-untyped-def]
    return Database(url).engine


def test_migrations_build_the_orm_schema(database_url: str) -> None:
    migrate(database_url)
    migrate(database_url)  # idempotent
    engine = engine_for(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_downgrade_to_nothing_and_back(database_url: str) -> None:
    migrate(database_url)
    downgrade(database_url, "base")
    engine = engine_for(database_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate(database_url)
    engine = engine_for(database_url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_unsupported_database_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported database"):
        Database("mysql://localhost/x")


def test_sqlite_is_configured_for_concurrent_writers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    db.dispose()
    _ = create_engine  # the plain engine is what Alembic's env uses
