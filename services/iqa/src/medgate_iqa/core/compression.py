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

# Transfer syntaxes whose encoding always loses information.
ALWAYS_LOSSY = {
    "1.2.840.10008.1.2.4.50": "JPEG baseline",
    "1.2.840.10008.1.2.4.51": "JPEG extended",
    "1.2.840.10008.1.2.4.100": "MPEG-2",
    "1.2.840.10008.1.2.4.101": "MPEG-2",
    "1.2.840.10008.1.2.4.102": "MPEG-4",
    "1.2.840.10008.1.2.4.103": "MPEG-4",
    "1.2.840.10008.1.2.4.104": "MPEG-4",
    "1.2.840.10008.1.2.4.105": "MPEG-4",
    "1.2.840.10008.1.2.4.106": "MPEG-4",
    "1.2.840.10008.1.2.4.107": "HEVC",
    "1.2.840.10008.1.2.4.108": "HEVC",
}
# Transfer syntaxes that may be lossy or not; the Lossy Image Compression flag decides, and
# without it the gate assumes lossy (the cautious reading).
MAYBE_LOSSY = {
    "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.4.93": "JPEG 2000 multi-component",
    "1.2.840.10008.1.2.4.203": "HTJ2K",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
}
# Transfer syntaxes whose pixel data is not encapsulated (nothing to measure).
_NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}
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
    measured: bool = False  # the ratio was measured from the encoded size, not recorded

    def describe(self) -> str:
        if self.ratio is None:
            return f"{self.method}, ratio not recorded"
        how = "measured from the encoded size" if self.measured else "recorded in the header"
        return f"{self.method} at {self.ratio:.0f}:1, {how}"


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
    """Uncompressed over encapsulated size, for pixel data that is still compressed."""
    syntax = _syntax(ds)
    if not syntax or syntax in _NATIVE or "PixelData" not in ds:
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
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("TransferSyntaxUID", "") or "") if meta is not None else ""


def _lossy(ds: Dataset) -> bool:
    syntax = _syntax(ds)
    flag = str(ds.get("LossyImageCompression", "") or "").strip()
    if flag == "01" or syntax in ALWAYS_LOSSY:
        return True
    return flag != "00" and syntax in MAYBE_LOSSY


def _ratio(ds: Dataset) -> tuple[float | None, bool]:
    """An instance's ratio: the largest recorded step, else the measured one; and whether
    it was measured."""
    recorded = _ratios(ds)
    if recorded:
        return max(recorded), False
    measured = _measured_ratio(ds)
    return measured, measured is not None


def lossy_compression(datasets: Iterable[Dataset]) -> LossyCompression | None:
    """The series' lossy compression by its headers (its worst instance), or None."""
    lossy = [ds for ds in datasets if _lossy(ds)]
    if not lossy:
        return None
    known = [(ds, *_ratio(ds)) for ds in lossy]
    known = [k for k in known if k[1] is not None]
    if not known:
        return LossyCompression(_method(lossy[0], _syntax(lossy[0])), None, len(lossy))
    worst, ratio, measured = max(known, key=lambda k: k[1] or 0.0)
    return LossyCompression(_method(worst, _syntax(worst)), ratio, len(lossy), measured)
