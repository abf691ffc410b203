"""Content negotiation for WADO-RS: which transfer syntax and media type a client gets.

PS3.18 8.7: an instance goes out in its stored transfer syntax when the Accept header allows
it (or says ``transfer-syntax=*``), otherwise in Explicit VR Little Endian; a frame goes out
as uncompressed ``application/octet-stream`` or, when asked for, in its stored compressed
media type. Anything else is 406.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medgate_common.errors import InputError
from medgate_gateway.dicomweb.multipart import parse_media_type
from medgate_gateway.ingest.parse import EXPLICIT_LE

OCTET = "application/octet-stream"
#: The media types of compressed frames (PS3.18 table 8.7.3-5), by stored transfer syntax.
FRAME_MEDIA: dict[str, tuple[str, ...]] = {
    "1.2.840.10008.1.2.4.50": ("image/jpeg",),
    "1.2.840.10008.1.2.4.51": ("image/jpeg",),
    "1.2.840.10008.1.2.4.57": ("image/jpeg",),
    "1.2.840.10008.1.2.4.70": ("image/jpeg",),
    "1.2.840.10008.1.2.4.80": ("image/jls", "image/x-jls"),
    "1.2.840.10008.1.2.4.81": ("image/jls", "image/x-jls"),
    "1.2.840.10008.1.2.4.90": ("image/jp2",),
    "1.2.840.10008.1.2.4.91": ("image/jp2",),
    "1.2.840.10008.1.2.4.201": ("image/jphc",),
    "1.2.840.10008.1.2.4.202": ("image/jphc",),
    "1.2.840.10008.1.2.4.203": ("image/jphc",),
    "1.2.840.10008.1.2.5": ("image/dicom-rle", "image/x-dicom-rle"),
}


class NotAcceptableError(InputError):
    code = "not_acceptable"
    http_status = 406


@dataclass(frozen=True)
class Accepted:
    """One entry of an Accept header: the (part) media type and transfer syntax it names."""

    media_type: str | None  # None: multipart/related without a type, the resource's default
    transfer_syntax: str | None
    quality: float = 1.0


def accepted(header: str | None) -> list[Accepted]:
    entries: list[Accepted] = []
    for raw in re.findall(r'(?:[^,"]|"[^"]*")+', header or ""):
        media = parse_media_type(raw)
        part = (media.params.get("type", "").lower() or None) if media.type == "multipart/related" else media.type
        try:
            quality = float(media.params.get("q", "1"))
        except ValueError:
            quality = 1.0
        entries.append(Accepted(part, media.params.get("transfer-syntax"), quality))
    return sorted(entries, key=lambda a: -a.quality)


def dicom_syntax(accepts: list[Accepted], stored: str) -> str:
    """The transfer syntax to send a stored instance in; the default is Explicit VR LE."""
    if not accepts:
        return stored
    for a in accepts:
        if a.media_type in ("*/*", "application/*") and a.transfer_syntax in (None, "*"):
            return stored
        if a.media_type not in (None, "application/dicom", "*/*", "application/*"):
            continue
        wanted = a.transfer_syntax or EXPLICIT_LE
        if wanted in ("*", stored):
            return stored
        if wanted == EXPLICIT_LE:
            return EXPLICIT_LE
    raise NotAcceptableError("none of the accepted media types can be sent; accept application/dicom")


def frame_syntax(accepts: list[Accepted], stored: str) -> tuple[str, str]:
    """(media type, transfer syntax) of the frames to send: native compressed or uncompressed."""
    native = FRAME_MEDIA.get(stored, ())
    for a in accepts or [Accepted(None, None)]:
        media, ts = a.media_type or OCTET, a.transfer_syntax
        if native and media in native and ts in (None, "*", stored):
            return media, stored
        if native and media in ("*/*", "image/*") and ts in ("*", stored):  # "as stored", explicitly
            return native[0], stored
        if media in (OCTET, "application/*", "*/*") and ts in (None, "*", EXPLICIT_LE):
            return OCTET, EXPLICIT_LE
    raise NotAcceptableError(f"frames are available as {OCTET} or {', '.join(native) or 'nothing else'}")
