"""Turn received bytes into a validated description of one DICOM instance.

Everything later (storage keys, the index, the study state machine) trusts what comes out
of here: UIDs match the DICOM UID grammar, so they can name files; the transfer syntax is
one we accept; and the data set is whole, not truncated.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError as PydicomInvalidDicomError
from pydicom.filereader import _read_file_meta_info, read_preamble

from medgate_common.dicom.wire import check_complete
from medgate_common.errors import InvalidDicomError, MissingTagError, UnsupportedTransferSyntaxError

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"

#: Transfer syntaxes the gateway accepts over DIMSE and STOW, by name.
SUPPORTED_TRANSFER_SYNTAXES: dict[str, str] = {
    IMPLICIT_LE: "Implicit VR Little Endian",
    EXPLICIT_LE: "Explicit VR Little Endian",
    DEFLATED_LE: "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline (Process 1)",
    "1.2.840.10008.1.2.4.51": "JPEG Extended (Process 2 & 4)",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless (Process 14)",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
    "1.2.840.10008.1.2.4.202": "HTJ2K Lossless RPCL",
    "1.2.840.10008.1.2.4.203": "HTJ2K",
    "1.2.840.10008.1.2.5": "RLE Lossless",
}

class SopMismatchError(InvalidDicomError):
    """The data set is not the instance the C-STORE command announced."""

    code = "sop_mismatch"


_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def valid_uid(value: str) -> bool:
    return 0 < len(value) <= 64 and _UID.fullmatch(value) is not None


def require_uid(value: str, what: str) -> str:
    """Return ``value`` if it is a well-formed DICOM UID; it may then name a file."""
    if not valid_uid(value):
        # the value itself may be crafted (a path, a script); report only its length
        raise InvalidDicomError(f"{what} is not a valid DICOM UID", length=len(value))
    return value


@dataclass(frozen=True, slots=True)
class ParsedInstance:
    """The indexed attributes of one instance, plus where its data set starts in the bytes."""

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax_uid: str
    body_offset: int
    patient_id: str = ""
    issuer: str = ""
    patient_name: str = ""
    birth_date: str = ""
    sex: str = ""
    study_date: str = ""
    study_time: str = ""
    accession_number: str = ""
    study_id: str = ""
    study_description: str = ""
    referring_physician: str = ""
    modality: str = ""
    series_number: int | None = None
    series_description: str = ""
    body_part: str = ""
    instance_number: int | None = None
    rows: int | None = None
    columns: int | None = None
    number_of_frames: int = 1


def _text(ds: Dataset, keyword: str, limit: int) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)[:limit]
    return str(value).strip()[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def parse_part10(data: bytes) -> ParsedInstance:
    """Parse and validate a DICOM Part 10 file held in memory."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise InvalidDicomError("not a DICOM Part 10 file (no DICM prefix)")
    fp = io.BytesIO(data)
    try:
        read_preamble(fp, False)
        meta = _read_file_meta_info(fp)
    except (PydicomInvalidDicomError, EOFError, ValueError, KeyError, struct.error) as exc:
        raise InvalidDicomError("unreadable DICOM file meta information") from exc
    body_offset = fp.tell()
    ts = str(meta.get("TransferSyntaxUID", "")).strip()
    if not ts:
        raise MissingTagError("file meta has no TransferSyntaxUID", tag="(0002,0010)")
    if ts not in SUPPORTED_TRANSFER_SYNTAXES:
        raise UnsupportedTransferSyntaxError(
            "transfer syntax not supported",
            transfer_syntax=ts if valid_uid(ts) else "(invalid UID)",
            supported=sorted(SUPPORTED_TRANSFER_SYNTAXES),
        )
    body = memoryview(data)[body_offset:]
    if ts == DEFLATED_LE:
        try:
            inflated = zlib.decompress(body, -zlib.MAX_WBITS)
        except zlib.error as exc:
            raise InvalidDicomError("deflated data set does not inflate") from exc
        check_complete(inflated, implicit_vr=False)
    else:
        check_complete(body, implicit_vr=ts == IMPLICIT_LE)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many types for bad input
        raise InvalidDicomError(f"unreadable DICOM data set: {type(exc).__name__}") from exc
    return describe(ds, ts, body_offset)


def describe(ds: Dataset, ts: str, body_offset: int) -> ParsedInstance:
    """Extract and check the attributes the index needs from a parsed data set."""
    uids: dict[str, str] = {}
    for keyword, tag in (
        ("SOPClassUID", "(0008,0016)"),
        ("SOPInstanceUID", "(0008,0018)"),
        ("StudyInstanceUID", "(0020,000D)"),
        ("SeriesInstanceUID", "(0020,000E)"),
    ):
        try:
            raw = ds.get(keyword)
        except Exception as exc:
            raise InvalidDicomError(f"{keyword} cannot be decoded") from exc
        value = str(raw).strip().rstrip("\x00") if raw is not None else ""
        if not value:
            raise MissingTagError(f"{keyword} is missing", tag=tag)
        uids[keyword] = require_uid(value, keyword)
    try:
        return ParsedInstance(
            sop_class_uid=uids["SOPClassUID"],
            sop_instance_uid=uids["SOPInstanceUID"],
            study_uid=uids["StudyInstanceUID"],
            series_uid=uids["SeriesInstanceUID"],
            transfer_syntax_uid=ts,
            body_offset=body_offset,
            patient_id=_text(ds, "PatientID", 64),
            issuer=_text(ds, "IssuerOfPatientID", 64),
            patient_name=_text(ds, "PatientName", 324),
            birth_date=_text(ds, "PatientBirthDate", 8),
            sex=_text(ds, "PatientSex", 16),
            study_date=_text(ds, "StudyDate", 8),
            study_time=_text(ds, "StudyTime", 16),
            accession_number=_text(ds, "AccessionNumber", 64),
            study_id=_text(ds, "StudyID", 16),
            study_description=_text(ds, "StudyDescription", 64),
            referring_physician=_text(ds, "ReferringPhysicianName", 324),
            modality=_text(ds, "Modality", 16),
            series_number=_int(ds, "SeriesNumber"),
            series_description=_text(ds, "SeriesDescription", 64),
            body_part=_text(ds, "BodyPartExamined", 16),
            instance_number=_int(ds, "InstanceNumber"),
            rows=_int(ds, "Rows"),
            columns=_int(ds, "Columns"),
            number_of_frames=_int(ds, "NumberOfFrames") or 1,
        )
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidDicomError(f"DICOM attribute cannot be decoded: {type(exc).__name__}") from exc
