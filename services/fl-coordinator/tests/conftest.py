"""Tests of the FL package: torch on one thread (the in-process sites are tiny, and the dev
machine's cores are shared; more threads only add contention)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of generated site data for every test here (files are keyed by every
    parameter that shapes them, so tests with other settings never share a file)."""
    return tmp_path_factory.mktemp("fl-cache")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throw-away database on the PostgreSQL server at 127.0.0.1:5432 (trust auth; another
    server through ``MEDGATE_TEST_PG``), dropped at the end of the session."""
    import os

    from medgate_common.postgres import postgres_database

    admin = os.environ.get("MEDGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    with postgres_database(admin, "medgate_fl") as url:
        yield url
