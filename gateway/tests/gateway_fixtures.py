"""Builders of good and bad DICOM bytes for the gateway tests."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from shared_fixtures import serve_in_thread as serve_app

from medgate_common.errors import StorageError
from medgate_common.storage import LocalStorage
from medgate_gateway.context import GatewayContext
from medgate_gateway.main import create_app

PASSWORD = "correct horse battery staple"

# Real public samples (pydicom's test data): one per transfer syntax family.
SAMPLES = {
    "explicit": "CT_small.dcm",
    "implicit": "rtplan.dcm",
    "deflate": "image_dfl.dcm",
    "jpeg-baseline": "SC_rgb_jpeg_dcmtk.dcm",
    "jpeg-lossless": "JPEG-LL.dcm",
    "jpeg-ls": "MR_small_jpeg_ls_lossless.dcm",
    "jpeg2000": "MR_small_jp2klossless.dcm",
    "rle": "MR_small_RLE.dcm",
    "multiframe-mr": "emri_small.dcm",
    "compressed-ct": "693_J2KR.dcm",  # 512x512 CT, JPEG 2000 lossless
}


def sample_path(name: str) -> Path:
    path = get_testdata_file(SAMPLES[name])
    assert path is not None, f"pydicom test file {SAMPLES[name]} is missing"
    return Path(str(path))


def to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def modified(source: Path | bytes, **changes: object) -> bytes:
    """The file with some attributes changed (None deletes the attribute)."""
    ds = pydicom.dcmread(io.BytesIO(source) if isinstance(source, bytes) else source)
    for keyword, value in changes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    if "SOPInstanceUID" in changes and changes["SOPInstanceUID"] is not None:
        ds.file_meta.MediaStorageSOPInstanceUID = changes["SOPInstanceUID"]
    return to_bytes(ds)


def with_transfer_syntax_uid(data: bytes, ts: str) -> bytes:
    """The same bytes with another TransferSyntaxUID in the file meta (same length only)."""
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    old = str(ds.file_meta.TransferSyntaxUID).encode()
    assert len(old) == len(ts), "keep the UID length so the meta group length stays right"
    head, body = data[:400], data[400:]
    assert head.count(old) >= 1
    return head.replace(old, ts.encode(), 1) + body


def fresh_copy(path: Path) -> bytes:
    """The same image under new study/series/instance UIDs (a distinct instance)."""
    uid = generate_uid()
    return modified(path, StudyInstanceUID=generate_uid(), SeriesInstanceUID=generate_uid(), SOPInstanceUID=uid)


@dataclass(frozen=True)
class Credentials:
    """Bearer headers for one user of each role."""

    admin: dict[str, str]
    radiologist: dict[str, str]
    technologist: dict[str, str]
    service: dict[str, str]
    site: dict[str, str]
    service_key: str


class FullDisk(LocalStorage):
    """Storage whose disk fills up after ``room`` objects.

    A stand-in for a real full disk, which cannot be made without root mounts here: the
    write raises exactly what LocalStorage raises when the OS reports ENOSPC.
    """

    def __init__(self, root: Path, room: int) -> None:
        super().__init__(root)
        self.room = room

    def put_bytes(self, key: str, data: bytes, *, overwrite: bool = True) -> str:
        if self.room <= 0:
            raise StorageError("could not write object: No space left on device")
        self.room -= 1
        return super().put_bytes(key, data, overwrite=overwrite)


@contextmanager
def serve_in_thread(context: GatewayContext) -> Iterator[str]:
    """The gateway app for ``context`` served by uvicorn on a free loopback port, in a thread."""
    with serve_app(create_app(context=context, with_sweeper=False)) as url:
        yield url
