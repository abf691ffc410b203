"""PNG overlays for review: key slices of the source with each lesion's outline drawn on.

One image per key slice (the slice where a lesion is largest, largest lesions first),
grayscale through the series' own window (the card's window when the series has none),
each lesion outlined in its own colour and labelled with its number. The PNGs carry no
metadata, hence no patient identifiers; they are a review aid, the SEG is the result.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from medgate_common.dicom.outlines import colour_of, draw_outlines, enlargement, number_positions
from medgate_common.schemas.segmentation import Lesion


@dataclass(frozen=True)
class Overlay:
    name: str
    slice_number: int
    png: bytes


def key_slices(labels: npt.NDArray[np.uint16], lesions: Sequence[Lesion], count: int) -> list[int]:
    """Volume indices of up to ``count`` slices: where each lesion is largest, largest lesion first."""
    chosen: list[int] = []
    for lesion in lesions:
        if len(chosen) >= count:
            break
        area = np.count_nonzero(labels == lesion.lesion_id, axis=(1, 2))
        best = int(np.argmax(area))
        if area[best] and best not in chosen:
            chosen.append(best)
    return chosen


def _grey(image: npt.NDArray[np.float32], window: tuple[float, float]) -> npt.NDArray[np.uint8]:
    centre, width = window
    lo = centre - width / 2.0
    scaled = np.clip((image - lo) / max(width, 1e-6), 0.0, 1.0) * 255.0
    out: npt.NDArray[np.uint8] = scaled.astype(np.uint8)
    return out


def render(
    image: npt.NDArray[np.float32], labels: npt.NDArray[np.uint16], window: tuple[float, float], caption: str
) -> bytes:
    """One slice (``image`` in output units, ``labels`` its lesion map) as PNG bytes."""
    scale = enlargement(image.shape[1])  # small matrices are enlarged to stay legible
    if scale > 1:
        image = np.kron(image, np.ones((scale, scale), dtype=image.dtype))
        labels = np.kron(labels, np.ones((scale, scale), dtype=labels.dtype))
    rgb = np.repeat(_grey(image, window)[..., np.newaxis], 3, axis=2)
    draw_outlines(rgb, labels)
    picture = Image.fromarray(rgb)
    draw = ImageDraw.Draw(picture)
    for lesion_id, position in number_positions(labels, picture.width):
        draw.text(position, str(lesion_id), fill=colour_of(lesion_id))
    draw.text((4, 4), caption, fill=(255, 255, 255))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def overlays(
    array: npt.NDArray[np.float32],
    labels: npt.NDArray[np.uint16],
    lesions: Sequence[Lesion],
    slice_numbers: Sequence[int],
    window: tuple[float, float],
    count: int,
) -> list[Overlay]:
    out = []
    for index in key_slices(labels, lesions, count):
        number = slice_numbers[index]
        caption = f"image {number} - AI lesion outline, not reviewed"
        out.append(Overlay(f"overlay-{number:04d}.png", number, render(array[index], labels[index], window, caption)))
    return out
