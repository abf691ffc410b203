"""Throw-away PostgreSQL databases for benchmarks and tests (psycopg, imported on use)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def postgres_database(admin_url: str, prefix: str = "mg") -> Iterator[str]:
    """A new database on the server of ``admin_url``, yielded as its URL and dropped
    afterwards (connections forced closed), whatever happens in between."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(5)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
