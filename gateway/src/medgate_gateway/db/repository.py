"""Queries that write the index. Safe under concurrent writers on PostgreSQL and SQLite.

Patients, studies and series are created with ``INSERT .. ON CONFLICT DO NOTHING`` and then
read back, so two associations delivering the same new study at once both succeed; the
instance row is the arbiter of duplicates (its SOP Instance UID is unique).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from medgate_gateway.db.orm import AuditEvent, Instance, Patient, Series, Study, utcnow
from medgate_gateway.ingest.parse import ParsedInstance


@dataclass(frozen=True, slots=True)
class IndexedInstance:
    """What the index holds about one stored instance (enough to decide on duplicates)."""

    sop_instance_uid: str
    content_sha256: str
    storage_uri: str
    study_uid: str
    series_uid: str


def insert_ignore(session: Session, table: Table, values: dict[str, Any], keys: list[str]) -> bool:
    """Insert a row unless one with the same ``keys`` exists; True if this call inserted it."""
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    else:
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    # rowcount is not reliable across drivers for ON CONFLICT; RETURNING is
    return session.execute(stmt.returning(table.c.id)).first() is not None


def find_instance(session: Session, sop_instance_uid: str) -> IndexedInstance | None:
    row = session.execute(
        select(
            Instance.sop_instance_uid,
            Instance.content_sha256,
            Instance.storage_uri,
            Study.study_uid,
            Series.series_uid,
        )
        .join(Series, Instance.series_fk == Series.id)
        .join(Study, Series.study_fk == Study.id)
        .where(Instance.sop_instance_uid == sop_instance_uid)
    ).first()
    return IndexedInstance(*row) if row else None


_INSERT_AUDIT = insert(AuditEvent.__table__)  # type: ignore[arg-type]


def add_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    role: str = "",
    resource_type: str = "",
    resource_uid: str = "",
    client: str = "",
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    session.connection().execute(
        _INSERT_AUDIT,
        {
            "at": utcnow(),
            "actor": actor[:80],
            "role": role,
            "action": action,
            "resource_type": resource_type,
            "resource_uid": resource_uid,
            "client": client[:64],
            "outcome": outcome,
            "detail": detail or {},
        },
    )


_studies: Table = Study.__table__  # type: ignore[assignment]
_series: Table = Series.__table__  # type: ignore[assignment]
_instances: Table = Instance.__table__  # type: ignore[assignment]
# Built once: the hot path binds parameters into ready statements.
_BUMP_STUDY = (
    update(_studies)
    .where(_studies.c.id == bindparam("pk"))
    .values(
        num_instances=_studies.c.num_instances + 1,
        last_received_at=bindparam("now"),
        ready_due_at=bindparam("due"),
        state="receiving",
        last_calling_ae=bindparam("ae"),
    )
)
# A derived object (SEG, SR written by the workflow) joins the study without re-opening it.
_COUNT_STUDY = (
    update(_studies).where(_studies.c.id == bindparam("pk")).values(num_instances=_studies.c.num_instances + 1)
)
_BUMP_SERIES = update(_series).where(_series.c.id == bindparam("pk")).values(num_instances=_series.c.num_instances + 1)
_INSERT_INSTANCE: dict[str, Any] = {}


def _insert_instance(dialect: str) -> Any:
    stmt = _INSERT_INSTANCE.get(dialect)
    if stmt is None:
        module: Any = postgresql if dialect == "postgresql" else sqlite
        stmt = (
            module.insert(_instances)
            .on_conflict_do_nothing(index_elements=["sop_instance_uid"])
            .returning(_instances.c.id)
        )
        _INSERT_INSTANCE[dialect] = stmt
    return stmt


class HierarchyCache:
    """Primary keys of studies and series this process has seen committed.

    Most instances belong to a series the gateway already knows; with the keys at hand the
    index write is one insert and two counter updates instead of three upserts and reads.
    Rows are never deleted while the gateway runs, so a cached key stays valid.
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._series: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def get(self, series_uid: str) -> tuple[int, int] | None:
        return self._series.get(series_uid)

    def put(self, series_uid: str, study_pk: int, series_pk: int) -> None:
        with self._lock:
            if len(self._series) >= self.max_entries:
                self._series.clear()
            self._series[series_uid] = (study_pk, series_pk)


class AlreadyIndexedError(Exception):
    """Another writer indexed this SOP Instance UID first; the caller rolls back and decides."""


def index_instance(
    session: Session,
    parsed: ParsedInstance,
    *,
    storage_uri: str,
    size_bytes: int,
    content_sha256: str,
    source: str,
    now: dt.datetime,
    ready_due: dt.datetime,
    calling_ae: str,
    cache: HierarchyCache | None = None,
    reopen: bool = True,
) -> tuple[int, int]:
    """Index one stored instance and push its study's ready time; return (study pk, series pk).

    ``reopen=False`` indexes without touching the study's completeness (derived objects).

    Raises :class:`AlreadyIndexedError` (the transaction must be rolled back) when the SOP
    Instance UID is already there. Cache the returned keys only after the commit.
    """
    known = cache.get(parsed.series_uid) if cache is not None else None
    if known is None:
        study_pk, series_pk = _upsert_hierarchy(session, parsed, now=now, ready_due=ready_due, calling_ae=calling_ae)
    else:
        study_pk, series_pk = known
    conn = session.connection()
    row = conn.execute(
        _insert_instance(conn.dialect.name),
        {
            "sop_instance_uid": parsed.sop_instance_uid,
            "series_fk": series_pk,
            "sop_class_uid": parsed.sop_class_uid,
            "instance_number": parsed.instance_number,
            "transfer_syntax_uid": parsed.transfer_syntax_uid,
            "rows": parsed.rows,
            "columns": parsed.columns,
            "number_of_frames": parsed.number_of_frames,
            "storage_uri": storage_uri,
            "size_bytes": size_bytes,
            "content_sha256": content_sha256,
            "received_at": now,
            "source": source[:80],
        },
    ).first()
    if row is None:
        raise AlreadyIndexedError(parsed.sop_instance_uid)
    if reopen:
        conn.execute(_BUMP_STUDY, {"pk": study_pk, "now": now, "due": ready_due, "ae": calling_ae})
    else:
        conn.execute(_COUNT_STUDY, {"pk": study_pk})
    conn.execute(_BUMP_SERIES, {"pk": series_pk})
    return study_pk, series_pk


def _upsert_hierarchy(
    session: Session, parsed: ParsedInstance, *, now: dt.datetime, ready_due: dt.datetime, calling_ae: str
) -> tuple[int, int]:
    insert_ignore(
        session,
        Patient.__table__,  # type: ignore[arg-type]
        {
            "patient_id": parsed.patient_id,
            "issuer": parsed.issuer,
            "patient_name": parsed.patient_name,
            "birth_date": parsed.birth_date,
            "sex": parsed.sex,
            "created_at": now,
        },
        ["patient_id", "issuer"],
    )
    patient_pk = session.scalar(
        select(Patient.id).where(Patient.patient_id == parsed.patient_id, Patient.issuer == parsed.issuer)
    )
    insert_ignore(
        session,
        Study.__table__,  # type: ignore[arg-type]
        {
            "study_uid": parsed.study_uid,
            "patient_fk": patient_pk,
            "study_date": parsed.study_date,
            "study_time": parsed.study_time,
            "accession_number": parsed.accession_number,
            "study_id": parsed.study_id,
            "description": parsed.study_description,
            "referring_physician": parsed.referring_physician,
            "state": "receiving",
            "first_received_at": now,
            "last_received_at": now,
            "ready_due_at": ready_due,
            "last_calling_ae": calling_ae,
        },
        ["study_uid"],
    )
    study_pk, modalities = session.execute(
        select(Study.id, Study.modalities).where(Study.study_uid == parsed.study_uid)
    ).one()
    new_series = insert_ignore(
        session,
        Series.__table__,  # type: ignore[arg-type]
        {
            "series_uid": parsed.series_uid,
            "study_fk": study_pk,
            "modality": parsed.modality,
            "series_number": parsed.series_number,
            "description": parsed.series_description,
            "body_part": parsed.body_part,
            "created_at": now,
        },
        ["series_uid"],
    )
    series_pk = session.scalar(select(Series.id).where(Series.series_uid == parsed.series_uid))
    assert patient_pk is not None
    assert series_pk is not None
    if new_series:
        session.execute(update(Study).where(Study.id == study_pk).values(num_series=Study.num_series + 1))
    known = [m for m in modalities.split("\\") if m]
    if parsed.modality and parsed.modality not in known:
        joined = "\\".join(sorted([*known, parsed.modality]))[:128]
        session.execute(update(Study).where(Study.id == study_pk).values(modalities=joined))
    return int(study_pk), int(series_pk)
