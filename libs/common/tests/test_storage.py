from __future__ import annotations

from pathlib import Path

import pytest

from medgate_common.errors import ConfigError, NotFoundError, UnsafePathError
from medgate_common.settings import MedgateSettings
from medgate_common.storage import LocalStorage, storage_from_uri, validate_key


@pytest.mark.parametrize(
    "key",
    ["../x", "a/../../b", "/etc/passwd", "a//b", "a/./b", "", "a\\b", "a/\x00", ".hidden", "a/b c", "ü/x"],
)
def test_unsafe_keys_are_rejected(key: str) -> None:
    with pytest.raises(UnsafePathError):
        validate_key(key)


def test_put_get_round_trip_is_atomic(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "store")
    uri = store.put_bytes("studies/1.2.3/series/4.5/6.7.dcm", b"DICM" * 10)
    assert uri.startswith("file://")
    assert store.get_bytes(uri) == b"DICM" * 10
    assert store.exists(uri)
    # Overwrite goes through a temporary file and rename; nothing else is left behind.
    store.put_bytes("studies/1.2.3/series/4.5/6.7.dcm", b"new")
    leftovers = [p.name for p in (tmp_path / "store/studies/1.2.3/series/4.5").iterdir()]
    assert leftovers == ["6.7.dcm"]
    assert store.get_bytes(uri) == b"new"


def test_put_without_overwrite_keeps_what_is_there(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "store")
    key = "a/1.2.dcm"
    uri = store.put_bytes(key, b"first", overwrite=False)
    inode = store.path_for(uri).stat().st_ino
    assert store.put_bytes(key, b"second", overwrite=False) == uri
    assert store.get_bytes(uri) == b"first"
    assert store.path_for(uri).stat().st_ino == inode
    assert [p.name for p in (tmp_path / "store/a").iterdir()] == ["1.2.dcm"]


def test_uris_outside_the_root_and_missing_objects(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "store")
    (tmp_path / "secret").write_text("x")
    with pytest.raises(UnsafePathError):
        store.get_bytes((tmp_path / "secret").as_uri())
    with pytest.raises(NotFoundError):
        store.get_bytes(store.uri_for("nothing/here"))


def test_storage_from_settings(tmp_path: Path) -> None:
    settings = MedgateSettings(home=tmp_path)
    store = storage_from_uri(settings.resolved_storage_uri())
    assert store.root == (tmp_path / "storage").resolve()
    with pytest.raises(ConfigError):
        storage_from_uri("ftp://example/x")
