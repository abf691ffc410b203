"""Multipart uploads of DICOM files: size limits, parsing, and grouping into series.

The body is counted while it streams in, so an upload without a Content-Length (chunked)
is cut off at the limit too. Files are named in errors by their position in the request,
never by their file name, which often carries the patient's name.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import Request
from pydantic import TypeAdapter, ValidationError
from pydicom.dataset import Dataset
from starlette.datastructures import FormData, UploadFile
from starlette.types import Message, Receive

from medgate_common.dicom.io import read_dataset
from medgate_common.errors import InputError, InvalidDicomError, PayloadTooLargeError, UnsupportedMediaTypeError
from medgate_common.schemas.base import DicomUID
from medgate_iqa.settings import IqaSettings

_UID = TypeAdapter(DicomUID)
FORM = "multipart/form-data"


@dataclass(frozen=True)
class Part:
    """One uploaded file: the form field it came in and its 1-based position in the request."""

    field: str
    number: int
    data: bytes


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
async def read_form(request: Request, settings: IqaSettings) -> AsyncIterator[FormData]:
    """The parsed form, within the size limits; its temporary files are removed afterwards."""
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        # refuse before reading a byte of the body
        raise PayloadTooLargeError("request body is larger than the upload limit", limit=limit)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise UnsupportedMediaTypeError(f"send the DICOM files as {FORM} file parts")
    limited = Request(request.scope, _limited(request.receive, limit))
    form = await limited.form(max_files=settings.max_instances, max_fields=64)
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


def _uid(ds: Dataset, keyword: str, number: int) -> str:
    value = str(ds.get(keyword, "") or "").strip()
    try:
        return _UID.validate_python(value)
    except ValidationError:
        raise InvalidDicomError(
            f"file {number}: {keyword} is missing or not a valid UID", part=number, tag=keyword
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
            raise InvalidDicomError(f"file {part.number}: {exc.message}", part=part.number) from exc
        key = (_uid(ds, "StudyInstanceUID", part.number), _uid(ds, "SeriesInstanceUID", part.number))
        grouped.setdefault(key, Series(*key)).datasets.append(ds)
    return list(grouped.values())


def one_series(series: list[Series], what: str) -> Series:
    if len(series) != 1:
        raise InputError(f"{what} takes the files of one series; the upload holds {len(series)}", series=len(series))
    return series[0]
