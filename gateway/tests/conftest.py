"""Gateway fixtures: every database test runs twice, on SQLite and on the PostgreSQL server.

PostgreSQL is the server on 127.0.0.1:5432 (trust auth); each test session creates its own
throw-away database there and drops it at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_fixtures import PASSWORD, Credentials, serve_in_thread
from workflow_support import PG_ADMIN, RecordingDispatcher

from medgate_common.postgres import postgres_database
from medgate_gateway.auth.credentials import hash_secret, issue_token, new_api_key, split_api_key
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import ApiKey, User
from medgate_gateway.settings import GatewaySettings


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session."""
    with postgres_database(PG_ADMIN, "medgate_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    server = request.getfixturevalue("pg_server_url")
    # one schema-free database per test: create from the session database's server
    with postgres_database(server.rsplit("/", 1)[0] + "/postgres") as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> GatewaySettings:
    return GatewaySettings(
        home=tmp_path / "home",
        database_url=database_url,
        dicom_host="127.0.0.1",
        dicom_port=0,
        stable_seconds=60,
        token_secret="test-secret-" + "x" * 32,
        # Ingest, DICOMweb and auth tests do not start jobs; the workflow tests turn it on.
        workflow=False,
    )


@pytest.fixture
def context(settings: GatewaySettings) -> Iterator[GatewayContext]:
    ctx = GatewayContext.build(settings)
    yield ctx
    ctx.close()


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def wf(settings: GatewaySettings, dispatcher: RecordingDispatcher) -> Iterator[GatewayContext]:
    """A context with the workflow engine on, sending steps to ``dispatcher``."""
    ctx = GatewayContext.build(settings.model_copy(update={"workflow": True}), dispatcher=dispatcher)
    yield ctx
    ctx.close()


@pytest.fixture(scope="session")
def _secrets() -> dict[str, str]:
    """argon2 hashes made once per session: hashing is slow on purpose, tests need not be."""
    _key_id, service_key, service_hash = new_api_key()
    _key_id2, site_key, site_hash = new_api_key()
    return {
        "password": hash_secret(PASSWORD),
        "service_key": service_key,
        "service_hash": service_hash,
        "site_key": site_key,
        "site_hash": site_hash,
    }


@pytest.fixture
def credentials(context: GatewayContext, live_server: str, _secrets: dict[str, str]) -> Credentials:
    """One user per role. Logging in is tested in test_auth; here tokens are issued directly."""
    users = {"admin": "admin", "rad": "radiologist", "tech": "technologist", "router": "service", "site-a": "site"}
    with context.db.write() as session:
        rows = {
            name: User(
                username=name,
                role=role,
                password_hash=_secrets["password"] if role in {"admin", "radiologist", "technologist"} else "",
            )
            for name, role in users.items()
        }
        session.add_all(rows.values())
        session.flush()
        for user, kind in (("router", "service"), ("site-a", "site")):
            key_id, _secret = split_api_key(_secrets[f"{kind}_key"])
            session.add(ApiKey(id=key_id, user_fk=rows[user].id, secret_hash=_secrets[f"{kind}_hash"]))

    def bearer(username: str) -> dict[str, str]:
        token, _ttl = issue_token(
            username, users[username], secret=context.token_secret, ttl_seconds=600, issuer="medgate"
        )
        return {"Authorization": f"Bearer {token}"}

    return Credentials(
        admin=bearer("admin"),
        radiologist=bearer("rad"),
        technologist=bearer("tech"),
        service={"Authorization": f"Bearer {_secrets['service_key']}"},
        site={"Authorization": f"Bearer {_secrets['site_key']}"},
        service_key=_secrets["service_key"],
    )


@pytest.fixture
def live_server(context: GatewayContext) -> Iterator[str]:
    """The gateway app served by uvicorn on a free loopback port, in a thread."""
    with serve_in_thread(context) as url:
        yield url
