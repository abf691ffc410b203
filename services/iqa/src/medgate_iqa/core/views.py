"""How a slice is put in front of the quality model and the metrics.

Slices are resampled to one square grid (anti-aliased), then shown in two views: the
*display* view a radiologist reads (CT soft-tissue window, MR 0.5-99.5 percentile window)
and a *wide* view that keeps what the display window clips (metal, air, saturated signal,
dark-background ghosts). Both are dimensionless and roughly in [0, 1].
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

Image = npt.NDArray[np.float32]

GRID = 128
MODALITIES = ("CT", "MR")
CT_WINDOW = (40.0, 400.0)  # level, width in HU


def to_grid(image: npt.NDArray[np.floating] | npt.NDArray[np.integer], size: int = GRID) -> Image:
    """Centre-pad to square with the slice's background, then resample to ``size`` x ``size``
    with a Gaussian anti-alias prefilter when shrinking (area-like, no aliasing)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError("a slice must be two-dimensional")
    h, w = img.shape
    side = max(h, w)
    if h != w:
        background = float(np.percentile(img, 1))
        square = np.full((side, side), background, dtype=np.float32)
        square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = img
        img = square
    factor = size / side
    if factor < 1.0:
        img = ndimage.gaussian_filter(img, sigma=0.45 / factor)
    if side != size:
        img = ndimage.zoom(img, factor, order=1, grid_mode=True, mode="nearest")
    return img.astype(np.float32)


TABLE_HU = -500.0  # above this, solid matter (tissue, plastic, bone); below, air and lung
TABLE_SPAN = 0.4  # a table crosses at least this share of the field of view ...
TABLE_THICKNESS = 0.06  # ... and is thin: its area over its span at most this share of it


def without_table(image: Image, modality: str) -> Image:
    """A CT slice (2-D, float32) with the patient table (couch top, head holder) set to air.

    A full-field CT usually shows the table under the patient; the synthetic studies the
    network learnt from show none, and a table in a slice pushed the network towards
    motion and limited-angle calls (docs/results/iqa.md, "The patient table"). A table is
    found as solid matter (above -500 HU) that is not connected to the largest solid object
    (the patient), spans at least 40 % of the field of view, and is thin: its area divided
    by its span (its mean thickness) is at most 6 % of the field of view, flat or curved.
    Arms, legs and other body parts apart from the trunk are short or thick and stay.

    Limits: the sizes are shares of the image, not centimetres (a head holder in a wide
    field may fall under 40 %); a table that touches the patient, or is larger than the
    patient, stays; an artifact that touches the table goes with it. MR shows no table;
    other modalities are returned as they are."""
    if modality != "CT":
        return image
    image = np.asarray(image, dtype=np.float32)
    solid = image > TABLE_HU
    labels, count = ndimage.label(solid)
    if count < 2:
        return image
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    patient = int(np.argmax(sizes)) + 1
    side = max(image.shape)
    table = np.zeros(count + 1, dtype=bool)
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if k == patient or box is None:
            continue
        span = max(box[0].stop - box[0].start, box[1].stop - box[1].start)
        table[k] = span >= TABLE_SPAN * side and sizes[k - 1] <= TABLE_THICKNESS * side * span
    if not table.any():
        return image
    out: Image = np.where(table[labels], np.float32(-1000.0), image).astype(np.float32)
    return out


def display_view(image: Image, modality: str) -> Image:
    if modality == "CT":
        level, width = CT_WINDOW
        out: Image = np.clip((image - (level - width / 2)) / width, 0.0, 1.0).astype(np.float32)
        return out
    lo, hi = np.percentile(image, (0.5, 99.5))
    view: Image = np.clip((image - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)
    return view


def wide_view(image: Image, modality: str) -> Image:
    if modality == "CT":
        # Below air is padding (outside the reconstruction circle), not anatomy: clip it away.
        out: Image = np.clip((image + 1000.0) / 2000.0, 0.0, 2.0).astype(np.float32)
        return out
    top = max(float(np.percentile(image, 99.5)), 1e-6)
    view: Image = np.sqrt(np.clip(image / top, 0.0, 2.0)).astype(np.float32)
    return view


def model_input(image: Image, modality: str) -> Image:
    """The (2, GRID, GRID) tensor the quality network reads."""
    return np.stack([display_view(image, modality), wide_view(image, modality)]).astype(np.float32)


def stack_input(views: npt.NDArray[np.floating], modality: npt.NDArray[np.integer], modalities: int = 2) -> Image:
    """(B, 2, G, G) views + modality indices -> the (B, 2 + M, G, G) input of the ONNX model,
    one constant one-hot plane per modality."""
    b, _, g, _ = views.shape
    planes = np.zeros((b, modalities, g, g), dtype=np.float32)
    planes[np.arange(b), np.asarray(modality)] = 1.0
    return np.concatenate([views.astype(np.float32), planes], axis=1)


def quadrant(row: float, col: float) -> str:
    """A radiologist's coarse location for a point given as fractions of the image size."""
    vertical = "upper" if row < 0.4 else "lower" if row > 0.6 else "central"
    horizontal = "left" if col < 0.4 else "right" if col > 0.6 else "central"
    if vertical == horizontal == "central":
        return "centre"
    if vertical == "central":
        return f"{horizontal} side"
    if horizontal == "central":
        return f"{vertical} part"
    return f"{vertical} {horizontal}"
