"""Degradations that look alike on every modality: optical/PSF blur, exposure, contrast.

They act on the reconstructed image, because that is where they arise (a soft reconstruction
kernel or defocus is a wider point-spread function; a wrong gain or window scales values).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medgate_iqa.degrade.base import Image, Rng


def blur(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """A wider point-spread function, in one of three shapes: Gaussian (a soft kernel,
    defocus), linear (the object moving during one exposure or readout), a box with
    resampling (a coarse acquisition matrix interpolated up: partial-volume blur), or that
    coarse matrix shown by pixel replication (:func:`pixelate`)."""
    scale = max(image.shape) / 128.0
    kind = rng.random()
    if kind < 0.5:
        sigma = (0.6 + 3.8 * s) * scale
        return ndimage.gaussian_filter(image, sigma).astype(np.float32), "diffuse loss of edge definition"
    if kind < 0.75:
        length = max(2, round((2.0 + 14.0 * s) * scale))
        kernel = np.zeros((length + 2, length + 2), dtype=np.float32)
        kernel[(length + 2) // 2, 1 : length + 1] = 1.0
        kernel = ndimage.rotate(kernel, float(rng.uniform(0, 180)), reshape=False, order=1)
        smeared = ndimage.convolve(image, kernel / max(float(kernel.sum()), 1e-6), mode="nearest")
        return smeared.astype(np.float32), "directional smearing of edges"
    if kind < 0.875:
        factor = 1.4 + 3.6 * s
        small = ndimage.zoom(ndimage.uniform_filter(image, size=max(1, round(factor))), 1.0 / factor, order=1)
        back = ndimage.zoom(small, np.array(image.shape) / np.array(small.shape), order=1)
        return back.astype(np.float32), "coarse, blocky loss of detail"
    return pixelate(image, s, rng), "coarse, blocky loss of detail"


def pixelate(image: Image, s: float, rng: Rng) -> Image:
    """A coarse matrix shown by pixel replication (a nearest-neighbour viewer, a block
    codec): each block holds its mean, with hard edges between blocks, at a random phase;
    sometimes the display's interpolation softens the block edges a little."""
    b = max(2, round((1.5 + 6.5 * s) * max(image.shape) / 128.0))
    oy, ox = (int(v) for v in rng.integers(0, b, size=2))
    h, w = image.shape
    ny, nx = -(-(h + oy) // b), -(-(w + ox) // b)
    padded = np.pad(image, ((oy, ny * b - h - oy), (ox, nx * b - w - ox)), mode="edge")
    means = padded.reshape(ny, b, nx, b).mean(axis=(1, 3))
    blocks = np.repeat(np.repeat(means, b, axis=0), b, axis=1)[oy : oy + h, ox : ox + w]
    if rng.random() < 0.4:
        blocks = ndimage.gaussian_filter(blocks, float(rng.uniform(0.3, 0.8)))
    return np.ascontiguousarray(blocks, dtype=np.float32)


def _limits(image: Image, modality: str) -> tuple[float, float]:
    if modality == "CT":
        return -1024.0, 3071.0
    return 0.0, float(np.percentile(image, 99.9)) * 1.05 or 1.0


def exposure(image: Image, s: float, rng: Rng, modality: str = "CT") -> tuple[Image, str]:
    """Wrong gain: over-exposure saturates the top of the range at the detector limit,
    under-exposure crushes the bottom; both lose the values beyond the limit for good.
    MR magnitude has no "under-exposure" that survives intensity normalisation, so MR is
    always the receiver-overflow case."""
    lo, hi = _limits(image, modality)
    over = modality != "CT" or bool(rng.random() < 0.5)
    if modality == "CT":
        # CT: a calibration error scales attenuation relative to water and offsets it; the
        # stored range then clips.
        gain = 1.0 + (0.01 + 0.4 * s) if over else 1.0 / (1.0 + (0.01 + 0.4 * s))
        out = (image + 1000.0) * gain - 1000.0 + (4.0 + 80.0 * s) * (1 if over else -1)
    else:
        out = image * (1.0 + (0.05 + 3.0 * s))
    where = "over-exposed (saturated bright regions)" if over else "under-exposed (crushed dark regions)"
    return np.clip(out, lo, hi).astype(np.float32), where


def contrast(image: Image, s: float, rng: Rng, modality: str = "CT") -> tuple[Image, str]:
    """Veiling glare / scatter: part of the signal is replaced by a very blurred copy of the
    image, so local tissue differences fade while the mean stays. Unlike a linear window
    change, intensity normalisation cannot undo it."""
    keep = 0.9 - 0.75 * s
    haze = ndimage.gaussian_filter(image, max(image.shape) / 6.0)
    return (image * keep + haze * (1.0 - keep)).astype(np.float32), "global loss of tissue contrast"
