"""Artifact storage addressed by URI.

Keys are relative POSIX paths made of a restricted alphabet, so that a key built from tag
values can never escape the store's root. Writes are atomic: the bytes go to a temporary
file in the target directory, are fsync'ed, then renamed into place, so a reader (or an
indexer) never sees half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from medgate_common.errors import ConfigError, NotFoundError, StorageError, UnsafePathError

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_key(key: str) -> str:
    """Return ``key`` if every segment is safe, else raise :class:`UnsafePathError`."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise UnsafePathError("storage key must be a relative path", key_length=len(key))
    for segment in key.split("/"):
        if segment in {"", ".", ".."} or not _SEGMENT.fullmatch(segment):
            raise UnsafePathError("storage key has an unsafe segment", segment=segment[:32])
    return key


class Storage(Protocol):
    """What services need from an artifact store."""

    def put_bytes(self, key: str, data: bytes, *, overwrite: bool = True) -> str:
        """Store ``data`` under ``key`` atomically and return its URI.

        With ``overwrite=False`` an object already under ``key`` is kept as it is.
        """
        ...

    def get_bytes(self, uri: str) -> bytes: ...

    def exists(self, uri: str) -> bool: ...

    def uri_for(self, key: str) -> str: ...


class LocalStorage:
    """A directory on the local file system (``file://`` URIs)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def uri_for(self, key: str) -> str:
        return (self.root / validate_key(key)).as_uri()

    def path_for(self, uri_or_key: str) -> Path:
        if uri_or_key.startswith("file://"):
            path = Path(unquote(urlparse(uri_or_key).path)).resolve()
            if not path.is_relative_to(self.root):
                raise UnsafePathError("URI is outside this store")
            validate_key(path.relative_to(self.root).as_posix())
            return path
        return self.root / validate_key(uri_or_key)

    def put_bytes(self, key: str, data: bytes, *, overwrite: bool = True) -> str:
        target = self.path_for(key)
        if not overwrite and target.is_file():
            return target.as_uri()  # content-addressed keys: the same bytes are already there
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if overwrite:
                Path(tmp).replace(target)
            else:
                # link, unlike rename, refuses to replace what a concurrent writer put there
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, target)
                Path(tmp).unlink()
            _fsync_dir(target.parent)  # make the rename itself durable
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"could not write object: {exc.strerror}") from exc
        return target.as_uri()

    def get_bytes(self, uri: str) -> bytes:
        path = self.path_for(uri)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError("object not found in storage") from exc

    def exists(self, uri: str) -> bool:
        return self.path_for(uri).is_file()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def storage_from_uri(uri: str) -> LocalStorage:
    """Build the store for a root URI. Only ``file://`` exists today."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return LocalStorage(Path(unquote(parsed.path)))
    raise ConfigError(f"unsupported storage scheme {parsed.scheme!r}; supported: file")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
