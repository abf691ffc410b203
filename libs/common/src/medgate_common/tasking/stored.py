"""What every step that reads and writes the artifact store starts from.

A step object is made once per worker process (:class:`~medgate_common.tasking.PerProcess`),
after the fork; its store is opened on the first task, so importing or registering the step
touches no disk.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

from medgate_common.schemas.workflow import Artifact, StepRequest
from medgate_common.settings import MedgateSettings
from medgate_common.storage import LocalStorage, storage_from_uri

SettingsT = TypeVar("SettingsT", bound=MedgateSettings)


class StoredStep(Generic[SettingsT]):
    """A step's settings and its artifact store (``settings.resolved_storage_uri()``), made on first use."""

    def __init__(self, settings: SettingsT) -> None:
        self.settings = settings
        self._storage: LocalStorage | None = None

    @property
    def storage(self) -> LocalStorage:
        if self._storage is None:
            self._storage = storage_from_uri(self.settings.resolved_storage_uri())
        return self._storage

    def output_folder(self, request: StepRequest) -> str:
        """The request's output folder as a storage key (relative to the store's root)."""
        storage = self.storage
        return storage.path_for(request.output_prefix).relative_to(storage.root).as_posix()

    def put_json(self, folder: str, name: str, value: BaseModel, description: str) -> Artifact:
        """Store ``value`` as ``<folder>/<name>`` (indented JSON); the artifact that names it."""
        uri = self.storage.put_bytes(f"{folder}/{name}", value.model_dump_json(indent=2).encode())
        return Artifact(uri=uri, media_type="application/json", description=description)
