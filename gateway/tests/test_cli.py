"""``medgate gateway`` commands as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from medgate_gateway.auth.credentials import VerifiedKeyCache
from medgate_gateway.auth.users import resolve_api_key
from medgate_gateway.db.engine import Database

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
MEDGATE = str(Path(sys.executable).with_name("medgate"))


def run(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDGATE, *args],
        env={**os.environ, "MEDGATE_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_and_bootstrap_users(tmp_path: Path) -> None:
    assert run(["gateway", "migrate"], tmp_path).returncode == 0
    admin = run(
        ["gateway", "user", "add", "chief", "--role", "admin", "--full-name", "Dr Chief"],
        tmp_path,
        MEDGATE_NEW_PASSWORD="a long enough password",
    )
    assert admin.returncode == 0, admin.stderr
    assert "created admin chief" in admin.stdout and "API key" not in admin.stdout
    svc = run(["gateway", "user", "add", "orthanc-router", "--role", "service"], tmp_path)
    assert svc.returncode == 0, svc.stderr
    token = svc.stdout.strip().splitlines()[-1].split(": ", 1)[1]
    db = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    assert resolve_api_key(db, token, VerifiedKeyCache()) == ("orthanc-router", "service")
    db.dispose()
    dup = run(
        ["gateway", "user", "add", "chief", "--role", "admin"], tmp_path, MEDGATE_NEW_PASSWORD="a long enough password"
    )
    assert dup.returncode != 0
    assert "already exists" in dup.stderr
