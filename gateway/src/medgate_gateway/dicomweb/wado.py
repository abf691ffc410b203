"""WADO-RS (PS3.18 10.4): instances, metadata, frames and bulk data of what the index holds.

Instances go out as the stored Part 10 bytes, read in chunks, unless the client's Accept
rules the stored transfer syntax out; then they are transcoded to Explicit VR Little
Endian. Frames go out uncompressed (application/octet-stream) unless the client asks for
the stored compressed media type, which is sent as the encapsulated frame, untouched.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels.utils import iter_pixels
from pydicom.uid import UID
from starlette.concurrency import run_in_threadpool

from medgate_common.errors import InputError, NotFoundError, StorageError
from medgate_gateway.api.deps import ContextDep, ReaderDep
from medgate_gateway.auth.credentials import Principal
from medgate_gateway.context import GatewayContext
from medgate_gateway.dicomweb.multipart import multipart_chunks, new_boundary
from medgate_gateway.dicomweb.negotiation import (
    FRAME_MEDIA,
    OCTET,
    NotAcceptableError,
    accepted,
    dicom_syntax,
    frame_syntax,
)
from medgate_gateway.dicomweb.query import StoredInstance, audited, dicomweb_base, stored_instances
from medgate_gateway.ingest.parse import DEFLATED_LE, EXPLICIT_LE

router = APIRouter(tags=["dicomweb"])
PIXEL_DATA = 0x7FE00010
CHUNK = 1 << 20
BULK_THRESHOLD = 1024  # binary values above this size go by BulkDataURI, below inline


def explicit_le(path: Path) -> bytes:
    """The instance re-encoded as Explicit VR Little Endian, decompressed if need be."""
    ds = pydicom.dcmread(path)
    if UID(ds.file_meta.TransferSyntaxUID).is_compressed:
        ds.decompress(generate_instance_uid=False)
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _instance_stream(plan: list[tuple[StoredInstance, Path]], syntaxes: list[str], boundary: str) -> Iterator[bytes]:
    for (item, path), ts in zip(plan, syntaxes, strict=True):
        yield f"--{boundary}\r\nContent-Type: application/dicom; transfer-syntax={ts}\r\n\r\n".encode()
        if ts == item.transfer_syntax_uid:
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk
        else:
            yield explicit_le(path)
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def _little_endian(frame: np.ndarray[Any, Any], bits_allocated: int) -> bytes:
    if bits_allocated == 1:
        return np.packbits(frame.astype(np.uint8).ravel(), bitorder="little").tobytes()
    return np.ascontiguousarray(frame, dtype=frame.dtype.newbyteorder("<")).tobytes()


def read_frames(path: Path, stored: str, numbers: list[int], *, native: bool) -> list[bytes]:
    """The requested frames (1-based): encapsulated as stored, or uncompressed."""
    if native and stored in FRAME_MEDIA:
        ds = pydicom.dcmread(path)
        offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths) if "ExtendedOffsetTable" in ds else None
        count = int(ds.get("NumberOfFrames") or 1)
        return [get_frame(ds.PixelData, n - 1, number_of_frames=count, extended_offsets=offsets) for n in numbers]
    head = pydicom.dcmread(path, defer_size=None if stored == DEFLATED_LE else 1024)
    bits = int(head.BitsAllocated)
    if stored in FRAME_MEDIA or bits == 1:
        try:
            frames = iter_pixels(path, indices=[n - 1 for n in numbers])
            return [_little_endian(frame, bits) for frame in frames]
        except (ValueError, RuntimeError, NotImplementedError) as exc:
            raise NotAcceptableError(
                f"frames of this transfer syntax cannot be decoded ({type(exc).__name__})"
            ) from exc
    size = int(head.Rows) * int(head.Columns) * int(head.get("SamplesPerPixel", 1)) * bits // 8
    raw = head.get_item(PIXEL_DATA, keep_deferred=True)
    if not isinstance(raw, RawDataElement):
        raise NotFoundError("instance has no pixel data")
    if raw.value is not None:
        return [bytes(raw.value[(n - 1) * size : n * size]) for n in numbers]
    with path.open("rb") as fh:  # deferred: read just the frames, not the whole pixel data
        chunks = []
        for n in numbers:
            fh.seek(raw.value_tell + (n - 1) * size)
            chunks.append(fh.read(size))
        return chunks


def _element_paths(ds: Dataset, prefix: str = "") -> dict[int, str]:
    """id(element) -> its bulk data path, e.g. ``00091010`` or ``00540016/0/00181072``."""
    paths: dict[int, str] = {}
    for elem in ds:
        path = f"{prefix}{elem.tag:08X}"
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                paths.update(_element_paths(item, f"{path}/{i}/"))
        else:
            paths[id(elem)] = path
    return paths


def instance_metadata(item: StoredInstance, path: Path, url: str) -> dict[str, Any]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    paths = _element_paths(ds)

    def bulk(elem: DataElement) -> str:
        return f"{url}/bulkdata/{paths.get(id(elem), f'{elem.tag:08X}')}"

    out = ds.to_json_dict(BULK_THRESHOLD, bulk, suppress_invalid_tags=True)
    if item.rows is not None and "BitsAllocated" in ds:
        vr = "OB" if item.transfer_syntax_uid in FRAME_MEDIA or int(ds.BitsAllocated) <= 8 else "OW"
        out[f"{PIXEL_DATA:08X}"] = {"vr": vr, "BulkDataURI": f"{url}/bulkdata/{PIXEL_DATA:08X}"}
    return out


def _metadata_stream(plan: list[tuple[StoredInstance, Path]], base: str) -> Iterator[bytes]:
    yield b"["
    for n, (item, path) in enumerate(plan):
        url = f"{base}/studies/{item.study_uid}/series/{item.series_uid}/instances/{item.sop_instance_uid}"
        yield (b"," if n else b"") + json.dumps(instance_metadata(item, path, url)).encode()
    yield b"]"


def _locate(
    context: GatewayContext, study: str, series: str | None, instance: str | None
) -> list[tuple[StoredInstance, Path]]:
    with context.db.read() as session:
        items = stored_instances(session, study, series, instance)
    plan = [(item, context.storage.path_for(item.storage_uri)) for item in items]
    if not all(path.is_file() for _, path in plan):
        raise StorageError("a stored object of this resource is missing")
    return plan


async def _serve(
    request: Request,
    context: GatewayContext,
    principal: Principal,
    uids: tuple[str, str | None, str | None],
    meta: bool,
) -> StreamingResponse:
    study, series, instance = uids
    resource = ("instance", instance) if instance else ("series", series) if series else ("study", study)
    async with audited(context, principal, "dicom.retrieve", *resource) as detail:
        detail.update(study=study, what="metadata" if meta else "instances")
        plan = await run_in_threadpool(_locate, context, study, series, instance)
        accepts = accepted(request.headers.get("accept"))
        syntaxes = [] if meta else [dicom_syntax(accepts, item.transfer_syntax_uid) for item, _ in plan]
        detail["count"] = len(plan)
    if meta:
        base = dicomweb_base(context, str(request.base_url))
        return StreamingResponse(_metadata_stream(plan, base), media_type="application/dicom+json")
    boundary = new_boundary()
    media_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return StreamingResponse(_instance_stream(plan, syntaxes, boundary), media_type=media_type)


async def _frames(
    request: Request, context: GatewayContext, principal: Principal, uids: tuple[str, str, str], frame_list: str
) -> StreamingResponse:
    """Frames ``frame_list`` ("1,3"), or all frames for the pixel data's bulk data ("")."""
    study, series, instance = uids
    async with audited(context, principal, "dicom.retrieve", "instance", instance) as detail:
        detail.update(study=study, what="frames" if frame_list else "bulkdata")
        if frame_list and not re.fullmatch(r"\d{1,9}(,\d{1,9})*", frame_list):
            raise InputError("frame list must be comma-separated frame numbers, e.g. 1,2,3")
        [(item, path)] = await run_in_threadpool(_locate, context, study, series, instance)
        if item.rows is None:
            raise NotFoundError("instance has no pixel data")
        numbers = [int(n) for n in frame_list.split(",")] if frame_list else list(range(1, item.number_of_frames + 1))
        if any(n < 1 or n > item.number_of_frames for n in numbers):
            raise NotFoundError("frame number out of range", frames=item.number_of_frames)
        detail["frames"] = numbers[:64]
        media, ts = frame_syntax(accepted(request.headers.get("accept")), item.transfer_syntax_uid)
        native = media != OCTET
        frames = await run_in_threadpool(read_frames, path, item.transfer_syntax_uid, numbers, native=native)
    boundary = new_boundary()
    parts = ((f"{media}; transfer-syntax={ts}", frame) for frame in frames)
    content_type = f'multipart/related; type="{media}"; boundary={boundary}'
    return StreamingResponse(multipart_chunks(parts, boundary), media_type=content_type)


def _bulk_value(path: Path, tags: list[str]) -> bytes:
    ds: Dataset = pydicom.dcmread(path, stop_before_pixels=True)
    try:
        for i in range(0, len(tags) - 1, 2):
            ds = ds[int(tags[i], 16)].value[int(tags[i + 1])]
        value = ds[int(tags[-1], 16)].value
    except (KeyError, IndexError, ValueError, TypeError):
        raise NotFoundError("no such bulk data") from None
    if not isinstance(value, bytes):
        raise NotFoundError("no such bulk data")
    return value


@router.get("/studies/{study}", summary="WADO-RS: retrieve a study")
async def retrieve_study(study: str, request: Request, context: ContextDep, principal: ReaderDep) -> StreamingResponse:
    return await _serve(request, context, principal, (study, None, None), meta=False)


@router.get("/studies/{study}/series/{series}", summary="WADO-RS: retrieve a series")
async def retrieve_series(
    study: str, series: str, request: Request, context: ContextDep, principal: ReaderDep
) -> StreamingResponse:
    return await _serve(request, context, principal, (study, series, None), meta=False)


@router.get("/studies/{study}/series/{series}/instances/{instance}", summary="WADO-RS: retrieve an instance")
async def retrieve_instance(
    study: str, series: str, instance: str, request: Request, context: ContextDep, principal: ReaderDep
) -> StreamingResponse:
    return await _serve(request, context, principal, (study, series, instance), meta=False)


@router.get("/studies/{study}/metadata", summary="WADO-RS: metadata of a study")
async def study_metadata(study: str, request: Request, context: ContextDep, principal: ReaderDep) -> StreamingResponse:
    return await _serve(request, context, principal, (study, None, None), meta=True)


@router.get("/studies/{study}/series/{series}/metadata", summary="WADO-RS: metadata of a series")
async def series_metadata(
    study: str, series: str, request: Request, context: ContextDep, principal: ReaderDep
) -> StreamingResponse:
    return await _serve(request, context, principal, (study, series, None), meta=True)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/metadata", summary="WADO-RS: metadata of an instance"
)
async def instance_metadata_route(
    study: str, series: str, instance: str, request: Request, context: ContextDep, principal: ReaderDep
) -> StreamingResponse:
    return await _serve(request, context, principal, (study, series, instance), meta=True)


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}", summary="WADO-RS: frames")
async def retrieve_frames(
    study: str, series: str, instance: str, frames: str, request: Request, context: ContextDep, principal: ReaderDep
) -> StreamingResponse:
    return await _frames(request, context, principal, (study, series, instance), frames)


@router.get("/studies/{study}/series/{series}/instances/{instance}/bulkdata/{path:path}", summary="WADO-RS: bulk data")
async def retrieve_bulkdata(
    study: str, series: str, instance: str, path: str, request: Request, context: ContextDep, principal: ReaderDep
) -> StreamingResponse:
    if path.upper() == f"{PIXEL_DATA:08X}":
        return await _frames(request, context, principal, (study, series, instance), "")
    async with audited(context, principal, "dicom.retrieve", "instance", instance) as detail:
        detail.update(study=study, what="bulkdata")
        if not re.fullmatch(r"[0-9A-Fa-f]{8}(/\d{1,6}/[0-9A-Fa-f]{8})*", path):
            raise InputError("bulk data path must be a tag, or tag/item/tag... into sequences")
        detail["path"] = path
        [(_item, file)] = await run_in_threadpool(_locate, context, study, series, instance)
        value = await run_in_threadpool(_bulk_value, file, path.split("/"))
    boundary = new_boundary()
    return StreamingResponse(
        multipart_chunks([(OCTET, value)], boundary),
        media_type=f'multipart/related; type="{OCTET}"; boundary={boundary}',
    )
