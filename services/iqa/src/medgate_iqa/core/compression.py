"""Lossy compression, read from the header: what a radiographer checks before trusting pixels.

Irreversible compression removes detail no network can recover, and the header says
whether it happened: Lossy Image Compression (0028,2110) is "01" once an image has been
lossy compressed at any point in its life (it stays "01" after decompression), with the
ratio of each step in (0028,2112) and the method in (0028,2114). A transfer syntax that is
lossy by definition (baseline or extended JPEG, MPEG, HEVC) says so as well, even when a
writer forgot the flag. Writers do forget it: pydicom's own JPEG 2000 encoder sets neither
the flag nor the ratio. When no ratio is recorded and the pixels are still encapsulated,
the ratio is measured: the size the pixel data would have uncompressed (rows × columns ×
frames × samples × bits allocated) over the size of the encapsulated stream.

How much is too much is a matter of guidelines, not of the network. The defaults of
:class:`~medgate_iqa.core.policy.ModalityThresholds` follow the Canadian Association of
Radiologists' standard for irreversible compression (2008): 12:1 for neuro CT (15:1 for
body CT), 24:1 for MR. Up to the limit the image is flagged mild (diagnostic, but not the
original pixels: the models behind the gate were trained on lossless images); beyond it,
severe. A site with another standard sets its own limits in the gate policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from medgate_common.dicom.io import transfer_syntax
from medgate_common.errors import MissingTagError

_TS = "1.2.840.10008.1.2.4."
# Transfer syntaxes whose encoding always loses information: the JPEG DCT processes (the
# retired ones too: legacy archives hold them), JPEG XL's JPEG recompression (it carries a
# baseline JPEG), and the video syntaxes with their fragmentable variants.
ALWAYS_LOSSY = {
    _TS + "50": "JPEG baseline",
    _TS + "51": "JPEG extended",
    **{_TS + str(n): "JPEG (retired DCT process)" for n in (52, 53, 54, 55, 56, 59, 60, 61, 62, 63, 64)},
    _TS + "111": "JPEG XL (recompressed JPEG)",
    **{_TS + s: "MPEG-2" for s in ("100", "100.1", "101", "101.1")},
    **{_TS + s: "MPEG-4" for s in ("102", "102.1", "103", "103.1", "104", "104.1", "105", "105.1", "106", "106.1")},
    _TS + "107": "HEVC",
    _TS + "108": "HEVC",
}
# Transfer syntaxes that may be lossy or not; the Lossy Image Compression flag decides, and
# without it the gate assumes lossy (the cautious reading).
MAYBE_LOSSY = {
    _TS + "81": "JPEG-LS near-lossless",
    _TS + "91": "JPEG 2000",
    _TS + "93": "JPEG 2000 multi-component",
    _TS + "203": "HTJ2K",
    _TS + "112": "JPEG XL",
}
# Derivation Code Sequence (0008,9215) item that says an image was lossy compressed.
_LOSSY_DERIVATION = ("DCM", "113040")
_ITEM_TAG = b"\xfe\xff\x00\xe0"  # (FFFE,E000) little endian: encapsulated data starts with an item
# Defined terms of Lossy Image Compression Method (0028,2114).
METHODS = {
    "ISO_10918_1": "JPEG",
    "ISO_14495_1": "JPEG-LS",
    "ISO_15444_1": "JPEG 2000",
    "ISO_15444_15": "HTJ2K",
    "ISO_18181_1": "JPEG XL",
    "ISO_13818_2": "MPEG-2",
    "ISO_14496_10": "MPEG-4",
    "ISO_23008_2": "HEVC",
}


@dataclass(frozen=True)
class LossyCompression:
    method: str  # e.g. "JPEG 2000"; "unknown method" when the header does not say
    ratio: float | None  # the largest recorded step (or the measured one); None if unknown
    instances: int  # how many instances of the series are lossy
    total: int  # of how many instances with pixels
    measured: bool = False  # the ratio was measured from the encoded size, not recorded

    def describe(self) -> str:
        if self.ratio is None:
            text = f"{self.method}, ratio not recorded"
        else:
            how = "measured from the encoded size" if self.measured else "recorded in the header"
            text = f"{self.method} at {self.ratio:.0f}:1, {how}"
        return text if self.total <= 1 else f"{text}; {self.instances} of {self.total} instances"


def _values(ds: Dataset, keyword: str) -> list[object]:
    try:
        raw = ds.get(keyword)
    except (TypeError, ValueError):  # a value pydicom cannot convert (e.g. text in a DS)
        return []
    if raw is None or raw == "":
        return []
    return list(raw) if isinstance(raw, MultiValue | list | tuple) else [raw]


def _ratios(ds: Dataset) -> list[float]:
    out = []
    for v in _values(ds, "LossyImageCompressionRatio"):
        try:
            out.append(float(v))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue  # a malformed ratio is not a ratio; the flag still counts
    return [r for r in out if r > 0]


def _measured_ratio(ds: Dataset) -> float | None:
    """Uncompressed over encapsulated size, for pixel data still held in a lossy (or maybe
    lossy) syntax; a lossless re-encoding says nothing about the earlier loss. Uncompressed
    size counts Bits Allocated, as writers of (0028,2112) do (pydicom's 693_J2KI records
    338.7:1 and measures 335:1); on 12-bit CT that reads a third higher than a bits-stored
    count would."""
    syntax = _syntax(ds)
    if (syntax not in ALWAYS_LOSSY and syntax not in MAYBE_LOSSY) or "PixelData" not in ds:
        return None
    try:
        raw = ds.PixelData
        if raw[:4] != _ITEM_TAG:  # labelled compressed, but not encapsulated: nothing to measure
            return None
        encoded = len(raw)
        frames = max(1, int(ds.get("NumberOfFrames", 1) or 1))
        bits = int(ds.BitsAllocated) * int(ds.get("SamplesPerPixel", 1) or 1)
        size = int(ds.Rows) * int(ds.Columns) * frames * bits / 8
    except (AttributeError, TypeError, ValueError):
        return None
    return size / encoded if encoded and size else None


def _method(ds: Dataset, syntax: str) -> str:
    terms = [str(m).strip() for m in _values(ds, "LossyImageCompressionMethod") if str(m).strip()]
    named = [METHODS.get(t, t) for t in terms]
    if named:
        return " then ".join(dict.fromkeys(named))
    return ALWAYS_LOSSY.get(syntax) or MAYBE_LOSSY.get(syntax) or "unknown method"


def _syntax(ds: Dataset) -> str:
    """The transfer syntax, or "" for a data set without file meta (nothing to judge by)."""
    try:
        return str(transfer_syntax(ds))
    except MissingTagError:
        return ""


def _derived_lossy(ds: Dataset) -> bool:
    """Derivation Code Sequence says "Lossy Compression" (DCM 113040): kept by some writers
    that drop the flag."""
    try:
        items = ds.get("DerivationCodeSequence") or []
        return any(
            (str(i.get("CodingSchemeDesignator", "")), str(i.get("CodeValue", ""))) == _LOSSY_DERIVATION for i in items
        )
    except (AttributeError, TypeError, ValueError):
        return False


def _lossy(ds: Dataset) -> bool:
    syntax = _syntax(ds)
    flag = str(ds.get("LossyImageCompression", "") or "").strip()
    if flag == "01" or syntax in ALWAYS_LOSSY or _derived_lossy(ds):
        return True
    return flag != "00" and syntax in MAYBE_LOSSY


def _ratio(ds: Dataset) -> tuple[float | None, bool]:
    """An instance's ratio, and whether it was measured: the larger of the largest recorded
    step and the ratio of a stream still in a lossy syntax (a stale record must not hide a
    stronger re-compression)."""
    recorded = max(_ratios(ds), default=None)
    measured = _measured_ratio(ds)
    if measured is not None and (recorded is None or measured > recorded):
        return measured, True
    return recorded, False


def lossy_compression(datasets: Iterable[Dataset]) -> LossyCompression | None:
    """The series' lossy compression by its headers (its worst instance), or None."""
    every = list(datasets)
    lossy = [ds for ds in every if _lossy(ds)]
    if not lossy:
        return None
    known = [(ds, *_ratio(ds)) for ds in lossy]
    known = [k for k in known if k[1] is not None]
    if not known:
        return LossyCompression(_method(lossy[0], _syntax(lossy[0])), None, len(lossy), len(every))
    worst, ratio, measured = max(known, key=lambda k: k[1] or 0.0)
    return LossyCompression(_method(worst, _syntax(worst)), ratio, len(lossy), len(every), measured)
