"""The one path every received instance takes, whatever transport brought it.

Order matters for "nothing half-written is ever indexed": the bytes are validated, then
written atomically under a key derived from validated UIDs and the content hash, and only
then indexed in one transaction. A failure before the index commit leaves no row; a
failure after the write removes the file again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from medgate_common.errors import ConflictError, MedgateError, PayloadTooLargeError, StorageError
from medgate_common.storage import LocalStorage
from medgate_gateway import metrics
from medgate_gateway.db.engine import Database
from medgate_gateway.db.orm import utcnow
from medgate_gateway.db.repository import AlreadyIndexedError, HierarchyCache, add_audit, find_instance, index_instance
from medgate_gateway.ingest.parse import ParsedInstance, SopMismatchError, parse_part10
from medgate_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Source:
    """Who sent an instance and how: the audit trail and the per-AE quiet time use it."""

    transport: str  # "dimse" or "stow"
    actor: str  # "ae:<calling AE>" or a username
    role: str = ""
    client: str = ""  # peer address
    calling_ae: str = ""


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: Outcome
    instance: ParsedInstance
    storage_uri: str
    size_bytes: int


def instance_key(parsed: ParsedInstance, content_sha256: str) -> str:
    # Only validated UIDs and a hex digest: nothing from free-text tags reaches the path.
    return f"dicom/{parsed.study_uid}/{parsed.series_uid}/{parsed.sop_instance_uid}.{content_sha256[:16]}.dcm"


def _audit_store(session: Session, parsed: ParsedInstance, source: Source, outcome: str) -> None:
    add_audit(
        session,
        actor=source.actor,
        role=source.role,
        action="dicom.store",
        resource_type="instance",
        resource_uid=parsed.sop_instance_uid,
        client=source.client,
        outcome=outcome,
        detail={"study": parsed.study_uid, "transport": source.transport},
    )


class Ingestor:
    def __init__(self, db: Database, storage: LocalStorage, settings: GatewaySettings) -> None:
        self.db = db
        self.storage = storage
        self.settings = settings
        self.cache = HierarchyCache()

    def ingest(
        self, data: bytes, source: Source, *, expect: tuple[str, str] | None = None, reopen: bool = True
    ) -> IngestResult:
        """Validate, store and index one DICOM Part 10 object; idempotent per SOP Instance UID.

        ``expect`` is the (SOP Class UID, SOP Instance UID) a C-STORE command announced.
        ``reopen=False`` adds an object the workflow derived without re-opening the study.
        """
        started = time.perf_counter()
        try:
            result = self._ingest(data, source, expect, reopen)
        except MedgateError as exc:
            metrics.INSTANCES_REJECTED.labels(source.transport, exc.code).inc()
            raise
        if result.outcome is Outcome.STORED:
            metrics.INSTANCES_RECEIVED.labels(source.transport).inc()
            metrics.BYTES_RECEIVED.labels(source.transport).inc(result.size_bytes)
        else:
            metrics.INSTANCES_DUPLICATE.labels(source.transport).inc()
        metrics.INGEST_SECONDS.labels(source.transport).observe(time.perf_counter() - started)
        return result

    def _ingest(self, data: bytes, source: Source, expect: tuple[str, str] | None, reopen: bool = True) -> IngestResult:
        if len(data) > self.settings.max_instance_bytes:
            raise PayloadTooLargeError(
                "instance is larger than the configured limit", limit=self.settings.max_instance_bytes
            )
        parsed = parse_part10(data)
        if expect is not None and expect != (parsed.sop_class_uid, parsed.sop_instance_uid):
            raise SopMismatchError("the data set is not the instance the command announced")
        digest = hashlib.sha256(memoryview(data)[parsed.body_offset :]).hexdigest()
        # Written before the index row exists. The key carries the content digest: a
        # duplicate finds its key taken and writes nothing, a conflicting object lands on
        # another key, so nothing indexed is ever overwritten.
        uri = self.storage.put_bytes(instance_key(parsed, digest), data, overwrite=False)
        now = utcnow()
        due = now + dt.timedelta(seconds=self.settings.stable_seconds_for(source.calling_ae or None))
        try:
            with self.db.write() as session:
                study_pk, series_pk = index_instance(
                    session,
                    parsed,
                    storage_uri=uri,
                    size_bytes=len(data),
                    content_sha256=digest,
                    source=source.actor,
                    now=now,
                    ready_due=due,
                    calling_ae=source.calling_ae,
                    cache=self.cache,
                    reopen=reopen,
                )
                _audit_store(session, parsed, source, "ok")
        except AlreadyIndexedError:
            # lost a race with a concurrent sender of the same UID
            with self.db.read() as session:
                existing = find_instance(session, parsed.sop_instance_uid)
            if existing is None:  # pragma: no cover - the winner's row vanished
                raise StorageError("instance index changed while storing; retry") from None
            if existing.storage_uri != uri:
                self._discard(uri)
            return self._resolve_existing(
                parsed, digest, existing.content_sha256, existing.storage_uri, source, len(data)
            )
        except Exception:
            self._discard(uri)
            raise
        self.cache.put(parsed.series_uid, study_pk, series_pk)
        return IngestResult(Outcome.STORED, parsed, uri, len(data))

    def _resolve_existing(
        self, parsed: ParsedInstance, digest: str, existing_digest: str, uri: str, source: Source, size: int
    ) -> IngestResult:
        if existing_digest == digest:
            return IngestResult(Outcome.DUPLICATE, parsed, uri, size)
        log.warning(
            "refused a different object under an existing SOP Instance UID",
            extra={"sop_instance_uid": parsed.sop_instance_uid, "actor": source.actor, "transport": source.transport},
        )
        with self.db.write() as session:
            _audit_store(session, parsed, source, "conflict")
        raise ConflictError("a different object is already stored under this SOP Instance UID")

    def _discard(self, uri: str) -> None:
        try:
            self.storage.path_for(uri).unlink(missing_ok=True)
        except OSError:  # pragma: no cover - best effort; the object is not indexed
            log.exception("could not remove an unindexed object")
