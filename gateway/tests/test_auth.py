"""People log in with passwords, services with API keys; roles gate routes; all is audited."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from gateway_fixtures import PASSWORD, Credentials
from sqlalchemy import select, update

from medgate_common.errors import AuthenticationError, ConflictError, InputError
from medgate_gateway.auth.credentials import VerifiedKeyCache, split_api_key
from medgate_gateway.auth.roles import Permission, Role, allows
from medgate_gateway.auth.users import create_api_key, create_user, resolve_api_key, revoke_api_key
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import ApiKey, AuditEvent, User

pytestmark = pytest.mark.integration


def test_password_login_and_me(live_server: str, credentials: Credentials) -> None:
    login = httpx.post(live_server + "/api/v1/auth/token", data={"username": "rad", "password": PASSWORD})
    assert login.status_code == 200
    body = login.json()
    assert (body["token_type"], body["role"], body["expires_in"]) == ("bearer", "radiologist", 1800)
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = httpx.get(live_server + "/api/v1/auth/me", headers=headers).json()
    assert me == {"username": "rad", "role": "radiologist", "via": "token"}
    me = httpx.get(live_server + "/api/v1/auth/me", headers=credentials.service).json()
    assert me == {"username": "router", "role": "service", "via": "api-key"}


@pytest.mark.parametrize(("username", "password"), [("rad", "wrong password!!"), ("nobody", PASSWORD), ("router", "")])
def test_bad_logins(live_server: str, credentials: Credentials, username: str, password: str) -> None:
    resp = httpx.post(live_server + "/api/v1/auth/token", data={"username": username, "password": password})
    assert resp.status_code in (401, 422)
    if resp.status_code == 401:
        assert resp.json()["code"] == "unauthenticated"
        assert resp.headers["www-authenticate"] == "Bearer"


def test_passwords_and_keys_are_stored_as_argon2_only(context: GatewayContext, credentials: Credentials) -> None:
    with context.db.read() as session:
        hashes = list(session.scalars(select(User.password_hash).where(User.username == "rad")))
        key_hashes = list(session.scalars(select(ApiKey.secret_hash)))
    assert hashes[0].startswith("$argon2id$") and PASSWORD not in hashes[0]
    _key_id, secret = split_api_key(credentials.service_key)
    assert all(h.startswith("$argon2id$") and secret not in h for h in key_hashes)


def test_user_validation(context: GatewayContext) -> None:
    with pytest.raises(InputError, match="12 characters"):
        create_user(context.db, "shortpw", "radiologist", "short")
    with pytest.raises(InputError, match="unknown role"):
        create_user(context.db, "bad-role", "superuser", PASSWORD)
    with pytest.raises(InputError, match="username"):
        create_user(context.db, "../root", "admin", PASSWORD)
    create_user(context.db, "dup", "admin", PASSWORD)
    with pytest.raises(ConflictError):
        create_user(context.db, "dup", "admin", PASSWORD)


def test_api_key_expiry_and_revocation(context: GatewayContext) -> None:
    create_user(context.db, "svc", "service")
    cache = VerifiedKeyCache(ttl_seconds=0)  # no caching: every call checks the database
    token = create_api_key(context.db, "svc", expires_in_days=1)
    assert resolve_api_key(context.db, token, cache) == ("svc", "service")
    key_id, _ = split_api_key(token)
    with context.db.write() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    with pytest.raises(AuthenticationError, match="expired"):
        resolve_api_key(context.db, token, cache)
    other = create_api_key(context.db, "svc")
    revoke_api_key(context.db, split_api_key(other)[0])
    with pytest.raises(AuthenticationError):
        resolve_api_key(context.db, other, cache)
    with pytest.raises(AuthenticationError):
        resolve_api_key(context.db, token[:-3] + "abc", cache)  # wrong secret
    with pytest.raises(AuthenticationError):
        resolve_api_key(context.db, "mgk_nosuchkey_secret", cache)


def test_admin_routes(live_server: str, credentials: Credentials, context: GatewayContext) -> None:
    new = {"username": "newrad", "role": "radiologist", "password": PASSWORD}
    assert httpx.post(live_server + "/api/v1/users", json=new, headers=credentials.radiologist).status_code == 403
    resp = httpx.post(live_server + "/api/v1/users", json=new, headers=credentials.admin)
    assert resp.status_code == 201 and resp.json()["role"] == "radiologist"
    assert httpx.post(live_server + "/api/v1/users", json=new, headers=credentials.admin).status_code == 409
    svc = httpx.post(
        live_server + "/api/v1/users", json={"username": "svc2", "role": "service"}, headers=credentials.admin
    )
    assert svc.status_code == 201
    key = httpx.post(
        live_server + "/api/v1/users/svc2/api-keys", json={"name": "ci"}, headers=credentials.admin
    ).json()["token"]
    me = httpx.get(live_server + "/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"}).json()
    assert me["username"] == "svc2"
    audit = httpx.get(live_server + "/api/v1/audit", params={"actor": "admin"}, headers=credentials.admin).json()
    assert [row["action"] for row in audit][:3] == ["apikey.create", "user.create", "user.create"]
    assert all(row["client"] == "127.0.0.1" for row in audit)
    assert httpx.get(live_server + "/api/v1/audit", headers=credentials.technologist).status_code == 403
    with context.db.read() as session:
        denied = session.execute(
            select(AuditEvent.actor, AuditEvent.outcome, AuditEvent.detail).where(AuditEvent.action == "access.denied")
        ).all()
    assert [(a, o, d["permission"]) for a, o, d in denied] == [
        ("rad", "denied", "users:manage"),
        ("tech", "denied", "audit:read"),
    ]


def test_reads_of_patient_data_are_audited(live_server: str, credentials: Credentials, context: GatewayContext) -> None:
    assert httpx.get(live_server + "/api/v1/studies", headers=credentials.radiologist).status_code == 200
    assert httpx.get(live_server + "/api/v1/studies/1.2.3", headers=credentials.radiologist).status_code == 404
    with context.db.read() as session:
        rows = session.execute(select(AuditEvent.actor, AuditEvent.action, AuditEvent.role)).all()
    assert ("rad", "study.list", "radiologist") in rows


def test_role_permissions() -> None:
    assert allows("radiologist", Permission.DICOM_READ)
    assert not allows("radiologist", Permission.DICOM_WRITE)
    assert not allows("site", Permission.DICOM_READ)
    assert allows("admin", Permission.AUDIT_READ)
    assert not allows("nonsense", Permission.DICOM_READ)
    assert {r.value for r in Role} == {"radiologist", "technologist", "admin", "service", "site"}
