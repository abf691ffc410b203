"""Measured image statistics, reported beside the network's opinion.

They are computed on the slice at its own resolution (before resampling, which would
average noise away), in units a radiographer recognises: CT noise in HU, MR noise as a
percentage of the 99.5th-percentile signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medgate_iqa.core.views import display_view

Array = npt.NDArray[np.float32]
_LAPLACE_PAIR = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
CT_LIMITS = (-1024.0, 3071.0)


@dataclass(frozen=True)
class SliceStatistics:
    noise_sigma: float  # CT: HU; MR: % of the 99.5th-percentile signal
    sharpness: float  # 90th percentile of the display-view gradient, per pixel of the slice
    contrast: float  # RMS contrast of the display view inside the anatomy
    clipped_fraction: float  # share of anatomy pixels stuck at a detector / storage limit


def noise_sigma(image: Array, mask: npt.NDArray[np.bool_] | None = None) -> float:
    """Immerkaer's estimator (a Laplacian-difference kernel that cancels smooth signal),
    taken over the flattest half of the anatomy so that neither edges nor an empty, noiseless
    background (padding, air set to one value) decide the answer."""
    if min(image.shape) < 8:
        return 0.0
    residual = np.abs(ndimage.convolve(image, _LAPLACE_PAIR, mode="reflect"))
    gradient = ndimage.gaussian_gradient_magnitude(image, 1.5)
    inside = np.ones(image.shape, dtype=bool) if mask is None else ndimage.binary_erosion(mask, iterations=2)
    inside[[0, -1], :] = False
    inside[:, [0, -1]] = False
    if inside.sum() < 64:
        return 0.0
    flat = inside & (gradient <= np.percentile(gradient[inside], 50))
    return float(np.sqrt(np.pi / 2.0) * residual[flat].mean() / 6.0)


def anatomy(image: Array, modality: str) -> npt.NDArray[np.bool_]:
    view = display_view(image, modality)
    mask = view > (0.05 if modality == "CT" else 0.12)
    return mask if mask.mean() > 0.02 else np.ones_like(mask)


def measure(image: Array, modality: str) -> SliceStatistics:
    image = image.astype(np.float32)
    view = display_view(image, modality)
    mask = anatomy(image, modality)
    sigma = noise_sigma(image, mask)
    if modality == "CT":
        noise = sigma
        lo, hi = CT_LIMITS
        clipped = float(np.mean((image[mask] <= lo + 0.5) | (image[mask] >= hi - 0.5)))
    else:
        top = max(float(np.percentile(image, 99.5)), 1e-6)
        noise = 100.0 * sigma / top
        peak = float(image.max())
        # A saturated receiver leaves a plateau: many pixels share the very top value.
        plateau = float(np.mean(image[mask] >= peak - 1e-3 * max(peak, 1.0)))
        clipped = plateau if plateau > 0.002 else 0.0
    gradient = np.hypot(*np.gradient(view))
    return SliceStatistics(
        noise_sigma=round(noise, 3),
        sharpness=round(float(np.percentile(gradient, 90)), 4),
        contrast=round(float(view[mask].std()), 4),
        clipped_fraction=round(min(1.0, clipped), 4),
    )


def median_statistics(values: list[SliceStatistics]) -> SliceStatistics:
    return SliceStatistics(
        noise_sigma=float(np.median([v.noise_sigma for v in values])),
        sharpness=float(np.median([v.sharpness for v in values])),
        contrast=float(np.median([v.contrast for v in values])),
        clipped_fraction=float(np.median([v.clipped_fraction for v in values])),
    )
