"""A DICOM series as one regular 3-D volume with its patient-space geometry."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from medgate_common.dicom import geometry
from medgate_common.dicom.io import decode_pixels, read_dataset, require, rescale_parameters
from medgate_common.dicom.pixels import rescale
from medgate_common.errors import GeometryError, InputError

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Volume:
    """Voxel values in output units (HU for CT) indexed ``[slice, row, col]``.

    ``affine`` maps ``(col, row, slice, 1)`` to LPS millimetres; ``sop_instance_uids`` and
    ``frame_numbers`` name the source of each slice, in volume order.
    """

    array: FloatArray
    affine: npt.NDArray[np.float64]
    modality: str
    series_instance_uid: str
    frame_of_reference_uid: str | None
    sop_instance_uids: tuple[str, ...]
    frame_numbers: tuple[int, ...] = field(default=())
    window: tuple[float, float] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.array.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm as (slice, row, col)."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(norms[2]), float(norms[1]), float(norms[0]))

    @property
    def voxel_volume_ml(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    def index_to_lps(self, index: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Voxel indices (..., 3) in [slice, row, col] order to LPS mm."""
        idx = np.asarray(index, dtype=np.float64)
        crs = idx[..., ::-1]
        return crs @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, points: npt.ArrayLike) -> npt.NDArray[np.float64]:
        pts = np.asarray(points, dtype=np.float64)
        inv = np.linalg.inv(self.affine)
        crs: npt.NDArray[np.float64] = pts @ inv[:3, :3].T + inv[:3, 3]
        return crs[..., ::-1]

    def ras_affine(self) -> npt.NDArray[np.float64]:
        """Affine for ``array.transpose(2, 1, 0)`` in NIfTI's RAS convention."""
        return geometry.lps_to_ras(self.affine)


@dataclass(frozen=True)
class _Frame:
    plane: geometry.PlaneGeometry
    pixels: npt.NDArray[np.generic]
    slope: float
    intercept: float
    sop_instance_uid: str
    frame_number: int


def _item(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    return seq[0] if seq else None


def _frames_of(ds: Dataset) -> list[_Frame]:
    require(ds, "SOPInstanceUID", "Rows", "Columns")
    pixels = decode_pixels(ds)
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise InputError(
            "colour images cannot form a grayscale volume", photometric=str(ds.get("PhotometricInterpretation"))
        )
    uid = str(ds.SOPInstanceUID)
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if "PerFrameFunctionalGroupsSequence" not in ds:
        if n_frames != 1:
            raise GeometryError("multi-frame image without functional groups has no per-frame geometry")
        require(ds, "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
        p = geometry.plane(ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing)
        slope, intercept = rescale_parameters(ds)[0]
        return [_Frame(p, pixels, slope, intercept, uid, 1)]
    shared = _item(ds, "SharedFunctionalGroupsSequence") or Dataset()
    frames: list[_Frame] = []
    stack = pixels if n_frames > 1 else pixels[np.newaxis]
    transforms = rescale_parameters(ds, len(ds.PerFrameFunctionalGroupsSequence))
    for i, per_frame in enumerate(ds.PerFrameFunctionalGroupsSequence):

        def find(keyword: str, pf: Dataset = per_frame) -> Dataset | None:
            return _item(pf, keyword) or _item(shared, keyword)

        position = find("PlanePositionSequence")
        orientation = find("PlaneOrientationSequence")
        measures = find("PixelMeasuresSequence")
        if position is None or orientation is None or measures is None:
            raise GeometryError("enhanced image lacks plane position, orientation or pixel measures")
        p = geometry.plane(position.ImagePositionPatient, orientation.ImageOrientationPatient, measures.PixelSpacing)
        slope, intercept = transforms[i]
        frames.append(_Frame(p, stack[i], slope, intercept, uid, i + 1))
    return frames


def _fallback_spacing(ds: Dataset) -> float | None:
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = ds.get(keyword)
        if value not in (None, ""):
            return float(value)
    return None


def load_series(sources: Iterable[Path | str | bytes | Dataset]) -> Volume:
    """Read the instances of one series (any order) into a :class:`Volume`.

    All instances must share a Series Instance UID, orientation, pixel spacing and matrix;
    slices are sorted along the plane normal and must be evenly spaced.
    """
    datasets: Sequence[Dataset] = [s if isinstance(s, Dataset) else read_dataset(s) for s in sources]
    if not datasets:
        raise InputError("no instances given")
    first = datasets[0]
    require(first, "SeriesInstanceUID", "Modality")
    series_uid = str(first.SeriesInstanceUID)
    frames: list[_Frame] = []
    for ds in datasets:
        if str(ds.get("SeriesInstanceUID", "")) != series_uid:
            raise InputError("instances belong to more than one series")
        frames.extend(_frames_of(ds))
    shapes = {f.pixels.shape for f in frames}
    if len(shapes) != 1:
        raise GeometryError("images in the series have different matrix sizes")
    order, spacing = geometry.sort_planes([f.plane for f in frames], _fallback_spacing(first))
    ordered = [frames[i] for i in order]
    array = np.stack([rescale(f.pixels, f.slope, f.intercept) for f in ordered])
    window = None
    if first.get("WindowCenter") is not None and first.get("WindowWidth") is not None:
        wc, ww = first.WindowCenter, first.WindowWidth
        window = (float(wc[0] if isinstance(wc, Sequence) else wc), float(ww[0] if isinstance(ww, Sequence) else ww))
    return Volume(
        array=array,
        affine=geometry.affine(ordered[0].plane, spacing),
        modality=str(first.Modality),
        series_instance_uid=series_uid,
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID")) if first.get("FrameOfReferenceUID") else None,
        sop_instance_uids=tuple(f.sop_instance_uid for f in ordered),
        frame_numbers=tuple(f.frame_number for f in ordered),
        window=window,
    )
