"""A DICOM series checked for segmentation and read into one regular volume.

A SEG must lie exactly on its source images, so a series the pipeline cannot map voxel for
voxel is refused with the reason, never resampled into a guess:

* ``not_an_image`` (:class:`NotAnImageError`): an SR, SEG, KO, PR or other object without
  pixel data;
* ``unsupported_modality`` (:class:`UnsupportedModalityError`): not one of the card's
  modalities;
* :class:`GeometryError` (``inconsistent_geometry``) with ``details["reason"]``:
  ``single_slice``, ``mixed_orientation``, ``mixed_pixel_spacing``, ``duplicate_position``, ``gantry_tilt`` (slices
  displaced inside their own plane: the stack is sheared), ``missing_slices`` (a gap of
  whole slices), ``inconsistent_spacing`` (steps that differ by more than 1 %, not whole
  multiples of the usual step).

What is resampled instead: any regular grid, whatever its slice and pixel spacing, goes to
the model's spacing and the answer comes back to the same grid (``resample``). Oblique but
orthogonal stacks are accepted: voxels keep the source's axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from medgate_common.dicom import geometry
from medgate_common.dicom.io import require
from medgate_common.dicom.volume import Volume, load_series
from medgate_common.errors import (
    GeometryError,
    InputError,
    MissingTagError,
    NotAnImageError,
    UnsupportedModalityError,
)

#: Modalities of objects that never carry an image for the model.
NON_IMAGE_MODALITIES = frozenset({"SR", "SEG", "KO", "PR", "DOC", "REG", "RTSTRUCT", "RTPLAN", "RWV"})
#: Steps longer than this many times the usual step are gaps of missing slices.
GAP_FACTOR = 1.5


@dataclass(frozen=True)
class SourceSeries:
    """The volume, the instances in volume order (one per slice; one for a multi-frame image)
    and the number a reader sees for each slice (Instance Number, or the frame number)."""

    volume: Volume
    datasets: tuple[Dataset, ...]
    slice_numbers: tuple[int, ...]

    @property
    def multiframe(self) -> bool:
        return len(self.datasets) == 1 and len(self.volume.sop_instance_uids) > 1


def _sop_class_name(ds: Dataset) -> str:
    uid = ds.get("SOPClassUID")
    return UID(str(uid)).name if uid else "unknown"


def check_image(ds: Dataset, number: int) -> None:
    modality = str(ds.get("Modality", "") or "").upper()
    if modality in NON_IMAGE_MODALITIES or "PixelData" not in ds:
        why = f"a {modality} object" if modality in NON_IMAGE_MODALITIES else "an instance without pixel data"
        raise NotAnImageError(
            f"instance {number} is {why} ({_sop_class_name(ds)}), not an image to segment",
            modality=modality,
            sop_class=_sop_class_name(ds),
        )


def check_modality(ds: Dataset, supported: Sequence[str]) -> str:
    modality = str(ds.get("Modality", "") or "").upper()
    if modality not in {m.upper() for m in supported}:
        raise UnsupportedModalityError(
            f"the lesion model segments {' and '.join(supported)} images; this series is {modality or 'unlabelled'}",
            modality=modality,
            supported=list(supported),
        )
    return modality


def _geometry_error(reason: str, message: str, **details: object) -> GeometryError:
    return GeometryError(message, reason=reason, **details)


def check_stack(datasets: Sequence[Dataset]) -> None:
    """Refuse single-frame stacks that do not form a regular grid, naming what is wrong."""
    for ds in datasets:
        require(ds, "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
    planes = [geometry.plane(ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing) for ds in datasets]
    if len(planes) == 1:
        raise _geometry_error("single_slice", "a single slice is not a volume; send every slice of the series")
    first = planes[0]
    for p in planes[1:]:
        if max(np.max(np.abs(p.row_dir - first.row_dir)), np.max(np.abs(p.col_dir - first.col_dir))) > 1e-4:
            raise _geometry_error(
                "mixed_orientation", "the series mixes image orientations (e.g. a localizer or a reformat)"
            )
        if not np.allclose(p.pixel_spacing, first.pixel_spacing, rtol=1e-4):
            raise _geometry_error("mixed_pixel_spacing", "the images of the series have different pixel spacings")
    normal = first.normal
    along = np.array([float(np.dot(p.position, normal)) for p in planes])
    order = np.argsort(along, kind="stable")
    steps = np.diff(along[order])
    if np.any(steps < 1e-3):
        raise _geometry_error("duplicate_position", "two images share one position (duplicates or several phases)")
    origin = planes[order[0]].position
    shear = [np.linalg.norm((o := planes[i].position - origin) - np.dot(o, normal) * normal) for i in order]
    sideways = np.asarray(shear) / np.maximum(along[order] - along[order[0]], 1e-6)
    if float(np.max(shear)) > 0.1 * min(first.pixel_spacing):
        tilt = float(np.degrees(np.arctan(np.max(sideways[1:]))))
        raise _geometry_error(
            "gantry_tilt",
            f"the slices are displaced within their own plane (gantry tilt of about {tilt:.1f}°); "
            "send a series reconstructed without tilt",
            tilt_degrees=round(tilt, 2),
        )
    usual = float(np.min(steps)) if steps.size else 0.0
    usual = float(np.median(steps[steps < GAP_FACTOR * usual]))
    multiples = steps / usual
    if np.max(np.abs(steps - usual)) <= geometry.SPACING_TOLERANCE * usual + 1e-3:
        return
    gaps = multiples > GAP_FACTOR
    whole = np.abs(multiples - np.rint(multiples)) <= 0.05
    if np.any(gaps) and np.all(whole):
        missing = int(np.sum(np.rint(multiples[gaps]) - 1))
        raise _geometry_error(
            "missing_slices",
            f"{missing} slice(s) missing from the series (a gap of {float(np.max(steps)):.2f} mm where slices "
            f"are {usual:.2f} mm apart); send the complete series",
            missing=missing,
            slice_spacing_mm=round(usual, 4),
        )
    raise _geometry_error(
        "inconsistent_spacing",
        f"slice spacing varies from {float(steps.min()):.2f} to {float(steps.max()):.2f} mm; "
        "the series does not form one regular volume",
        min_step_mm=round(float(steps.min()), 4),
        max_step_mm=round(float(steps.max()), 4),
    )


def _slice_number(ds: Dataset, fallback: int) -> int:
    value = ds.get("InstanceNumber")
    return int(value) if value not in (None, "") else fallback


def read_series(datasets: Sequence[Dataset], modalities: Sequence[str]) -> SourceSeries:
    """Check ``datasets`` (one series, any order) and read them into a volume."""
    if not datasets:
        raise InputError("no instances given")
    for number, ds in enumerate(datasets, start=1):
        check_image(ds, number)
    if len({str(ds.get("SeriesInstanceUID", "")) for ds in datasets}) != 1:
        raise InputError("the instances belong to more than one series; send one series")
    check_modality(datasets[0], modalities)
    multiframe = any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for ds in datasets)
    if multiframe and len(datasets) > 1:
        raise InputError("send one multi-frame image or a stack of single-frame images, not both")
    if not multiframe:
        check_stack(datasets)
    if not datasets[0].get("FrameOfReferenceUID"):
        raise MissingTagError(
            "FrameOfReferenceUID is missing; a SEG could not be placed on the images", tag="FrameOfReferenceUID"
        )
    volume = load_series(datasets)
    if volume.shape[0] < 2:
        raise _geometry_error("single_slice", "a single slice is not a volume; send every slice of the series")
    if multiframe:
        return SourceSeries(volume, (datasets[0],), volume.frame_numbers)
    by_uid = {str(ds.SOPInstanceUID): ds for ds in datasets}
    ordered = tuple(by_uid[uid] for uid in volume.sop_instance_uids)
    numbers = tuple(_slice_number(ds, i + 1) for i, ds in enumerate(ordered))
    return SourceSeries(volume, ordered, numbers)
