"""From a binary mask on the source grid to a list of lesions.

Connected components use 26-connectivity (fragments touching at a corner are one piece).
Islands smaller than the card's ``min_lesion_voxels`` at the model's spacing are removed;
the limit is converted to millilitres first, so that it means the same tissue volume on a
0.7 mm grid as on a 3 mm one. A lesion is then a cluster of the remaining components whose
surfaces lie within ``group_mm`` of each other (a fragmented lesion is one finding, with
its fragment count in ``components``); lesions are numbered by volume, largest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medgate_common.dicom.volume import Volume
from medgate_common.schemas.segmentation import Lesion

BoolArray = npt.NDArray[np.bool_]
LabelArray = npt.NDArray[np.uint16]
CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class LesionMap:
    """Lesion ``k`` (1-based, as in ``lesions``) occupies ``labels == k``."""

    labels: LabelArray
    lesions: tuple[Lesion, ...]
    removed_islands: int


def remove_small_islands(mask: BoolArray, min_voxels: float) -> tuple[BoolArray, int, int]:
    """The mask without components smaller than ``min_voxels``; how many were removed and kept."""
    components, count = ndimage.label(mask, structure=CONNECTIVITY_26)
    if count == 0:
        return mask.copy(), 0, 0
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[components], int(count - (keep.sum())), int(keep.sum())


def _group(mask: BoolArray, spacing: tuple[float, float, float], group_mm: float) -> tuple[npt.NDArray[np.int32], int]:
    """Label clusters of components closer than ``group_mm`` (each grows by half of it)."""
    if group_mm <= 0:
        labels, count = ndimage.label(mask, structure=CONNECTIVITY_26)
        return labels.astype(np.int32), int(count)
    margin = [int(np.ceil(group_mm / s)) + 1 for s in spacing]
    found = np.argwhere(mask)
    lo = np.maximum(found.min(axis=0) - margin, 0)
    hi = np.minimum(found.max(axis=0) + margin + 1, mask.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    distance = ndimage.distance_transform_edt(~mask[box], sampling=spacing)
    halo, count = ndimage.label(distance <= group_mm / 2.0, structure=CONNECTIVITY_26)
    labels = np.zeros(mask.shape, dtype=np.int32)
    labels[box] = np.where(mask[box], halo, 0)
    return labels, int(count)


def find_lesions(
    mask: BoolArray,
    volume: Volume,
    slice_numbers: Sequence[int],
    *,
    min_lesion_ml: float,
    group_mm: float,
) -> LesionMap:
    """Lesions of ``mask`` (``volume``'s grid) with volume, LPS centroid, slice range and mean value."""
    min_voxels = min_lesion_ml / volume.voxel_volume_ml if volume.voxel_volume_ml > 0 else 0.0
    kept, removed, _ = remove_small_islands(mask, min_voxels)
    labels = np.zeros(mask.shape, dtype=np.uint16)
    if not kept.any():
        return LesionMap(labels, (), removed)
    clusters, _ = _group(kept, volume.spacing, group_mm)
    objects = ndimage.find_objects(clusters)
    found: list[tuple[int, int, tuple[slice, ...]]] = []
    for cluster, box in enumerate(objects, start=1):
        if box is None:
            continue
        voxels = int(np.count_nonzero(clusters[box] == cluster))
        if voxels:
            found.append((voxels, cluster, box))
    found.sort(key=lambda item: (-item[0], item[1]))
    lesions: list[Lesion] = []
    for lesion_id, (voxels, cluster, box) in enumerate(found, start=1):
        local = clusters[box] == cluster
        labels[box][local] = lesion_id
        offset = np.array([s.start for s in box])
        index = np.argwhere(local) + offset
        _, components = ndimage.label(local, structure=CONNECTIVITY_26)
        centroid = volume.index_to_lps(index.mean(axis=0))
        numbers = [slice_numbers[k] for k in np.unique(index[:, 0])]
        lesions.append(
            Lesion(
                lesion_id=lesion_id,
                volume_ml=round(voxels * volume.voxel_volume_ml, 4),
                centroid_lps_mm=(
                    round(float(centroid[0]), 2),
                    round(float(centroid[1]), 2),
                    round(float(centroid[2]), 2),
                ),
                slice_range=(min(numbers), max(numbers)),
                mean_intensity=round(float(volume.array[box][local].mean()), 2),
                components=max(int(components), 1),
            )
        )
    return LesionMap(labels, tuple(lesions), removed)
