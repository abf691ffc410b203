"""User accounts and API keys in the database."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from medgate_common.errors import AuthenticationError, ConflictError, InputError
from medgate_gateway.auth.credentials import (
    VerifiedKeyCache,
    hash_secret,
    new_api_key,
    split_api_key,
    verify_secret,
)
from medgate_gateway.auth.roles import PEOPLE, Role
from medgate_gateway.db.engine import Database
from medgate_gateway.db.orm import ApiKey, User, utcnow

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# A dummy hash to verify against when the user does not exist, so that timing does not
# tell an attacker which usernames are real.
_DUMMY_HASH = hash_secret("medgate-no-such-user")


def create_user(db: Database, username: str, role: str, password: str = "", full_name: str = "") -> User:
    if not _USERNAME.fullmatch(username):
        raise InputError("username must be 2-64 characters: lower-case letters, digits, '.', '_' or '-'")
    try:
        parsed_role = Role(role)
    except ValueError:
        raise InputError(f"unknown role {role!r}", roles=[r.value for r in Role]) from None
    if parsed_role in PEOPLE and len(password) < 12:
        raise InputError("a person's password must have at least 12 characters")
    user = User(
        username=username,
        role=parsed_role.value,
        full_name=full_name,
        password_hash=hash_secret(password) if password else "",
    )
    try:
        with db.write() as session:
            session.add(user)
    except IntegrityError:
        raise ConflictError("a user with this name already exists") from None
    return user


def authenticate_password(db: Database, username: str, password: str) -> User:
    with db.read() as session:
        user = session.scalar(select(User).where(User.username == username))
    if user is None:
        verify_secret(_DUMMY_HASH, password)
        raise AuthenticationError("unknown user or wrong password")
    if not user.active or not verify_secret(user.password_hash, password):
        raise AuthenticationError("unknown user or wrong password")
    return user


def create_api_key(db: Database, username: str, name: str = "", expires_in_days: int | None = None) -> str:
    """Create a key for ``username`` and return the token; only its hash is kept."""
    key_id, token, secret_hash = new_api_key()
    expires = utcnow() + dt.timedelta(days=expires_in_days) if expires_in_days else None
    with db.write() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise InputError("no such user")
        session.add(ApiKey(id=key_id, user_fk=user.id, name=name, secret_hash=secret_hash, expires_at=expires))
    return token


def resolve_api_key(db: Database, token: str, cache: VerifiedKeyCache) -> tuple[str, str]:
    """(username, role) of a valid, unexpired, unrevoked key of an active user."""
    cached = cache.get(token)
    if cached is not None:
        return cached
    key_id, secret = split_api_key(token)
    with db.read() as session:
        row = session.execute(
            select(ApiKey.secret_hash, ApiKey.expires_at, ApiKey.revoked_at, User.username, User.role, User.active)
            .join(User, ApiKey.user_fk == User.id)
            .where(ApiKey.id == key_id)
        ).first()
    if row is None:
        verify_secret(_DUMMY_HASH, secret)
        raise AuthenticationError("API key is not valid")
    secret_hash, expires, revoked, username, role, active = row
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    if not verify_secret(secret_hash, secret) or revoked is not None or not active:
        raise AuthenticationError("API key is not valid")
    if expires is not None and expires <= utcnow():
        raise AuthenticationError("API key has expired")
    cache.put(token, username, role, expires)
    return username, role


def revoke_api_key(db: Database, key_id: str) -> None:
    with db.write() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise InputError("no such API key")
        key.revoked_at = utcnow()
