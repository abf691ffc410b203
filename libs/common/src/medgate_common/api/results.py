"""Results an API keeps as files in the service's store (``<kind>/<id>/``), not as rows: the
service stays stateless, and any replica that shares the store answers the GETs.

The app's factory keeps the store in ``app.state.storage``; routes reach it through
:data:`StorageDep` and read a result back with :func:`stored` (404 ``not_found`` when absent).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from medgate_common.errors import NotFoundError
from medgate_common.storage import LocalStorage

ResultId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The id in the Location of a POST's answer")]


async def get_storage(request: Request) -> LocalStorage:
    """The app's result store, kept in ``app.state.storage`` by its factory."""
    storage: LocalStorage = request.app.state.storage
    return storage


StorageDep = Annotated[LocalStorage, Depends(get_storage)]


def stored(storage: LocalStorage, key: str, missing: str) -> bytes:
    """The bytes at ``key``; NotFoundError saying ``missing`` when there are none."""
    if not storage.exists(key):
        raise NotFoundError(missing)
    return storage.get_bytes(key)


def stored_file(
    storage: LocalStorage, folder: str, result_name: str, name: str, *, no_result: str, no_file: str
) -> bytes:
    """File ``name`` of the result in ``folder`` (the one that holds ``result_name``): 404 with
    ``no_result`` when there is no such result, with ``no_file`` when it has no such file."""
    if not storage.exists(f"{folder}/{result_name}"):
        raise NotFoundError(no_result)
    return stored(storage, f"{folder}/{name}", no_file)
