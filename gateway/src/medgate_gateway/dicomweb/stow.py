"""STOW-RS (PS3.18 10.5): store instances sent as multipart/related; type="application/dicom".

Each part is validated, stored and indexed on its own, as it arrives; the response lists
what was stored (ReferencedSOPSequence) and what failed and why (FailedSOPSequence, with a
DIMSE FailureReason). HTTP status: 200 all stored, 202 some failed, 409 none stored.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pydicom
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from medgate_common.errors import InputError, MedgateError, PayloadTooLargeError, UnsupportedMediaTypeError
from medgate_gateway.api.deps import ContextDep, WriterDep
from medgate_gateway.dicomweb.multipart import parse_media_type, read_parts
from medgate_gateway.dimse_status import DATASET_MISMATCH, status_for
from medgate_gateway.ingest.ingestor import IngestResult, Source
from medgate_gateway.ingest.parse import valid_uid

log = logging.getLogger(__name__)
router = APIRouter(tags=["dicomweb"])
DICOM_JSON = "application/dicom+json"


def _seq_item(sop_class: str, sop_uid: str, **extra: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if sop_class:
        item["00081150"] = {"vr": "UI", "Value": [sop_class]}
    if sop_uid:
        item["00081155"] = {"vr": "UI", "Value": [sop_uid]}
    item.update(extra)
    return item


def _guess_uids(data: bytes) -> tuple[str, str]:
    """Best-effort SOP class/instance of a refused part, for FailedSOPSequence."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID"])
        cls, uid = str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", ""))
        return (cls if valid_uid(cls) else "", uid if valid_uid(uid) else "")
    except Exception:
        return "", ""


async def _stow(
    request: Request, context: ContextDep, principal: Any, study: str | None, complete: bool
) -> JSONResponse:
    settings = context.settings
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_upload_bytes:
        # refuse before reading a byte of the body
        raise PayloadTooLargeError("request body is larger than the upload limit", limit=settings.max_upload_bytes)
    media = parse_media_type(request.headers.get("content-type", ""))
    if media.type != "multipart/related":
        raise UnsupportedMediaTypeError('STOW-RS expects multipart/related; type="application/dicom"')
    part_type = media.params.get("type", "application/dicom").lower()
    if part_type != "application/dicom":
        raise UnsupportedMediaTypeError(
            f"STOW-RS parts of type {part_type!r} are not supported; send application/dicom"
        )
    if study is not None and not valid_uid(study):
        raise InputError("study UID in the path is not a valid UID")
    boundary = media.params.get("boundary", "")
    source = Source(transport="stow", actor=principal.username, role=principal.role, client=principal.client)
    base = (settings.public_url or str(request.base_url)).rstrip("/") + "/dicomweb"
    stored: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    studies: set[str] = set()
    async for part in read_parts(
        request.stream(),
        boundary,
        max_part_bytes=settings.max_instance_bytes,
        max_total_bytes=settings.max_upload_bytes,
    ):
        if part.content_type not in ("", "application/dicom"):
            failed.append(_seq_item("", "", **{"00081197": {"vr": "US", "Value": [0xC000]}}))
            continue
        try:
            result: IngestResult = await run_in_threadpool(context.ingestor.ingest, part.body, source)
        except MedgateError as exc:
            cls, uid = _guess_uids(part.body)
            failed.append(_seq_item(cls, uid, **{"00081197": {"vr": "US", "Value": [status_for(exc)]}}))
            continue
        inst = result.instance
        if study is not None and inst.study_uid != study:
            # stored (it is a valid instance) but not where the client said: report it
            failed.append(
                _seq_item(
                    inst.sop_class_uid, inst.sop_instance_uid, **{"00081197": {"vr": "US", "Value": [DATASET_MISMATCH]}}
                )
            )
            continue
        studies.add(inst.study_uid)
        url = f"{base}/studies/{inst.study_uid}/series/{inst.series_uid}/instances/{inst.sop_instance_uid}"
        stored.append(
            _seq_item(inst.sop_class_uid, inst.sop_instance_uid, **{"00081190": {"vr": "UR", "Value": [url]}})
        )
    if not stored and not failed:
        raise InputError("STOW-RS request contained no parts")
    body: dict[str, Any] = {}
    if study is not None or len(studies) == 1:
        target = study or next(iter(studies))
        body["00081190"] = {"vr": "UR", "Value": [f"{base}/studies/{target}"]}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    if stored:
        body["00081199"] = {"vr": "SQ", "Value": stored}
    if complete and not failed:
        for uid in studies:
            await run_in_threadpool(context.tracker.mark_complete, uid)
    status = 200 if not failed else (202 if stored else 409)
    log.info("STOW-RS", extra={"stored": len(stored), "failed": len(failed), "status": status})
    return JSONResponse(body, status_code=status, media_type=DICOM_JSON)


@router.post("/studies", summary="STOW-RS: store instances")
async def stow(
    request: Request,
    context: ContextDep,
    principal: WriterDep,
    complete: bool = Query(False, description="The sender says the study is whole: hand it over now"),
) -> JSONResponse:
    return await _stow(request, context, principal, None, complete)


@router.post("/studies/{study}", summary="STOW-RS: store instances of one study")
async def stow_study(
    study: str,
    request: Request,
    context: ContextDep,
    principal: WriterDep,
    complete: bool = Query(False, description="The sender says the study is whole: hand it over now"),
) -> JSONResponse:
    return await _stow(request, context, principal, study, complete)
