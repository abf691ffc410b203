"""The series the reasoning service reports on: its volume, its instances in volume order, and
the lesion map read back from the seg service's SEG.

The reasoning service never segments; it reads the SEG the seg service wrote (lesion ``k`` is
segment ``k``) onto the source grid, so key slices, key images and the triage input come from
the same voxels the lesion list and the SR describe. Refusals are coded:

* ``empty_study`` (:class:`EmptyStudyError`): no instance, or no series to report on;
* ``not_an_image``: an SR, SEG, KO, ... sent as the series;
* ``missing_segmentation`` (:class:`MissingSegmentationError`): lesions without their SEG, or
  a SEG whose frames point at images outside the series;
* ``quality_rejected`` (:class:`QualityRejectedError`): the quality gate rejected the study.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from scipy import ndimage

from medgate_common.dicom.volume import Volume, load_series
from medgate_common.errors import InputError, NotAnImageError

LabelMap = npt.NDArray[np.uint16]
NON_IMAGE_MODALITIES = frozenset({"SR", "SEG", "KO", "PR", "DOC", "REG", "RTSTRUCT", "RTPLAN"})


class EmptyStudyError(InputError):
    """Nothing to reason about: no instance, or no series."""

    code = "empty_study"
    http_status = 422


class QualityRejectedError(InputError):
    """The quality gate rejected the study: no report is drafted on images a reader cannot trust."""

    code = "quality_rejected"
    http_status = 422


class MissingSegmentationError(InputError):
    """No segmentation result (or no SEG) for the series: the report must cite the lesions it
    describes, so it is not drafted without them."""

    code = "missing_segmentation"
    http_status = 422


@dataclass(frozen=True)
class KeySlice:
    """The slice index (volume order) a single-slice model looks at, and why that one."""

    index: int
    reason: str


@dataclass(frozen=True)
class ReportSeries:
    """One series in volume order; ``sources[z]`` is the instance (and frame, for a multi-frame
    image) that slice ``z`` comes from."""

    volume: Volume
    sources: tuple[tuple[Dataset, int | None], ...]

    @property
    def datasets(self) -> list[Dataset]:
        """The instances, each once, in volume order (what the SR's image library lists)."""
        seen: dict[str, Dataset] = {}
        for ds, _ in self.sources:
            seen.setdefault(str(ds.SOPInstanceUID), ds)
        return list(seen.values())

    @property
    def depth(self) -> int:
        return int(self.volume.shape[0])

    def spacing_rc(self) -> tuple[float, float]:
        _, rows, cols = self.volume.spacing
        return float(rows), float(cols)


def read_series(datasets: Sequence[Dataset]) -> ReportSeries:
    """The instances of one image series, in volume order (any upload order)."""
    if not datasets:
        raise EmptyStudyError("the study holds no instance to report on")
    modality = str(datasets[0].get("Modality", "")).upper()
    if modality in NON_IMAGE_MODALITIES or "PixelData" not in datasets[0]:
        raise NotAnImageError(f"a {modality or 'DICOM'} object has no image to report on", modality=modality)
    volume = load_series(datasets)
    by_uid = {str(ds.SOPInstanceUID): ds for ds in datasets}
    frames = volume.frame_numbers or (1,) * len(volume.sop_instance_uids)
    sources = []
    for uid, frame in zip(volume.sop_instance_uids, frames, strict=True):
        ds = by_uid[uid]
        sources.append((ds, frame if int(ds.get("NumberOfFrames", 1) or 1) > 1 else None))
    return ReportSeries(volume, tuple(sources))


def lesion_labels(seg: Dataset | None, series: ReportSeries, lesion_ids: Sequence[int]) -> LabelMap:
    """The SEG's segments on the series' grid (``labels == k`` is lesion ``k``); zeros when no
    lesion was found. Every lesion must have pixels in the SEG."""
    labels: LabelMap = np.zeros(series.volume.shape, dtype=np.uint16)
    if not lesion_ids:
        return labels
    if seg is None:
        raise MissingSegmentationError(f"{len(lesion_ids)} lesion(s) but no SEG to read their outlines from")
    index = {(str(ds.SOPInstanceUID), frame or 1): z for z, (ds, frame) in enumerate(series.sources)}
    pixels = np.asarray(seg.pixel_array)
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    for number, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        segment = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        source = item.DerivationImageSequence[0].SourceImageSequence[0]
        key = (str(source.ReferencedSOPInstanceUID), int(source.get("ReferencedFrameNumber", 1) or 1))
        if key not in index:
            raise MissingSegmentationError("the SEG refers to an image that is not in the series")
        if pixels[number].shape != labels.shape[1:]:
            raise MissingSegmentationError("the SEG's frames do not have the series' matrix")
        labels[index[key]][pixels[number] > 0] = segment
    missing = sorted(set(lesion_ids) - {int(v) for v in np.unique(labels) if v})
    if missing:
        raise MissingSegmentationError(f"the SEG has no pixels for lesion(s) {missing}", lesions=missing)
    return labels


def key_slice(labels: LabelMap | None, depth: int) -> KeySlice:
    """The slice with the largest lesion area (all lesions together), as the triage classifier
    was trained on (the slice holding most lesion voxels); without lesions the middle slice."""
    if labels is not None and labels.any():
        area = np.count_nonzero(labels.reshape(labels.shape[0], -1), axis=1)
        z = int(np.argmax(area))
        return KeySlice(z, f"largest lesion area ({int(area[z])} pixels)")
    return KeySlice(depth // 2, "middle slice (no lesion found)")


def largest_slice_of(labels: LabelMap, lesion_id: int) -> int:
    """The slice where lesion ``lesion_id`` covers most pixels."""
    return int(np.argmax(np.count_nonzero((labels == lesion_id).reshape(labels.shape[0], -1), axis=1)))


def grounded_on(
    labels: LabelMap,
    index: int,
    lesion_id: int,
    heatmap: npt.NDArray[np.floating],
    box: tuple[int, int, int, int, int, int] | None,
    *,
    threshold: float = 0.5,
    margin_px: float = 1.5,
) -> bool:
    """Whether a grounding on slice ``index`` points at lesion ``lesion_id`` and at no other.

    The points are the map's peak pixels (its highest value, which must reach ``threshold``:
    a map with no grounded region points nowhere); without such a map, the centre of the
    grounding box, which must be on slice ``index``. Each must lie on the lesion's mask on that
    slice or within ``margin_px`` of it (1.5: touching it, diagonally too; for a box, of the
    lesion's in-plane extent), and nearer to it than to any other lesion there, so that an
    answer about a neighbour is never taken for one about this lesion, and a map with equal
    peaks on two lesions is about neither.
    """
    plane = labels[index]
    heat = np.nan_to_num(np.asarray(heatmap, dtype=np.float64))
    ids = [int(v) for v in np.unique(plane) if v]
    if lesion_id not in ids:
        return False
    if heat.shape == plane.shape and heat.size and float(heat.max()) >= threshold:
        peaks = heat >= heat.max()
        # distance of each peak pixel to each lesion's nearest pixel
        distances = {k: ndimage.distance_transform_edt(plane != k)[peaks] for k in ids}
    elif box is not None and box[0] == index == box[3]:
        centre = np.array([(box[1] + box[4]) / 2.0, (box[2] + box[5]) / 2.0])
        distances = {}
        for k in ids:  # distance to the lesion's bounding rectangle
            pixels = np.argwhere(plane == k)
            gap = np.maximum(np.maximum(pixels.min(axis=0) - centre, centre - pixels.max(axis=0)), 0.0)
            distances[k] = np.array([np.hypot(*gap)])
    else:
        return False
    own = distances.pop(lesion_id)
    nearest_other = np.min(list(distances.values()), axis=0) if distances else np.inf
    return bool(np.all(own <= margin_px) and np.all(own < nearest_other))


def slice_numbered(series: ReportSeries, number: int) -> KeySlice:
    """The slice a reader calls ``number`` (Instance Number; frame number in a multi-frame image)."""
    for z, (ds, frame) in enumerate(series.sources):
        if (frame if frame is not None else int(ds.get("InstanceNumber", 0) or 0)) == number:
            return KeySlice(z, f"image {number}, as asked")
    raise InputError(f"the series has no image {number}", instance_number=number)


def slice_number(series: ReportSeries, index: int) -> int:
    """The number a reader sees for slice ``index``."""
    ds, frame = series.sources[index]
    return frame if frame is not None else int(ds.get("InstanceNumber", index + 1) or index + 1)
