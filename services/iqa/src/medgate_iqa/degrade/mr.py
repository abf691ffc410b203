"""MR degradations simulated in k-space (phase encoding along rows, readout along columns).

The magnitude slice gets a smooth background phase, is Fourier transformed, corrupted the
way acquisition corrupts raw data, and transformed back; the magnitude is what a scanner
shows. Receive-field inhomogeneity and susceptibility are applied in image space, where
their physics lives (a multiplicative coil sensitivity, a local off-resonance shift).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medgate_iqa.degrade.base import Image, Rng, quadrant

Complex = npt.NDArray[np.complex128]


def _kspace(image: Image, rng: Rng) -> Complex:
    n0, n1 = image.shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, n0), np.linspace(-1, 1, n1), indexing="ij")
    phase = rng.uniform(-0.5, 0.5) * xx + rng.uniform(-0.5, 0.5) * yy
    return np.fft.fftshift(np.fft.fft2(image * np.exp(1j * phase)))


def _image(k: Complex) -> Image:
    return np.abs(np.fft.ifft2(np.fft.ifftshift(k))).astype(np.float32)


def _top(image: Image) -> float:
    return float(np.percentile(image, 99.5)) or 1.0


def motion(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """Bulk translation during a random subset of phase-encode lines: a linear phase on those
    lines, which smears and blurs the object along the phase-encode direction."""
    k = _kspace(image, rng)
    n0, n1 = k.shape
    lines = np.less(rng.random((n0,)), 0.15 + 0.35 * s)
    lines[n0 // 2 - max(1, n0 // 32) : n0 // 2 + max(1, n0 // 32)] = False  # the centre was acquired still
    shift = (0.8 + 7.0 * s) * n0 / 128.0
    ky = np.fft.fftshift(np.fft.fftfreq(n0))[:, None]
    kx = np.fft.fftshift(np.fft.fftfreq(n1))[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.exp(-2j * np.pi * shift * (ky * np.sin(angle) + kx * np.cos(angle)))
    k[lines] = k[lines] * ramp[lines]
    return _image(k), "smearing along the phase-encoding direction"


def ghosting(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """Periodic phase error (pulsatile flow, respiration, N/2 inconsistency): every m-th
    phase-encode line gets the same error, so discrete shifted copies appear."""
    k = _kspace(image, rng)
    period = int(rng.choice([2, 3, 4]))
    alpha = 0.25 + 1.1 * s
    k[int(rng.integers(period)) :: period] *= np.exp(1j * alpha)
    return _image(k), f"replicas at 1/{period} of the field of view along the phase-encoding direction"


def undersampling(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """Cartesian acceleration with a fully sampled centre, zero-filled reconstruction:
    incoherent aliasing (noise-like streaks) folding the object over itself."""
    k = _kspace(image, rng)
    n0 = k.shape[0]
    accel = 1.05 + 6.0 * s
    keep = np.less(rng.random((n0,)), 1.0 / accel)
    centre = max(2, round(n0 * 0.08))
    keep[n0 // 2 - centre // 2 : n0 // 2 + centre // 2 + 1] = True
    k[~keep] = 0.0
    return _image(k), f"aliasing along the phase-encoding direction (about {accel:.1f}x acceleration)"


def bias_field(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """Receive-coil sensitivity: a smooth multiplicative field (exp of a low-order polynomial)."""
    n0, n1 = image.shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, n0), np.linspace(-1, 1, n1), indexing="ij")
    terms = np.stack([xx, yy, xx * yy, xx**2 - 0.33, yy**2 - 0.33])
    coeff = rng.normal(size=5)
    field = np.tensordot(coeff, terms, axes=1)
    field = field / (np.ptp(field) or 1.0)
    amplitude = 0.3 + 2.4 * s  # log-range of the field
    gain = np.exp(amplitude * field)
    bright = np.unravel_index(int(np.argmax(gain)), gain.shape)
    where = quadrant(bright[0] / n0, bright[1] / n1)
    return (image * gain / float(np.exp(amplitude * field).mean())).astype(np.float32), f"brighter towards the {where}"


def spike(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """A few corrupt k-space samples (static discharge): herringbone stripes over the image.
    A discharge can be far brighter than the k-space centre, so at the top of the knob the
    stripes bury the anatomy (the spike's amplitude grows geometrically, 2 % to 10 x the
    centre's)."""
    k = _kspace(image, rng)
    n0, n1 = k.shape
    peak = float(np.abs(k).max())
    for _ in range(1 + int(2 * s)):
        r = int(rng.integers(n0 // 8, n0 // 2 - 2)) * int(rng.choice([-1, 1]))
        c = int(rng.integers(n1 // 8, n1 // 2 - 2)) * int(rng.choice([-1, 1]))
        k[n0 // 2 + r, n1 // 2 + c] += peak * 0.02 * 500.0**s * np.exp(1j * rng.uniform(0, 2 * np.pi))
    return _image(k), "stripes over the whole image"


def gibbs(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """Truncated k-space (low acquisition matrix): ringing parallel to sharp edges. The
    sampled region is a rectangle (Cartesian readout) or, half the time, an ellipse
    (elliptical scanning, which skips the k-space corners)."""
    k = _kspace(image, rng)
    n0, n1 = k.shape
    frac = 0.6 - 0.45 * s
    h0, h1 = max(2, int(n0 * frac / 2)), max(2, int(n1 * frac / 2))
    mask = np.zeros(k.shape, dtype=bool)
    if rng.random() < 0.5:
        mask[n0 // 2 - h0 : n0 // 2 + h0, n1 // 2 - h1 : n1 // 2 + h1] = True
    else:
        yy, xx = np.mgrid[:n0, :n1]
        mask = ((yy - n0 // 2) / h0) ** 2 + ((xx - n1 // 2) / h1) ** 2 <= 1.0
    k[~mask] = 0.0
    return _image(k), "ringing parallel to high-contrast boundaries"


def noise(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """Thermal noise: complex Gaussian on both channels, so the magnitude is Rician."""
    sigma = _top(image) * (0.006 + 0.12 * s)
    real = image + rng.normal(0.0, sigma, image.shape)
    imag = rng.normal(0.0, sigma, image.shape)
    return np.sqrt(real**2 + imag**2).astype(np.float32), "diffuse over the whole image"


def susceptibility(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """An off-resonance source (metal, air-tissue interface): the local field offset shifts
    signal along the readout (geometric distortion, pile-up) and dephasing leaves a void."""
    n0, n1 = image.shape
    tissue = np.argwhere(image > 0.2 * _top(image))
    cy, cx = tissue[int(rng.integers(len(tissue)))] if len(tissue) else (n0 // 2, n1 // 2)
    radius = (3.0 + 9.0 * s) * n0 / 128.0
    yy, xx = np.mgrid[:n0, :n1].astype(np.float64)
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2.0 * radius**2))
    shift = (2.0 + 6.0 * s) * n1 / 128.0 * blob  # readout displacement in pixels
    warped = ndimage.map_coordinates(image, [yy, xx + shift], order=1, mode="nearest")
    void = 1.0 - (0.75 + 0.25 * s) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2.0 * (0.6 * radius) ** 2))
    pile = 1.0 + 0.8 * s * np.exp(-((yy - cy) ** 2 + (xx - cx - 1.3 * radius) ** 2) / (2.0 * (0.35 * radius) ** 2))
    return (warped * void * pile).astype(np.float32), f"{quadrant(cy / n0, cx / n1)} of the image"
