"""Fragmented, irregular lesions: each lesion is a cluster of fragments of its own size and contrast."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medgate_common.synth.anatomy import LESION_HOSTS, Tissue
from medgate_common.synth.shapes import Grid, smooth_field

#: Fragments smaller than this many voxels are dropped (they would be noise, not findings).
MIN_FRAGMENT_VOXELS = 8


@dataclass(frozen=True)
class LesionPlan:
    lesion_id: int
    host: str
    fragments: int
    contrasts: tuple[float, ...]  # signal offset of each fragment, HU or MR units


def draw_lesion_count(rng: np.random.Generator, max_lesions: int) -> int:
    """About a quarter of studies are normal; the rest carry 1..max lesions."""
    if max_lesions <= 0 or rng.random() < 0.25:
        return 0
    return int(rng.integers(1, max_lesions + 1))


def _lesion_sign(rng: np.random.Generator, modality: str) -> float:
    # CT: mostly hypodense (cysts, metastases), one in four hyperdense; MR: T1 hypointense.
    if modality == "CT" and rng.random() < 0.25:
        return 1.0
    return -1.0


def _fragment_contrast(rng: np.random.Generator, modality: str, host: Tissue, sign: float) -> float:
    if modality == "CT":
        return sign * float(rng.uniform(18.0, 60.0))
    # From faint to "black hole" white-matter lesions.
    return sign * float(rng.uniform(0.15, 0.55)) * host.value


def place_lesions(
    grid: Grid,
    organs: npt.NDArray[np.uint8],
    tissues: tuple[Tissue, ...],
    modality: str,
    count: int,
    rng: np.random.Generator,
    scale: float = 1.0,
    contrast_scale: float = 1.0,
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.float32], list[LesionPlan]]:
    """Lesion instance map (0 = none), the signal offset map, and the plan of each lesion.

    ``scale`` multiplies every lesion's radius (drawn from 5-16 mm). Fragments that fall
    outside the host change the random sequence after them, so a scaled study is another
    draw, not the same lesions enlarged. ``contrast_scale`` multiplies each fragment's
    drawn offset and leaves the random sequence alone (for MR, above about 1.8 a dark
    lesion's offset can exceed its host's signal; the image is clipped at zero).
    """
    instances = np.zeros(grid.shape, dtype=np.uint16)
    offsets = np.zeros(grid.shape, dtype=np.float32)
    plans: list[LesionPlan] = []
    by_name = {t.name: t for t in tissues}
    spacing = np.asarray(grid.spacing, dtype=np.float64)
    roughness = smooth_field(rng, grid.shape, (max(2, grid.shape[0] // 6), 32, 32))
    interiors: dict[int, npt.NDArray[np.bool_]] = {}
    for lesion_id in range(1, count + 1):
        host = by_name[LESION_HOSTS[modality][int(rng.integers(len(LESION_HOSTS[modality])))]]
        # Keep lesions off the organ boundary so that the label stays inside the host.
        if host.label not in interiors:
            interiors[host.label] = ndimage.binary_erosion(organs == host.label, iterations=2)
        inside = interiors[host.label] & (instances == 0)
        candidates = np.argwhere(inside)
        if candidates.size == 0:
            continue
        center_idx = candidates[int(rng.integers(len(candidates)))]
        center_mm = center_idx * spacing
        radius = float(rng.uniform(5.0, 16.0)) * scale
        n_frag = int(rng.integers(1, 5))
        sign = _lesion_sign(rng, modality)
        contrasts: list[float] = []
        for _ in range(n_frag):
            offset = rng.normal(0.0, radius * 0.9, size=3)
            frag_center = center_mm + offset
            frag_r = radius * rng.uniform(0.35, 0.9, size=3)
            lo = np.maximum(np.floor((frag_center - frag_r * 1.5) / spacing), 0).astype(int)
            hi = np.minimum(np.ceil((frag_center + frag_r * 1.5) / spacing) + 1, grid.shape).astype(int)
            if np.any(hi <= lo):
                continue
            box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
            coords = np.indices(tuple(int(b - a) for a, b in zip(lo, hi, strict=True)), dtype=np.float32)
            level = np.zeros(coords.shape[1:], dtype=np.float32)
            for axis in range(3):
                pos = (coords[axis] + lo[axis]) * spacing[axis]
                level += ((pos - frag_center[axis]) / frag_r[axis]) ** 2
            level += 0.6 * roughness[box]
            frag = (level <= 1.0) & inside[box]
            if int(frag.sum()) < MIN_FRAGMENT_VOXELS:
                continue
            contrast = _fragment_contrast(rng, modality, host, sign) * contrast_scale
            instances[box][frag] = lesion_id
            offsets[box][frag] = contrast
            contrasts.append(round(contrast, 2))
        if contrasts:
            plans.append(LesionPlan(lesion_id, host.name, len(contrasts), tuple(contrasts)))
    # Renumber so that instance ids are 1..K without gaps.
    remap = np.zeros(count + 2, dtype=np.uint16)
    for new_id, plan in enumerate(plans, start=1):
        remap[plan.lesion_id] = new_id
    instances = remap[instances]
    plans = [LesionPlan(i, p.host, p.fragments, p.contrasts) for i, p in enumerate(plans, start=1)]
    return instances, offsets, plans
