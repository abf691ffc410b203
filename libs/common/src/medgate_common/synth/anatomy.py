"""Anatomical phantoms: organ label maps and each tissue's nominal signal.

CT values are Hounsfield units typical of an unenhanced abdomen; MR values are arbitrary
units of a T1-weighted brain scan (fat bright, CSF dark, white matter brighter than grey).
Sizes jitter per study so that no two patients are identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medgate_common.synth.shapes import BoolArray, Grid, smooth_field


@dataclass(frozen=True)
class Tissue:
    label: int
    name: str
    value: float  # HU for CT, arbitrary T1 units for MR
    texture: float  # std of the smooth within-organ variation, same units


CT_TISSUES: tuple[Tissue, ...] = (
    Tissue(0, "air", -1000.0, 0.0),
    Tissue(1, "soft_tissue", 45.0, 6.0),
    Tissue(2, "fat", -100.0, 8.0),
    Tissue(3, "liver", 60.0, 5.0),
    Tissue(4, "spleen", 48.0, 4.0),
    Tissue(5, "kidney", 32.0, 4.0),
    Tissue(6, "bone", 500.0, 60.0),
    Tissue(7, "aorta", 42.0, 2.0),
    Tissue(8, "lung", -850.0, 30.0),
)

MR_TISSUES: tuple[Tissue, ...] = (
    Tissue(0, "air", 0.0, 0.0),
    Tissue(1, "scalp", 900.0, 40.0),
    Tissue(2, "skull", 90.0, 15.0),
    Tissue(3, "csf", 220.0, 10.0),
    Tissue(4, "grey_matter", 560.0, 15.0),
    Tissue(5, "white_matter", 800.0, 12.0),
    Tissue(6, "deep_grey", 640.0, 12.0),
)

#: Organs that may host lesions, by modality.
LESION_HOSTS: dict[str, tuple[str, ...]] = {
    "CT": ("liver", "liver", "spleen", "kidney"),
    "MR": ("white_matter",),
}


def tissues(modality: str) -> tuple[Tissue, ...]:
    return CT_TISSUES if modality == "CT" else MR_TISSUES


def _jitter(rng: np.random.Generator, value: float, rel: float = 0.08) -> float:
    return float(value * (1.0 + rng.uniform(-rel, rel)))


def ct_abdomen(grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """Axial abdomen: body wall and fat, liver, spleen, kidneys, spine, aorta, lung bases."""
    labels = np.zeros(grid.shape, dtype=np.uint8)
    z, _, _ = grid.axes()
    zr = (float(z.min()) - 1.0, float(z.max()) + 1.0)
    bx, by = _jitter(rng, 165.0), _jitter(rng, 120.0)
    body_y = float(rng.uniform(-5.0, 5.0))
    wobble = smooth_field(rng, grid.shape, (4, 6, 6))
    body = grid.cylinder_z((0.0, body_y), (bx, by), zr)
    fat_t = float(rng.uniform(12.0, 28.0))
    inner = grid.cylinder_z((0.0, body_y), (bx - fat_t, by - fat_t), zr)
    labels[body] = 2
    labels[inner] = 1
    liver_z = _jitter(rng, 35.0, 0.3)
    organs: list[tuple[int, BoolArray]] = [
        (8, grid.ellipsoid((-75.0, 10.0, liver_z + 120.0), (60.0, 70.0, 70.0))),
        (8, grid.ellipsoid((75.0, 10.0, liver_z + 115.0), (60.0, 70.0, 70.0))),
        (
            3,
            grid.deformed_ellipsoid(
                (-55.0, 0.0, liver_z), (_jitter(rng, 80.0), _jitter(rng, 68.0), _jitter(rng, 75.0)), wobble, 0.25
            ),
        ),
        (
            4,
            grid.deformed_ellipsoid(
                (80.0, 35.0, liver_z + 10.0), (_jitter(rng, 30.0), _jitter(rng, 48.0), _jitter(rng, 55.0)), wobble, 0.2
            ),
        ),
        (
            5,
            grid.ellipsoid((-68.0, 55.0, liver_z - 75.0), (_jitter(rng, 28.0), _jitter(rng, 24.0), _jitter(rng, 50.0))),
        ),
        (5, grid.ellipsoid((68.0, 55.0, liver_z - 65.0), (_jitter(rng, 28.0), _jitter(rng, 24.0), _jitter(rng, 50.0)))),
        (7, grid.cylinder_z((12.0, 40.0), (11.0, 11.0), zr)),
        (6, grid.cylinder_z((0.0, 72.0), (20.0, 17.0), zr)),
        (6, grid.cylinder_z((0.0, 100.0), (6.0, 14.0), zr)),
    ]
    for label, mask in organs:
        labels[mask & inner] = label
    return labels


def mr_brain(grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """Axial brain: scalp, skull, CSF, folded cortex, white matter, deep grey nuclei, ventricles."""
    labels = np.zeros(grid.shape, dtype=np.uint8)
    rx, ry, rz = _jitter(rng, 72.0, 0.05), _jitter(rng, 92.0, 0.05), _jitter(rng, 80.0, 0.05)
    cz = float(rng.uniform(-10.0, 10.0))
    folds = smooth_field(rng, grid.shape, (12, 24, 24))
    layers = (
        (1, 1.0, None, 0.0),
        (2, 0.92, None, 0.0),
        (3, 0.85, None, 0.0),
        (4, 0.81, folds, 0.08),
        (5, 0.66, folds, 0.25),
    )
    for label, scale, field, amount in layers:
        labels[grid.deformed_ellipsoid((0.0, 0.0, cz), (rx * scale, ry * scale, rz * scale), field, amount)] = label
    for side in (-1.0, 1.0):
        labels[grid.ellipsoid((side * 20.0, 5.0, cz - 5.0), (10.0, 13.0, 10.0))] = 6
        labels[grid.ellipsoid((side * 9.0, -4.0, cz + 8.0), (5.0, 22.0, 11.0))] = 3
    return labels
