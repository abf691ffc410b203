"""Multipart uploads of DICOM files: size limits, zip archives, parsing, grouping into series.

The body is counted while it streams in, so an upload without a Content-Length (chunked)
is cut off at the limit too. A zip archive sent as a file part is opened in memory, its
members counted and their uncompressed size capped while they are read (a zip bomb stops at
the limit, not after). Files are named in errors by their position in the request (and in
the archive), never by their file name, which often carries the patient's name.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Request
from pydantic import TypeAdapter, ValidationError
from pydicom.dataset import Dataset
from starlette.datastructures import FormData, UploadFile
from starlette.types import Message, Receive

from medgate_common.dicom.io import read_dataset
from medgate_common.errors import InputError, InvalidDicomError, PayloadTooLargeError, UnsupportedMediaTypeError
from medgate_common.schemas.base import DicomUID

_UID = TypeAdapter(DicomUID)
FORM = "multipart/form-data"
ZIP_MAGIC = b"PK\x03\x04"


class UploadLimits(Protocol):
    """The settings an upload is checked against (every service's settings have them)."""

    @property
    def max_upload_bytes(self) -> int: ...

    @property
    def max_instances(self) -> int: ...


@dataclass(frozen=True)
class Part:
    """One uploaded file: its form field, 1-based position in the request and, for a zip
    member, its 1-based position in that archive."""

    field: str
    number: int
    data: bytes
    member: int | None = None

    @property
    def where(self) -> str:
        return f"file {self.number}" + (f", zip member {self.member}" if self.member is not None else "")


@dataclass
class Series:
    study_instance_uid: str
    series_instance_uid: str
    datasets: list[Dataset] = field(default_factory=list)


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLargeError("request body is larger than the upload limit", limit=limit)
        return message

    return counted


@asynccontextmanager
async def read_form(request: Request, limits: UploadLimits) -> AsyncIterator[FormData]:
    """The parsed form, within the size limits; its temporary files are removed afterwards."""
    limit = limits.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        # refuse before reading a byte of the body
        raise PayloadTooLargeError("request body is larger than the upload limit", limit=limit)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise UnsupportedMediaTypeError(f"send the DICOM files as {FORM} file parts")
    limited = Request(request.scope, _limited(request.receive, limit))
    form = await limited.form(max_files=limits.max_instances, max_fields=64)
    try:
        yield form
    finally:
        await form.close()


async def file_parts(form: FormData) -> list[Part]:
    parts: list[Part] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            parts.append(Part(name, len(parts) + 1, await value.read()))
    return parts


def _skipped_member(info: zipfile.ZipInfo) -> bool:
    """Folders, macOS resource forks and the DICOMDIR index carry no image."""
    name = info.filename.replace("\\", "/")
    base = name.rsplit("/", 1)[-1]
    return info.is_dir() or name.startswith("__MACOSX/") or base.startswith(".") or base.upper() == "DICOMDIR"


def expand_zips(parts: list[Part], limits: UploadLimits) -> list[Part]:
    """Every zip part replaced by its members, in archive order.

    The members' total uncompressed size may not exceed the upload limit, nor their count
    the instance limit; both are enforced while reading, whatever the archive declares.
    """
    out: list[Part] = []
    budget = limits.max_upload_bytes
    for part in parts:
        if not part.data.startswith(ZIP_MAGIC):
            out.append(part)
            continue
        try:
            archive = zipfile.ZipFile(io.BytesIO(part.data))
            members = [i for i in archive.infolist() if not _skipped_member(i)]
            if len(out) + len(members) > limits.max_instances:
                raise PayloadTooLargeError(
                    f"{part.where}: the archive holds more files than the instance limit", limit=limits.max_instances
                )
            for index, info in enumerate(members, start=1):
                with archive.open(info) as fh:
                    data = fh.read(budget + 1)
                budget -= len(data)
                if budget < 0:
                    raise PayloadTooLargeError(
                        f"{part.where}: the archive unpacks to more than the upload limit",
                        limit=limits.max_upload_bytes,
                    )
                out.append(Part(part.field, part.number, data, member=index))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, RuntimeError) as exc:
            # RuntimeError: encrypted members; NotImplementedError: an unknown compression
            raise InvalidDicomError(f"{part.where}: unreadable zip archive ({exc})", part=part.number) from None
    return out


def text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"form field {name!r} is required", field=name)
    return value.strip()


def list_field(form: FormData, name: str) -> list[str]:
    """A list sent either as one JSON array or as the same field repeated."""
    values = [v for v in form.getlist(name) if isinstance(v, str)]
    if len(values) == 1 and values[0].lstrip().startswith("["):
        try:
            parsed = json.loads(values[0])
        except json.JSONDecodeError:
            raise InputError(f"form field {name!r} is not a valid JSON list", field=name) from None
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise InputError(f"form field {name!r} must be a JSON list of strings", field=name)
        values = parsed
    values = [v.strip() for v in values]
    if not values or not all(values):
        raise InputError(f"form field {name!r} needs non-empty values", field=name)
    return values


def _uid(ds: Dataset, keyword: str, part: Part) -> str:
    value = str(ds.get(keyword, "") or "").strip()
    try:
        return _UID.validate_python(value)
    except ValidationError:
        raise InvalidDicomError(
            f"{part.where}: {keyword} is missing or not a valid UID", part=part.number, tag=keyword
        ) from None


def group_series(parts: list[Part]) -> list[Series]:
    """Parse every part as DICOM and group the instances by series, in upload order."""
    if not parts:
        raise InputError("the request holds no files; send DICOM instances as file parts")
    grouped: dict[tuple[str, str], Series] = {}
    for part in parts:
        try:
            ds = read_dataset(part.data)
        except InvalidDicomError as exc:
            raise InvalidDicomError(f"{part.where}: {exc.message}", part=part.number) from exc
        key = (_uid(ds, "StudyInstanceUID", part), _uid(ds, "SeriesInstanceUID", part))
        grouped.setdefault(key, Series(*key)).datasets.append(ds)
    return list(grouped.values())


def one_series(series: list[Series], what: str) -> Series:
    if len(series) != 1:
        raise InputError(f"{what} takes the files of one series; the upload holds {len(series)}", series=len(series))
    return series[0]


def file_list(description: str) -> dict[str, Any]:
    """OpenAPI for a form field of several files."""
    return {"type": "array", "items": {"type": "string", "format": "binary"}, "description": description}


def upload_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """OpenAPI for a multipart body the route parses itself (to count its bytes as they come)."""
    schema = {"type": "object", "properties": properties, "required": required}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


PROBLEM_CONTENT: dict[str, Any] = {"application/problem+json": {"schema": {"type": "object"}}}
