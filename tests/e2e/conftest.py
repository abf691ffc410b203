"""Fixtures of the end-to-end tests that run the real model steps in the embedded stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from workflow_support import model_stack

from medgate_gateway.embedded import EmbeddedStack


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """The embedded stack with the real model steps, one per test module (a module may define its own)."""
    name = request.module.__name__.rpartition(".")[2]
    with model_stack(tmp_path_factory.mktemp(name) / "home") as embedded:
        yield embedded
