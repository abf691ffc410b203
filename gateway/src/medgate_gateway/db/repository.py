"""Queries that write the index. Safe under concurrent writers on PostgreSQL and SQLite.

Patients, studies and series are created with ``INSERT .. ON CONFLICT DO NOTHING`` and then
read back, so two associations delivering the same new study at once both succeed; the
instance row is the arbiter of duplicates (its SOP Instance UID is unique).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from medgate_gateway.db.orm import AuditEvent, Instance, Patient, Series, Study
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
    session.add(
        AuditEvent(
            actor=actor[:80],
            role=role,
            action=action,
            resource_type=resource_type,
            resource_uid=resource_uid,
            client=client[:64],
            outcome=outcome,
            detail=detail or {},
        )
    )


class AlreadyIndexed(Exception):
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
) -> bool:
    """Index one stored instance and push its study's ready time; True if it re-opened the study.

    Raises :class:`AlreadyIndexed` (the transaction must be rolled back) when the SOP
    Instance UID is already there.
    """
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
    study_pk, state, modalities = session.execute(
        select(Study.id, Study.state, Study.modalities).where(Study.study_uid == parsed.study_uid)
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
    inserted = insert_ignore(
        session,
        Instance.__table__,  # type: ignore[arg-type]
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
        ["sop_instance_uid"],
    )
    if not inserted:
        raise AlreadyIndexed(parsed.sop_instance_uid)
    study_values: dict[str, Any] = {
        "num_instances": Study.num_instances + 1,
        "last_received_at": now,
        "ready_due_at": ready_due,
        "state": "receiving",
        "last_calling_ae": calling_ae,
    }
    if new_series:
        study_values["num_series"] = Study.num_series + 1
    known = [m for m in modalities.split("\\") if m]
    if parsed.modality and parsed.modality not in known:
        study_values["modalities"] = "\\".join(sorted([*known, parsed.modality]))[:128]
    session.execute(update(Study).where(Study.id == study_pk).values(**study_values))
    session.execute(update(Series).where(Series.id == series_pk).values(num_instances=Series.num_instances + 1))
    return bool(state == "ready")
