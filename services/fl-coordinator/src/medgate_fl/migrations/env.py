"""Alembic environment of the FL tables: their own version table beside any other schema."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from medgate_fl.rundb import VERSION_TABLE, Base

url = context.config.get_main_option("sqlalchemy.url") or ""


def run_migrations_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
