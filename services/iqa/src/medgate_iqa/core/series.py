"""From DICOM instances to the slices the gate looks at, with a reason for every refusal.

Quality needs pixels, not geometry: a series with irregular spacing still has slices worth
assessing, so instances are read one by one (no volume is built). A series that cannot be
assessed raises :class:`NotAssessableError` with a reason a technologist can act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from medgate_common.dicom.io import Source, decode_pixels, read_dataset, rescale_parameters
from medgate_common.errors import InputError, MedgateError, MissingTagError
from medgate_iqa.core.compression import LossyCompression, lossy_compression
from medgate_iqa.core.labels import MODALITY_INDEX

MIN_SIDE = 32
MAX_SLICES = 12


class NotAssessableError(InputError):
    """The series exists and was read, but its image quality cannot be judged."""

    code = "not_assessable"
    http_status = 422


@dataclass(frozen=True)
class SeriesSlices:
    series_instance_uid: str
    modality: str
    slices: tuple[npt.NDArray[np.float32], ...]  # physical units (HU / signal), native size
    positions: tuple[int, ...]  # index of each slice in the series, in reading order
    total: int
    compression: LossyCompression | None = None  # from the headers of every instance with pixels


def physical_frames(ds: Dataset) -> list[npt.NDArray[np.float32]]:
    """Every frame of one instance in physical units (HU / signal), MONOCHROME1 inverted;
    refuses what the gate cannot judge."""
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if int(ds.get("SamplesPerPixel", 1)) != 1 or not photometric.startswith("MONOCHROME"):
        raise NotAssessableError(
            f"colour image ({photometric or 'unknown photometric interpretation'}): "
            "the quality model reads greyscale CT and MR only",
            reason="colour",
        )
    if "PixelData" not in ds:
        raise NotAssessableError("the instance has no pixel data", reason="no_pixel_data")
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    if min(rows, cols) < MIN_SIDE:
        raise NotAssessableError(
            f"image is {rows}x{cols} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed to judge quality",
            reason="too_small",
        )
    pixels = np.asarray(decode_pixels(ds), dtype=np.float32)
    frames = pixels if pixels.ndim == 3 else pixels[None]
    if photometric == "MONOCHROME1":
        frames = frames.max() - frames
    return [
        f * np.float32(slope) + np.float32(intercept)
        for f, (slope, intercept) in zip(frames, rescale_parameters(ds, len(frames)), strict=True)
    ]


def _order_key(ds: Dataset, fallback: int) -> tuple[float, int]:
    position = ds.get("ImagePositionPatient")
    orientation = ds.get("ImageOrientationPatient")
    if position is not None and orientation is not None and len(orientation) == 6:
        normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
        return float(np.dot(normal, np.asarray(position, float))), fallback
    return float(ds.get("InstanceNumber", fallback) or fallback), fallback


def _frame_count(ds: Dataset) -> int:
    return max(1, int(ds.get("NumberOfFrames", 1) or 1))


def read_series(sources: Iterable[Source | Dataset], max_slices: int = MAX_SLICES) -> SeriesSlices:
    """Read the instances of one series and keep up to ``max_slices`` spread over its middle
    80 % (the end slices of a stack are often outside the anatomy). Slices are ordered by
    header first; only the instances holding a picked slice have their pixels decoded."""
    datasets = [s if isinstance(s, Dataset) else read_dataset(s) for s in sources]
    if not datasets:
        raise NotAssessableError("the series has no instances", reason="empty")
    first = datasets[0]
    modality = str(first.get("Modality", "") or "").upper()
    uid = str(first.get("SeriesInstanceUID", "") or "")
    if not uid:
        raise MissingTagError("required attribute SeriesInstanceUID is missing or empty", tag="SeriesInstanceUID")
    if modality not in MODALITY_INDEX:
        raise NotAssessableError(
            f"modality {modality or 'unknown'} is not supported; the quality gate assesses "
            f"{' and '.join(MODALITY_INDEX)}",
            reason="unsupported_modality",
            modality=modality,
        )
    with_pixels = [d for d in datasets if "PixelData" in d]
    if not with_pixels:
        raise NotAssessableError("no instance of the series has pixel data", reason="no_pixel_data", modality=modality)
    ordered = [ds for _, ds in sorted(enumerate(with_pixels), key=lambda item: _order_key(item[1], item[0]))]
    index = [(i, f) for i, ds in enumerate(ordered) for f in range(_frame_count(ds))]
    total = len(index)
    lo, hi = int(total * 0.1), max(int(np.ceil(total * 0.9)), int(total * 0.1) + 1)
    picks = np.unique(np.linspace(lo, hi - 1, num=min(max_slices, hi - lo)).round().astype(int))
    decoded: dict[int, list[npt.NDArray[np.float32]]] = {}
    chosen: list[npt.NDArray[np.float32]] = []
    positions: list[int] = []
    for pick in picks:
        instance, frame = index[int(pick)]
        if instance not in decoded:
            try:
                decoded[instance] = physical_frames(ordered[instance])
            except NotAssessableError as exc:
                exc.details.setdefault("modality", modality)
                raise
            except MedgateError as exc:
                raise NotAssessableError(
                    f"pixel data cannot be read: {exc.message}", reason=exc.code, modality=modality
                ) from exc
        frames = decoded[instance]
        if frame < len(frames) and float(np.ptp(frames[frame])) > 0:
            chosen.append(frames[frame])
            positions.append(int(pick))
    if not chosen:
        raise NotAssessableError("every slice is blank (one constant value)", reason="blank", modality=modality)
    return SeriesSlices(
        series_instance_uid=uid,
        modality=modality,
        slices=tuple(chosen),
        positions=tuple(positions),
        total=total,
        compression=lossy_compression(with_pixels),
    )
