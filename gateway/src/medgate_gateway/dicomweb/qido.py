"""QIDO-RS (PS3.18 10.6): search studies, series and instances of the index.

Query keys are DICOM keywords or tags; the filtering, order and paging happen in SQL
(``query.statement``). A key the index cannot match is refused (400) rather than ignored,
so that a client never mistakes an unapplied filter for an empty match.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydicom.datadict import dictionary_has_tag, tag_for_keyword
from sqlalchemy import Row
from starlette.concurrency import run_in_threadpool

from medgate_common.errors import InputError, NotFoundError
from medgate_gateway.api.deps import ContextDep, ReaderDep
from medgate_gateway.auth.credentials import Principal
from medgate_gateway.context import GatewayContext
from medgate_gateway.dicomweb.query import (
    BY_NAME,
    CATALOGUE,
    DEFAULTS,
    UIDS,
    Attribute,
    Level,
    Match,
    Search,
    audited,
    dicomweb_base,
    scope_exists,
    statement,
)

router = APIRouter(tags=["dicomweb"])
DICOM_JSON = "application/dicom+json"
MAX_RESULTS = 1000
TRUNCATED = '299 medgate "The number of results exceeded the maximum supported by the server; use offset for more"'
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


def _is_dicom_attribute(name: str) -> bool:
    if len(name) == 8:
        try:
            return dictionary_has_tag(int(name, 16))
        except ValueError:
            pass
    return tag_for_keyword(name) is not None


def _lookup(name: str, what: str) -> Attribute | None:
    """The catalogue attribute for a keyword or tag; None for a DICOM attribute we do not hold."""
    attr = BY_NAME.get(name.strip().lower())
    if attr is None and not _is_dicom_attribute(name.strip()):
        raise InputError(f"unknown {what} {name[:64]!r}; use a DICOM keyword or an 8-digit tag")
    return attr


def _integer(name: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InputError(f"{name} must be an integer") from None
    if number < minimum:
        raise InputError(f"{name} must be at least {minimum}")
    return number


def parse_search(items: Sequence[tuple[str, str]], level: Level, scope: Sequence[Level]) -> tuple[Search, bool]:
    """The search a query string asks for, and whether the server capped its limit."""
    search = Search(level=level)
    limit: int | None = None
    values: dict[str, list[str]] = {}
    included: list[Attribute] = []
    for key, value in items:
        name = key.strip().lower()
        if name == "limit":
            limit = _integer("limit", value, 1)
        elif name == "offset":
            search.offset = _integer("offset", value, 0)
        elif name == "fuzzymatching":
            if value.lower() not in ("true", "false"):
                raise InputError("fuzzymatching must be true or false")
            search.fuzzy = value.lower() == "true"
        elif name == "includefield":
            for field in filter(None, (f.strip() for f in value.split(","))):
                if field.lower() == "all":
                    included.extend(a for a in CATALOGUE if a.level <= level)
                elif (attr := _lookup(field, "includefield")) is not None and attr.level <= level:
                    included.append(attr)
        else:
            attr = _lookup(key, "query key")
            if attr is None or not attr.matching or attr.level > level:
                raise InputError(f"{key[:64]!r} is not a supported match key for a {level.name.lower()} search")
            values.setdefault(attr.keyword, []).append(value)
    search.matches = [Match(BY_NAME[k.lower()], tuple(v)) for k, v in values.items()]
    search.limit = min(limit or MAX_RESULTS, MAX_RESULTS)
    returned: list[Attribute] = [UIDS[lv] for lv in Level if lv <= level]
    for lv in Level:
        if lv == level or (lv < level and lv not in scope):
            returned += [BY_NAME[k.lower()] for k in DEFAULTS[lv]]
    returned += [m.attribute for m in search.matches] + included
    search.returned = sorted({id(a): a for a in returned}.values(), key=lambda a: a.tag)
    return search, limit is None or limit > MAX_RESULTS


def element(vr: str, value: object) -> dict[str, Any]:
    """A DICOM JSON attribute (PS3.18 F.2) for one value from the index."""
    if value is None or value == "":
        return {"vr": vr}
    if vr in ("IS", "US"):
        return {"vr": vr, "Value": [int(str(value))]}
    parts = str(value).split("\\")
    if vr == "PN":
        names = [{g: c for g, c in zip(_PN_GROUPS, p.split("="), strict=False) if c} for p in parts]
        return {"vr": vr, "Value": names}
    return {"vr": vr, "Value": parts}


def render(search: Search, row: Row[Any], base: str) -> dict[str, Any]:
    out = {a.tag: element(a.vr, v) for a, v in zip(search.returned, row, strict=True)}
    uids = [out[UIDS[lv].tag]["Value"][0] for lv in Level if lv <= search.level]
    url = f"{base}/studies/{uids[0]}"
    if len(uids) > 1:
        url += f"/series/{uids[1]}"
    if len(uids) > 2:
        url += f"/instances/{uids[2]}"
    out["00081190"] = {"vr": "UR", "Value": [url]}
    return dict(sorted(out.items()))


def _run(context: GatewayContext, search: Search, scope: list[tuple[Level, str]]) -> tuple[list[Row[Any]], bool]:
    with context.db.read() as session:
        if scope and not scope_exists(session, scope[0][1], scope[1][1] if len(scope) > 1 else None):
            raise NotFoundError(f"no such {scope[-1][0].name.lower()}")
        rows = list(session.execute(statement(search, context.db.dialect, scope)).all())
    return rows[: search.limit], len(rows) > search.limit


async def _search(
    request: Request, context: GatewayContext, principal: Principal, level: Level, scope: list[tuple[Level, str]]
) -> JSONResponse:
    uid = scope[-1][1] if scope else ""
    async with audited(context, principal, "dicom.search", level.name.lower(), uid) as detail:
        search, capped = parse_search(request.query_params.multi_items(), level, [lv for lv, _ in scope])
        # keys only: the values may be names or identifiers of patients
        detail.update(keys=sorted(m.attribute.keyword for m in search.matches), offset=search.offset)
        rows, more = await run_in_threadpool(_run, context, search, scope)
        detail["count"] = len(rows)
    base = dicomweb_base(context, str(request.base_url))
    headers = {"Warning": TRUNCATED} if more and capped else None
    return JSONResponse([render(search, r, base) for r in rows], media_type=DICOM_JSON, headers=headers)


@router.get("/studies", summary="QIDO-RS: search for studies")
async def search_studies(request: Request, context: ContextDep, principal: ReaderDep) -> JSONResponse:
    return await _search(request, context, principal, Level.STUDY, [])


@router.get("/series", summary="QIDO-RS: search for series")
async def search_series(request: Request, context: ContextDep, principal: ReaderDep) -> JSONResponse:
    return await _search(request, context, principal, Level.SERIES, [])


@router.get("/studies/{study}/series", summary="QIDO-RS: search for series of a study")
async def search_study_series(study: str, request: Request, context: ContextDep, principal: ReaderDep) -> JSONResponse:
    return await _search(request, context, principal, Level.SERIES, [(Level.STUDY, study)])


@router.get("/instances", summary="QIDO-RS: search for instances")
async def search_instances(request: Request, context: ContextDep, principal: ReaderDep) -> JSONResponse:
    return await _search(request, context, principal, Level.INSTANCE, [])


@router.get("/studies/{study}/instances", summary="QIDO-RS: search for instances of a study")
async def search_study_instances(
    study: str, request: Request, context: ContextDep, principal: ReaderDep
) -> JSONResponse:
    return await _search(request, context, principal, Level.INSTANCE, [(Level.STUDY, study)])


@router.get("/studies/{study}/series/{series}/instances", summary="QIDO-RS: search for instances of a series")
async def search_series_instances(
    study: str, series: str, request: Request, context: ContextDep, principal: ReaderDep
) -> JSONResponse:
    return await _search(request, context, principal, Level.INSTANCE, [(Level.STUDY, study), (Level.SERIES, series)])
