"""Password hashing, signed access tokens and API keys.

* Passwords and API-key secrets are stored as argon2id hashes only.
* People get short-lived HS256 access tokens from the OAuth2 password flow.
* Services and sites send an API key, ``mgk_<key id>_<secret>``: the id finds the row, the
  secret is checked against its argon2 hash. Argon2 is deliberately slow (tens of ms), so a
  verified key is remembered for a minute by the SHA-256 of the whole token; revocation
  therefore takes effect within that minute.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from medgate_common.errors import AuthenticationError

_hasher = PasswordHasher()
API_KEY_PREFIX = "mgk_"


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(stored_hash: str, secret: str) -> bool:
    if not stored_hash:
        return False
    try:
        return _hasher.verify(stored_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    username: str
    role: str
    via: str  # "token" or "api-key"
    client: str = ""


def issue_token(username: str, role: str, *, secret: str, ttl_seconds: int, issuer: str) -> tuple[str, int]:
    now = int(time.time())
    claims = {
        "sub": username,
        "role": role,
        "iat": now,
        "exp": now + ttl_seconds,
        "iss": issuer,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm="HS256"), ttl_seconds


def decode_token(token: str, *, secret: str, issuer: str) -> tuple[str, str]:
    """Return (username, role) of a valid token, else raise :class:`AuthenticationError`."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=issuer, options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("access token has expired") from None
    except jwt.InvalidTokenError:
        raise AuthenticationError("access token is not valid") from None
    return str(claims["sub"]), str(claims.get("role", ""))


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (key id, full token to hand out once, argon2 hash of its secret)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{API_KEY_PREFIX}{key_id}_{secret}", hash_secret(secret)


def split_api_key(token: str) -> tuple[str, str]:
    if not token.startswith(API_KEY_PREFIX):
        raise AuthenticationError("not an API key")
    key_id, sep, secret = token[len(API_KEY_PREFIX) :].partition("_")
    if not sep or not key_id or not secret:
        raise AuthenticationError("malformed API key")
    return key_id, secret


class VerifiedKeyCache:
    """Remembers recently verified API keys so argon2 runs once a minute, not per request."""

    def __init__(self, ttl_seconds: float = 60.0, max_entries: int = 1024) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, str, str, dt.datetime | None]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _fingerprint(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> tuple[str, str] | None:
        key = self._fingerprint(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            cached_at, username, role, expires = entry
            if time.monotonic() - cached_at > self.ttl or (expires is not None and expires <= dt.datetime.now(dt.UTC)):
                del self._entries[key]
                return None
            return username, role

    def put(self, token: str, username: str, role: str, expires: dt.datetime | None) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[self._fingerprint(token)] = (time.monotonic(), username, role, expires)
