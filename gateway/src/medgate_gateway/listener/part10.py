"""The DICOM file header (preamble, ``DICM`` and group 0002) for a received data set.

pynetdicom can build this (``Event.encoded_dataset``) through a pydicom Dataset, which
costs about a tenth of the listener's time per instance; the group has seven fixed
elements, so we encode them directly (PS3.10 7.1, explicit VR little endian).
"""

from __future__ import annotations

import struct
import uuid

from medgate_gateway import __version__

# A UUID-derived UID (PS3.5 B.2): needs no registered root and never changes.
IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:medgate:gateway').int}"
IMPLEMENTATION_VERSION = f"MEDGATE_{__version__}"[:16]
_PREFIX = b"\x00" * 128 + b"DICM"


def _even(value: bytes, pad: bytes) -> bytes:
    return value + pad if len(value) % 2 else value


def _short(tag: tuple[int, int], vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH2sH", tag[0], tag[1], vr, len(value)) + value


def file_header(sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str, source_ae: str) -> bytes:
    """Preamble, prefix and file meta information for the given data set identity."""
    elements = b"".join(
        (
            struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\x00\x01",
            _short((0x0002, 0x0002), b"UI", _even(sop_class_uid.encode("ascii"), b"\x00")),
            _short((0x0002, 0x0003), b"UI", _even(sop_instance_uid.encode("ascii"), b"\x00")),
            _short((0x0002, 0x0010), b"UI", _even(transfer_syntax_uid.encode("ascii"), b"\x00")),
            _short((0x0002, 0x0012), b"UI", _even(IMPLEMENTATION_CLASS_UID.encode("ascii"), b"\x00")),
            _short((0x0002, 0x0013), b"SH", _even(IMPLEMENTATION_VERSION.encode("ascii"), b" ")),
            _short((0x0002, 0x0016), b"AE", _even(source_ae.strip().encode("ascii", "replace")[:16], b" ")),
        )
    )
    return _PREFIX + _short((0x0002, 0x0000), b"UL", struct.pack("<I", len(elements))) + elements
