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

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.errors import InvalidDicomError as PydicomInvalidDicomError
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.valuerep import PN_DELIMS, TEXT_VR_DELIMS

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


_U16 = struct.Struct("<H")
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


# (tag, VR) of every attribute the index reads, all top-level.
_WANTED: dict[str, tuple[int, str]] = {
    "SpecificCharacterSet": (0x00080005, "CS"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "StudyDate": (0x00080020, "DA"),
    "StudyTime": (0x00080030, "TM"),
    "AccessionNumber": (0x00080050, "SH"),
    "Modality": (0x00080060, "CS"),
    "ReferringPhysicianName": (0x00080090, "PN"),
    "StudyDescription": (0x00081030, "LO"),
    "SeriesDescription": (0x0008103E, "LO"),
    "PatientName": (0x00100010, "PN"),
    "PatientID": (0x00100020, "LO"),
    "IssuerOfPatientID": (0x00100021, "LO"),
    "PatientBirthDate": (0x00100030, "DA"),
    "PatientSex": (0x00100040, "CS"),
    "BodyPartExamined": (0x00180015, "CS"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "StudyID": (0x00200010, "SH"),
    "SeriesNumber": (0x00200011, "IS"),
    "InstanceNumber": (0x00200013, "IS"),
    "NumberOfFrames": (0x00280008, "IS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
}
_COLLECT = frozenset(tag for tag, _vr in _WANTED.values())
_CHARSET_VRS = {"SH", "LO", "PN", "ST", "LT", "UT", "UC"}


class _Values:
    """Decode the raw values collected by the structural walk, as the VR says."""

    def __init__(self, raw: dict[int, bytes]) -> None:
        self.raw = raw
        charset = raw.get(0x00080005, b"").decode("ascii", "replace").strip(" \x00")
        self.encodings = convert_encodings([c.strip() for c in charset.split("\\")] if charset else None)

    def text(self, keyword: str, limit: int) -> str:
        tag, vr = _WANTED[keyword]
        value = self.raw.get(tag)
        if not value:
            return ""
        if vr in _CHARSET_VRS:
            decoded = decode_bytes(value, self.encodings, PN_DELIMS if vr == "PN" else TEXT_VR_DELIMS)
        else:
            decoded = value.decode("ascii", "replace")
        return decoded.strip(" \x00")[:limit]

    def number(self, keyword: str) -> int | None:
        tag, vr = _WANTED[keyword]
        value = self.raw.get(tag)
        if not value:
            return None
        if vr == "US":
            return int(_U16.unpack_from(value)[0]) if len(value) >= 2 else None
        try:
            return int(value.decode("ascii").strip(" \x00").split("\\")[0])
        except ValueError:
            return None


def parse_part10(data: bytes) -> ParsedInstance:
    """Parse and validate a DICOM Part 10 file held in memory, in one pass over its bytes."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise InvalidDicomError("not a DICOM Part 10 file (no DICM prefix)")
    fp = io.BytesIO(data)
    try:
        read_preamble(fp, False)
        meta = _read_file_meta_info(fp)
    except (PydicomInvalidDicomError, EOFError, ValueError, KeyError, struct.error) as exc:
        raise InvalidDicomError("unreadable DICOM file meta information") from exc
    body_offset = fp.tell()
    ts = str(meta.get("TransferSyntaxUID", "")).strip(" \x00")
    if not ts:
        raise MissingTagError("file meta has no TransferSyntaxUID", tag="(0002,0010)")
    if ts not in SUPPORTED_TRANSFER_SYNTAXES:
        raise UnsupportedTransferSyntaxError(
            "transfer syntax not supported",
            transfer_syntax=ts if valid_uid(ts) else "(invalid UID)",
            supported=sorted(SUPPORTED_TRANSFER_SYNTAXES),
        )
    body: bytes | memoryview = memoryview(data)[body_offset:]
    if ts == DEFLATED_LE:
        try:
            body = zlib.decompress(body, -zlib.MAX_WBITS)
        except zlib.error as exc:
            raise InvalidDicomError("deflated data set does not inflate") from exc
    raw = check_complete(body, implicit_vr=ts == IMPLICIT_LE, collect=_COLLECT)
    try:
        return describe(_Values(raw), ts, body_offset)
    except (LookupError, UnicodeError) as exc:
        raise InvalidDicomError(f"DICOM attribute cannot be decoded: {type(exc).__name__}") from exc


def describe(values: _Values, ts: str, body_offset: int) -> ParsedInstance:
    """Check the identifying UIDs and build the index record."""
    uids: dict[str, str] = {}
    for keyword, tag in (
        ("SOPClassUID", "(0008,0016)"),
        ("SOPInstanceUID", "(0008,0018)"),
        ("StudyInstanceUID", "(0020,000D)"),
        ("SeriesInstanceUID", "(0020,000E)"),
    ):
        value = values.text(keyword, 200)
        if not value:
            raise MissingTagError(f"{keyword} is missing", tag=tag)
        uids[keyword] = require_uid(value, keyword)
    return ParsedInstance(
        sop_class_uid=uids["SOPClassUID"],
        sop_instance_uid=uids["SOPInstanceUID"],
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        transfer_syntax_uid=ts,
        body_offset=body_offset,
        patient_id=values.text("PatientID", 64),
        issuer=values.text("IssuerOfPatientID", 64),
        patient_name=values.text("PatientName", 324),
        birth_date=values.text("PatientBirthDate", 8),
        sex=values.text("PatientSex", 16),
        study_date=values.text("StudyDate", 8),
        study_time=values.text("StudyTime", 16),
        accession_number=values.text("AccessionNumber", 64),
        study_id=values.text("StudyID", 16),
        study_description=values.text("StudyDescription", 64),
        referring_physician=values.text("ReferringPhysicianName", 324),
        modality=values.text("Modality", 16),
        series_number=values.number("SeriesNumber"),
        series_description=values.text("SeriesDescription", 64),
        body_part=values.text("BodyPartExamined", 16),
        instance_number=values.number("InstanceNumber"),
        rows=values.number("Rows"),
        columns=values.number("Columns"),
        number_of_frames=values.number("NumberOfFrames") or 1,
    )
