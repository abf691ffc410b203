"""The index, as DICOMweb sees it: what QIDO matches and returns, what WADO serves, the audit.

Matching follows PS3.4 C.2.2.2 on the columns of the index, in SQL on both databases:
single value (case-sensitive), wildcard (``*`` ``?``, escaped LIKE on PostgreSQL, GLOB on
SQLite, since SQLite's LIKE ignores case), UID list, date/time range, and fuzzy person names
(case-insensitive prefix of any name component).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from medgate_common.errors import InputError, MedgateError, NotFoundError
from medgate_gateway.api.audit import audit
from medgate_gateway.auth.credentials import Principal
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import Instance, Patient, Series, Study

Column = ColumnElement[Any] | InstrumentedAttribute[Any]


class Level(IntEnum):
    STUDY = 1
    SERIES = 2
    INSTANCE = 3


@dataclass(frozen=True, eq=False)  # columns compare into SQL, so attributes compare by identity
class Attribute:
    """One attribute the index holds: where it lives and how a query value matches it."""

    tag: str
    keyword: str
    vr: str
    level: Level
    column: InstrumentedAttribute[Any]
    matching: str = "text"  # text, pn, uid, date, time, int, modalities or "" (return key only)


def _attr(
    tag: str, keyword: str, vr: str, level: Level, column: InstrumentedAttribute[Any], matching: str
) -> Attribute:
    return Attribute(tag, keyword, vr, level, column, matching)


ST, SE, IN = Level.STUDY, Level.SERIES, Level.INSTANCE
CATALOGUE: tuple[Attribute, ...] = (
    _attr("00080020", "StudyDate", "DA", ST, Study.study_date, "date"),
    _attr("00080030", "StudyTime", "TM", ST, Study.study_time, "time"),
    _attr("00080050", "AccessionNumber", "SH", ST, Study.accession_number, "text"),
    _attr("00080061", "ModalitiesInStudy", "CS", ST, Study.modalities, "modalities"),
    _attr("00080090", "ReferringPhysicianName", "PN", ST, Study.referring_physician, "pn"),
    _attr("00081030", "StudyDescription", "LO", ST, Study.description, "text"),
    _attr("00100010", "PatientName", "PN", ST, Patient.patient_name, "pn"),
    _attr("00100020", "PatientID", "LO", ST, Patient.patient_id, "text"),
    _attr("00100021", "IssuerOfPatientID", "LO", ST, Patient.issuer, "text"),
    _attr("00100030", "PatientBirthDate", "DA", ST, Patient.birth_date, "date"),
    _attr("00100040", "PatientSex", "CS", ST, Patient.sex, "text"),
    _attr("0020000D", "StudyInstanceUID", "UI", ST, Study.study_uid, "uid"),
    _attr("00200010", "StudyID", "SH", ST, Study.study_id, "text"),
    _attr("00201206", "NumberOfStudyRelatedSeries", "IS", ST, Study.num_series, ""),
    _attr("00201208", "NumberOfStudyRelatedInstances", "IS", ST, Study.num_instances, ""),
    _attr("00080060", "Modality", "CS", SE, Series.modality, "text"),
    _attr("0008103E", "SeriesDescription", "LO", SE, Series.description, "text"),
    _attr("00180015", "BodyPartExamined", "CS", SE, Series.body_part, "text"),
    _attr("0020000E", "SeriesInstanceUID", "UI", SE, Series.series_uid, "uid"),
    _attr("00200011", "SeriesNumber", "IS", SE, Series.series_number, "int"),
    _attr("00201209", "NumberOfSeriesRelatedInstances", "IS", SE, Series.num_instances, ""),
    _attr("00080016", "SOPClassUID", "UI", IN, Instance.sop_class_uid, "uid"),
    _attr("00080018", "SOPInstanceUID", "UI", IN, Instance.sop_instance_uid, "uid"),
    _attr("00200013", "InstanceNumber", "IS", IN, Instance.instance_number, "int"),
    _attr("00280008", "NumberOfFrames", "IS", IN, Instance.number_of_frames, "int"),
    _attr("00280010", "Rows", "US", IN, Instance.rows, "int"),
    _attr("00280011", "Columns", "US", IN, Instance.columns, "int"),
)
BY_NAME: dict[str, Attribute] = {a.keyword.lower(): a for a in CATALOGUE} | {a.tag.lower(): a for a in CATALOGUE}
UIDS: dict[Level, Attribute] = {
    ST: BY_NAME["studyinstanceuid"],
    SE: BY_NAME["seriesinstanceuid"],
    IN: BY_NAME["sopinstanceuid"],
}

#: What a query at each level returns without includefield (PS3.18 tables 6.7.1-2, -2a, -2b).
DEFAULTS: dict[Level, tuple[str, ...]] = {
    ST: ("StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy", "ReferringPhysicianName", "PatientName",
        "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
        "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    SE: ("Modality", "SeriesDescription", "SeriesNumber", "SeriesInstanceUID", "NumberOfSeriesRelatedInstances"),
    IN: ("SOPClassUID", "SOPInstanceUID", "InstanceNumber", "Rows", "Columns", "NumberOfFrames"),
}  # fmt: skip

_DATE = re.compile(r"^\d{8}$")
_TIME = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")


@dataclass(frozen=True)
class Match:
    attribute: Attribute
    values: tuple[str, ...]  # alternatives (repeated keys or a UID list); any may match


@dataclass
class Search:
    """A parsed QIDO request: the level searched, what must match, what to return, which page."""

    level: Level
    matches: list[Match] = field(default_factory=list)
    returned: list[Attribute] = field(default_factory=list)
    fuzzy: bool = False
    limit: int = 100
    offset: int = 0


def _glob_escape(value: str) -> str:
    return value.replace("[", "[[]")


def _like_escape(value: str) -> str:
    return value.replace("!", "!!").replace("%", "!%").replace("_", "!_").replace("*", "%").replace("?", "_")


def wildcard(expr: Column, pattern: str, dialect: str, *, ignore_case: bool = False) -> ColumnElement[bool]:
    """``expr`` matches a DICOM wildcard pattern (``*`` any run, ``?`` one character)."""
    if ignore_case:
        return func.lower(expr).like(_like_escape(pattern.lower()), escape="!")
    if dialect == "sqlite":
        return expr.op("GLOB", is_comparison=True)(_glob_escape(pattern))
    return expr.like(_like_escape(pattern), escape="!")


def _single(attr: Attribute, value: str, dialect: str, fuzzy: bool) -> ColumnElement[bool]:
    col = attr.column
    kind = attr.matching
    if kind == "int":
        try:
            return col == int(value)
        except ValueError:
            raise InputError(f"{attr.keyword} must be an integer") from None
    if kind in ("date", "time"):
        return _range(attr, value)
    if kind == "pn" and fuzzy:
        components = [f"{value}*", f"*^{value}*", f"* {value}*", f"*={value}*"]
        return or_(*(wildcard(col, p, dialect, ignore_case=True) for p in components))
    if kind == "modalities":
        return wildcard(literal("\\") + col + literal("\\"), f"*\\{value}\\*", dialect)
    if kind != "uid" and ("*" in value or "?" in value):
        return wildcard(col, value, dialect)
    return col == value


def _range(attr: Attribute, value: str) -> ColumnElement[bool]:
    pattern = _DATE if attr.matching == "date" else _TIME
    low, dash, high = value.partition("-")
    for bound in (low, high) if dash else (low,):
        if bound and not pattern.fullmatch(bound):
            raise InputError(f"{attr.keyword} must be a {attr.vr} value or range (e.g. 20240101-20241231)")
    if not dash:
        return attr.column == value
    if not low and not high:
        raise InputError(f"{attr.keyword} range has no bounds")
    conditions = [attr.column != ""]
    if low:
        conditions.append(attr.column >= low)
    if high:  # a TM bound covers its whole precision: -12 includes 12:59:59
        conditions.append(func.substr(attr.column, 1, len(high)) <= high)
    return and_(*conditions)


def condition(match: Match, dialect: str, fuzzy: bool) -> ColumnElement[bool]:
    values: list[str] = []
    for value in filter(None, match.values):
        if match.attribute.matching in ("uid", "modalities"):
            values.extend(v.strip() for v in re.split(r"[,\\]", value) if v.strip())
        else:
            values.append(value)
    if match.attribute.matching == "uid":
        return match.attribute.column.in_(values) if values else false()
    return or_(*(_single(match.attribute, v, dialect, fuzzy) for v in values))


def statement(search: Search, dialect: str, scope: Sequence[tuple[Level, str]]) -> Select[Any]:
    """SELECT of the returned columns (plus the UIDs of each level) for ``search``, ordered and paged."""
    columns = [a.column for a in search.returned]
    stmt: Select[Any] = select(*columns)
    if search.level is Level.STUDY:
        stmt = stmt.select_from(Study).join(Patient, Study.patient_fk == Patient.id)
        order: list[Column] = [Study.study_date.desc(), Study.study_time.desc(), Study.id.desc()]
    elif search.level is Level.SERIES:
        stmt = stmt.select_from(Series).join(Study, Series.study_fk == Study.id)
        stmt = stmt.join(Patient, Study.patient_fk == Patient.id)
        order = [Study.id, Series.series_number.is_(None), Series.series_number, Series.id]
    else:
        stmt = stmt.select_from(Instance).join(Series, Instance.series_fk == Series.id)
        stmt = stmt.join(Study, Series.study_fk == Study.id).join(Patient, Study.patient_fk == Patient.id)
        order = [Study.id, Series.series_number.is_(None), Series.series_number, Series.id]
        order += [Instance.instance_number.is_(None), Instance.instance_number, Instance.id]
    for level, uid in scope:
        stmt = stmt.where(UIDS[level].column == uid)
    for match in search.matches:
        if any(v != "" for v in match.values):  # an empty value is universal matching
            stmt = stmt.where(condition(match, dialect, search.fuzzy))
    return stmt.order_by(*order).limit(search.limit + 1).offset(search.offset)


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """Where one indexed instance lives, and what WADO needs to serve it."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    storage_uri: str
    number_of_frames: int
    rows: int | None


def stored_instances(
    session: Session, study: str, series: str | None = None, instance: str | None = None
) -> list[StoredInstance]:
    """The instances under a study, series or instance path, in series and instance order.

    Raises :class:`NotFoundError` when the path names nothing (a UID that is unknown, or
    known but under another parent).
    """
    stmt = (
        select(
            Study.study_uid,
            Series.series_uid,
            Instance.sop_instance_uid,
            Instance.transfer_syntax_uid,
            Instance.storage_uri,
            Instance.number_of_frames,
            Instance.rows,
        )
        .select_from(Instance)
        .join(Series, Instance.series_fk == Series.id)
        .join(Study, Series.study_fk == Study.id)
        .where(Study.study_uid == study)
        .order_by(Series.series_number.is_(None), Series.series_number, Series.id)
        .order_by(Instance.instance_number.is_(None), Instance.instance_number, Instance.id)
    )
    if series is not None:
        stmt = stmt.where(Series.series_uid == series)
    if instance is not None:
        stmt = stmt.where(Instance.sop_instance_uid == instance)
    found = [StoredInstance(*row) for row in session.execute(stmt)]
    if not found:
        what = "instance" if instance is not None else "series" if series is not None else "study"
        raise NotFoundError(f"no such {what}")
    return found


def scope_exists(session: Session, study: str, series: str | None) -> bool:
    stmt = select(Study.id).where(Study.study_uid == study)
    if series is not None:
        stmt = (
            select(Series.id)
            .join(Study, Series.study_fk == Study.id)
            .where(Study.study_uid == study, Series.series_uid == series)
        )
    return session.scalar(stmt.limit(1)) is not None


@asynccontextmanager
async def audited(
    context: GatewayContext, principal: Principal, action: str, resource_type: str, resource_uid: str = ""
) -> AsyncIterator[dict[str, Any]]:
    """One audit row per request, whatever its outcome; the body fills in ``detail`` (no PHI)."""
    detail: dict[str, Any] = {}
    try:
        yield detail
    except MedgateError as exc:
        await audit(
            context, principal, action, resource_type=resource_type, resource_uid=resource_uid[:64],
            outcome=exc.code[:16], detail=detail,
        )  # fmt: skip
        raise
    await audit(context, principal, action, resource_type=resource_type, resource_uid=resource_uid[:64], detail=detail)


def dicomweb_base(context: GatewayContext, request_base: str) -> str:
    """Base of the URLs we hand out (RetrieveURL, BulkDataURI): the configured public URL, else the request's."""
    return (context.settings.public_url or request_base).rstrip("/") + "/dicomweb"
