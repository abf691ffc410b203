"""Fixtures shared by every package's tests."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from medgate_common.synth import SynthStudy, generate_study, write_dataset

# Helper modules shared by one package's tests (named <package>_fixtures.py), and by every
# package's (tests/shared_fixtures.py). Appended, not prepended, so that
# ``from conftest import ...`` still finds this file.
for _helpers in ("gateway/tests", "services/iqa/tests", "services/segmentation/tests", "tests"):
    sys.path.append(str(Path(__file__).parent / _helpers))


@pytest.fixture(scope="session")
def small_ct(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthStudy, Path]:
    """A 24-slice 128x128 CT study with lesions, written once per session."""
    study = generate_study("CT", seed=11, index=0, slices=24, matrix=128, lesion_count=3)
    out = tmp_path_factory.mktemp("small_ct")
    write_dataset(study, out)
    return study, out


@pytest.fixture(scope="session")
def small_mr(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthStudy, Path]:
    study = generate_study("MR", seed=5, index=1, slices=24, matrix=128, lesion_count=2)
    out = tmp_path_factory.mktemp("small_mr")
    write_dataset(study, out)
    return study, out


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    """An HTTP client of the API the test module serves (its ``server`` fixture: a base URL)."""
    with httpx.Client(base_url=server, timeout=60) as http:
        yield http


def require_tool(name: str) -> str:
    """Path of a system tool the test needs; scripts/setup.sh installs them, so absence is a failure."""
    path = shutil.which(name, path="/usr/bin:/usr/sbin:/usr/local/bin")
    if path is None:
        pytest.fail(f"{name} is not installed; run scripts/setup.sh")
    return path
