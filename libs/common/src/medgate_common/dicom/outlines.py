"""Lesion outlines on a slice for review pictures: one colour per lesion, enlarged to stay legible.

Shared by the segmentation service's PNG overlays and the reasoning service's key images,
so a lesion has the same colour and the same outline in both.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

MIN_WIDTH = 256
#: Lesion k is drawn in COLOURS[(k - 1) % len(COLOURS)].
COLOURS = ((255, 64, 64), (64, 200, 255), (255, 200, 0), (120, 255, 120), (255, 96, 255), (255, 160, 64))


def colour_of(lesion_id: int) -> tuple[int, int, int]:
    return COLOURS[(lesion_id - 1) % len(COLOURS)]


def enlargement(width: int) -> int:
    """The whole factor that brings a slice ``width`` pixels wide to at least ``MIN_WIDTH``."""
    return max(1, -(-MIN_WIDTH // int(width)))


def draw_outlines(rgb: npt.NDArray[np.uint8], labels: npt.NDArray[np.integer]) -> npt.NDArray[np.bool_]:
    """Paint each lesion's one-pixel border into ``rgb`` (in place); return the border mask."""
    outline = np.zeros(labels.shape, dtype=bool)
    for lesion_id in lesion_ids(labels):
        inside = labels == lesion_id
        edge = inside & ~ndimage.binary_erosion(inside)
        rgb[edge] = colour_of(lesion_id)
        outline |= edge
    return outline


def lesion_ids(labels: npt.NDArray[np.integer]) -> list[int]:
    return [int(v) for v in np.unique(labels) if v]


def number_positions(labels: npt.NDArray[np.integer], width: int) -> list[tuple[int, tuple[int, int]]]:
    """Where each lesion's number goes: just right of and above its extent, kept in the picture."""
    placed = []
    for lesion_id in lesion_ids(labels):
        rows, cols = np.nonzero(labels == lesion_id)
        placed.append((lesion_id, (min(int(cols.max()) + 2, width - 12), max(int(rows.min()) - 10, 0))))
    return placed
