"""Reading DICOM with errors a PACS administrator can act on.

pydicom's own exceptions range from ``InvalidDicomError`` to bare ``ValueError`` and
``struct.error`` for truncated files; here they all become a :class:`MedgateError` whose
message names the problem (not the patient).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import pydicom
import pydicom.errors
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import UID

from medgate_common.errors import InvalidDicomError, MissingTagError, UnsupportedTransferSyntaxError
from medgate_common.logging import register_dataset

Source = Path | str | bytes | BinaryIO


def read_dataset(source: Source, *, stop_before_pixels: bool = False) -> Dataset:
    """Read one Part 10 file (path, bytes or binary stream) and register its PHI for log masking."""
    fp: Path | str | BinaryIO = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        ds = pydicom.dcmread(fp, stop_before_pixels=stop_before_pixels)
    except pydicom.errors.InvalidDicomError as exc:
        raise InvalidDicomError("not a DICOM Part 10 file (no DICM preamble or file meta)") from exc
    except FileNotFoundError:
        raise
    except (EOFError, ValueError, KeyError, OSError, TypeError) as exc:
        raise InvalidDicomError(f"unreadable DICOM data: {type(exc).__name__}") from exc
    except Exception as exc:  # struct.error and friends from truncated files
        raise InvalidDicomError(f"malformed DICOM data: {type(exc).__name__}") from exc
    register_dataset(ds)
    return ds


def require(ds: Dataset, *keywords: str) -> None:
    """Raise :class:`MissingTagError` naming the first absent or empty attribute."""
    for keyword in keywords:
        value = ds.get(keyword)
        if value is None or value == "" or (isinstance(value, list | tuple) and len(value) == 0):
            raise MissingTagError(f"required attribute {keyword} is missing or empty", tag=keyword)


def transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None)
    if uid is None:
        raise MissingTagError("file meta has no TransferSyntaxUID", tag="TransferSyntaxUID")
    return UID(uid)


def check_decodable(ds: Dataset) -> None:
    """Fail early, with the syntax's name, when no installed plugin can decode this file."""
    uid = transfer_syntax(ds)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError as exc:
        raise UnsupportedTransferSyntaxError(
            f"no pixel decoder for transfer syntax {uid.name} ({uid})", transfer_syntax=str(uid)
        ) from exc
    if not decoder.is_available:
        raise UnsupportedTransferSyntaxError(
            f"decoder for {uid.name} ({uid}) is not installed", transfer_syntax=str(uid)
        )


def decode_pixels(ds: Dataset) -> npt.NDArray[np.generic]:
    """Stored pixel values as an array ((frames,) rows, cols[, samples]); no rescale applied."""
    if "PixelData" not in ds:
        raise MissingTagError("dataset has no Pixel Data", tag="PixelData")
    require(ds, "Rows", "Columns", "BitsAllocated", "SamplesPerPixel")
    check_decodable(ds)
    try:
        return ds.pixel_array
    except (ValueError, RuntimeError, KeyError, AttributeError, TypeError) as exc:
        raise InvalidDicomError(f"pixel data could not be decoded: {exc}") from exc


def _number(value: object, default: float) -> float:
    try:
        return float(value) if value not in (None, "") else default  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def rescale_parameters(ds: Dataset, frames: int = 1) -> list[tuple[float, float]]:
    """(slope, intercept) of each frame. An enhanced (multi-frame) object keeps them in its
    Pixel Value Transformation, per frame or else shared, which wins over any top-level
    Rescale tags (the standard's place for them); a classic object has the top-level
    tags. Missing everywhere: (1, 0)."""
    top = (_number(ds.get("RescaleSlope"), 1.0), _number(ds.get("RescaleIntercept"), 0.0))

    def transform(groups: object) -> tuple[float, float] | None:
        for item in getattr(groups, "PixelValueTransformationSequence", None) or []:
            return _number(item.get("RescaleSlope"), 1.0), _number(item.get("RescaleIntercept"), 0.0)
        return None

    shared_items = ds.get("SharedFunctionalGroupsSequence") or [None]
    shared = transform(shared_items[0]) or top
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    return [(transform(per_frame[i]) if i < len(per_frame) else None) or shared for i in range(frames)]
