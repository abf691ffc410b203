"""Patient-space geometry of image planes (PS3.3 C.7.6.2).

Conventions used throughout MedGate:

* Patient coordinates are DICOM LPS, in millimetres.
* A volume array is indexed ``[slice, row, col]``; its 4x4 ``affine`` maps the column
  vector ``(col, row, slice, 1)`` to LPS. Column ``0`` of the affine is the in-row direction
  (first triplet of ImageOrientationPatient) times the column spacing (PixelSpacing[1]);
  column ``1`` is the in-column direction times the row spacing (PixelSpacing[0]); column
  ``2`` is the slice normal times the slice spacing, slices sorted along that normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from medgate_common.errors import GeometryError

Vec = npt.NDArray[np.float64]

#: Orientation vectors must agree within this cosine tolerance to form one volume.
ORIENTATION_TOLERANCE = 1e-4
#: Relative spacing deviation tolerated between consecutive slices.
SPACING_TOLERANCE = 0.01


@dataclass(frozen=True)
class PlaneGeometry:
    position: Vec  # ImagePositionPatient: centre of the first (top-left) pixel
    row_dir: Vec  # direction of increasing column index
    col_dir: Vec  # direction of increasing row index
    pixel_spacing: tuple[float, float]  # (between rows, between columns)

    @property
    def normal(self) -> Vec:
        return np.cross(self.row_dir, self.col_dir)


def plane(position: object, orientation: object, spacing: object) -> PlaneGeometry:
    pos = np.asarray(position, dtype=np.float64)
    ori = np.asarray(orientation, dtype=np.float64)
    sp = np.asarray(spacing, dtype=np.float64)
    if pos.shape != (3,) or ori.shape != (6,) or sp.shape != (2,):
        raise GeometryError("ImagePositionPatient, ImageOrientationPatient or PixelSpacing has the wrong length")
    row_dir, col_dir = ori[:3], ori[3:]
    if abs(np.linalg.norm(row_dir) - 1) > 1e-3 or abs(np.linalg.norm(col_dir) - 1) > 1e-3:
        raise GeometryError("ImageOrientationPatient vectors are not unit length")
    if abs(float(np.dot(row_dir, col_dir))) > 1e-3:
        raise GeometryError("ImageOrientationPatient vectors are not orthogonal")
    if np.any(sp <= 0):
        raise GeometryError("PixelSpacing must be positive")
    return PlaneGeometry(pos, row_dir, col_dir, (float(sp[0]), float(sp[1])))


def sort_planes(planes: list[PlaneGeometry], fallback_spacing: float | None = None) -> tuple[list[int], float]:
    """Order of the planes along their shared normal, and the slice spacing.

    Raises :class:`GeometryError` for mixed orientations or pixel spacings, two planes at
    the same position, or irregular gaps between slices.
    """
    if not planes:
        raise GeometryError("no image planes")
    first = planes[0]
    for p in planes[1:]:
        if (
            np.max(np.abs(p.row_dir - first.row_dir)) > ORIENTATION_TOLERANCE
            or np.max(np.abs(p.col_dir - first.col_dir)) > ORIENTATION_TOLERANCE
        ):
            raise GeometryError("series mixes image orientations (e.g. a localizer or a reformat)")
        if not np.allclose(p.pixel_spacing, first.pixel_spacing, rtol=1e-4):
            raise GeometryError("series mixes pixel spacings")
    normal = first.normal
    distances = np.array([float(np.dot(p.position, normal)) for p in planes])
    order = [int(i) for i in np.argsort(distances, kind="stable")]
    if len(planes) == 1:
        return order, float(fallback_spacing or 1.0)
    steps = np.diff(distances[order])
    if np.any(steps < 1e-3):
        raise GeometryError("two images share one position (duplicate or multi-phase series)")
    spacing = float(np.median(steps))
    if np.max(np.abs(steps - spacing)) > SPACING_TOLERANCE * spacing + 1e-3:
        raise GeometryError(
            "irregular slice spacing (missing slices or variable spacing)",
            min_step=round(float(steps.min()), 4),
            max_step=round(float(steps.max()), 4),
        )
    # Positions must also line up along the normal, not drift sideways (a sheared stack).
    offsets = [planes[i].position - planes[order[0]].position for i in order]
    in_plane = [o - np.dot(o, normal) * normal for o in offsets]
    if max(float(np.linalg.norm(v)) for v in in_plane) > 0.1 * min(first.pixel_spacing):
        raise GeometryError("slices are sheared (gantry tilt) and do not form a regular grid")
    return order, spacing


def affine(first: PlaneGeometry, slice_spacing: float) -> npt.NDArray[np.float64]:
    """4x4 index (col, row, slice) -> LPS matrix for planes sorted along the normal."""
    out = np.eye(4)
    out[:3, 0] = first.row_dir * first.pixel_spacing[1]
    out[:3, 1] = first.col_dir * first.pixel_spacing[0]
    out[:3, 2] = first.normal * slice_spacing
    out[:3, 3] = first.position
    return out


def lps_to_ras(affine_lps: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    out: npt.NDArray[np.float64] = flip @ affine_lps
    return out
