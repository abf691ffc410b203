"""CT degradations simulated in the sinogram domain (parallel-beam geometry).

The slice is turned into linear attenuation (water 0.019 /mm at 70 keV, air 0), projected
with a pixel-driven Radon operator, corrupted the way the scanner would corrupt its raw
data, and reconstructed with filtered back-projection (ramp filter). Only the *error*
between the corrupted and the clean reconstruction is added back to the slice, so the
discretisation error of our own FBP never reaches the image; what is added is the artifact.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import ndimage, sparse

from medgate_iqa.degrade.base import Image, Rng, quadrant

MU_WATER = 0.019  # 1/mm
FOV_MM = 400.0
ANGLES = 180  # views over 180 degrees
SPARSE_VIEWS = (150, 128, 110, 96, 84, 72, 64, 56, 48, 40, 32, 26, 20, 16)


@lru_cache(maxsize=24)
def _projector(n: int, views: int = ANGLES) -> tuple[sparse.csr_matrix, int]:
    """Pixel-driven projector, each pixel split into 2 x 2 sub-pixels that splat linearly
    onto their two nearest detector bins. Whole pixels alone alias against the bin grid at
    some angles (45 degrees: every pixel lands on the same sub-bin phase), a moire that
    would be mistaken for an artifact of the acquisition."""
    bins = int(np.ceil(n * np.sqrt(2.0))) + 2
    sub = (np.arange(2 * n, dtype=np.float64) - (2 * n - 1) / 2.0) / 2.0
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    owner = (np.arange(2 * n)[:, None] // 2 * n + np.arange(2 * n)[None, :] // 2).ravel()
    theta = np.pi * np.arange(views) / views
    t = xx.ravel()[None, :] * np.cos(theta)[:, None] + yy.ravel()[None, :] * np.sin(theta)[:, None]
    t = t + (bins - 1) / 2.0
    lo = np.floor(t).astype(np.int64)
    frac = (t - lo).astype(np.float32) * np.float32(0.25)
    view = np.broadcast_to(np.arange(views)[:, None] * bins, t.shape)
    pix = np.broadcast_to(owner, t.shape)
    rows = np.concatenate([(view + lo).ravel(), (view + lo + 1).ravel()])
    cols = np.concatenate([pix.ravel(), pix.ravel()])
    vals = np.concatenate([(np.float32(0.25) - frac).ravel(), frac.ravel()])
    matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(views * bins, n * n), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix, bins


def _ramp(bins: int) -> npt.NDArray[np.float32]:
    size = int(2 ** np.ceil(np.log2(2 * bins)))
    # Spatial-domain ramp (Ram-Lak) sampled then transformed: no DC bias, unlike |f|.
    k = np.arange(-size // 2, size // 2)
    h = np.zeros(size)
    h[size // 2] = 0.25
    odd = k % 2 == 1
    h[odd] = -1.0 / (np.pi * k[odd]) ** 2
    return np.abs(np.fft.fft(np.fft.ifftshift(h))).astype(np.float32)


def _fbp(sino: npt.NDArray[np.float32], keep: npt.NDArray[np.bool_], n: int) -> npt.NDArray[np.float32]:
    """Filtered back-projection from the views in ``keep`` (views x bins sinogram, the views
    evenly spread over 180 degrees)."""
    views = sino.shape[0]
    matrix, bins = _projector(n, views)
    ramp = _ramp(bins)
    padded = np.zeros((sino.shape[0], ramp.size), dtype=np.float32)
    padded[:, :bins] = sino
    filtered = np.real(np.fft.ifft(np.fft.fft(padded, axis=1) * ramp, axis=1))[:, :bins].astype(np.float32)
    filtered *= _view_weights(keep)[:, None]
    image = matrix.T @ filtered.ravel()
    out: Image = (image * (np.pi / views)).reshape(n, n).astype(np.float32)
    return out


def _view_weights(keep: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """Each kept view stands for half the angular gap to each neighbour (views are periodic
    over 180 degrees); dropped views weigh nothing. Uniform subsets get the usual weight k."""
    kept = np.flatnonzero(keep)
    weights = np.zeros(keep.size, dtype=np.float32)
    if kept.size == 0:
        return weights
    ahead = np.diff(np.append(kept, kept[0] + keep.size))
    behind = np.diff(np.insert(kept, 0, kept[-1] - keep.size))
    weights[kept] = (ahead + behind) / 2.0
    return weights


def _project(mu: Image, views: int = ANGLES) -> npt.NDArray[np.float32]:
    matrix, bins = _projector(mu.shape[0], views)
    return np.asarray(matrix @ mu.ravel(), dtype=np.float32).reshape(views, bins)


def _attenuation(hu: Image) -> Image:
    pixel_mm = FOV_MM / hu.shape[0]
    mu: Image = (np.clip(1.0 + hu / 1000.0, 0.0, None) * MU_WATER * pixel_mm).astype(np.float32)
    return mu


def _to_hu(mu: Image, n: int) -> Image:
    return (mu / (MU_WATER * FOV_MM / n) - 1.0) * 1000.0


def _square(hu: Image) -> None:
    if hu.ndim != 2 or hu.shape[0] != hu.shape[1]:
        raise ValueError("CT sinogram simulation needs a square slice")


def _with_error(hu: Image, corrupted: npt.NDArray[np.float32], keep: npt.NDArray[np.bool_]) -> Image:
    """Slice + (FBP(corrupted, keep) - FBP(clean, all views)), in HU."""
    return _add_error(hu, _fbp(corrupted, keep, hu.shape[0]))


def _add_error(hu: Image, reconstruction: Image) -> Image:
    n = hu.shape[0]
    reference = _fbp(_project(_attenuation(hu)), np.ones(ANGLES, dtype=bool), n)
    out: Image = (hu + (reconstruction - reference) * 1000.0 / (MU_WATER * FOV_MM / n)).astype(np.float32)
    return out


def _counts(p: npt.NDArray[np.float32], i0: float, rng: Rng, electronic: float = 5.0) -> npt.NDArray[np.float32]:
    """Quantum (Poisson) plus electronic (Gaussian) noise on the detected photon counts."""
    expected = i0 * np.exp(-p.astype(np.float64))
    detected = rng.poisson(expected) + rng.normal(0.0, electronic, size=p.shape)
    return (-np.log(np.clip(detected, 1.0, None) / i0)).astype(np.float32)


def low_dose(hu: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """Fewer photons per ray (lower mAs): Poisson noise that grows along long paths."""
    _square(hu)
    i0 = 10.0 ** (7.2 - 3.2 * s)
    noisy = _counts(_project(_attenuation(hu)), i0, rng)
    return _with_error(hu, noisy, np.ones(ANGLES, dtype=bool)), "diffuse, strongest along the longest ray paths"


def sparse_view(hu: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """Few, evenly spread views (a fast or low-dose sparse protocol): view aliasing, i.e.
    streaks radiating from high-contrast edges. Projected and reconstructed on the sparse
    view set itself, so the streaks are exactly those of the sparse acquisition."""
    _square(hu)
    views = SPARSE_VIEWS[min(len(SPARSE_VIEWS) - 1, int(s * len(SPARSE_VIEWS)))]
    sparse = _fbp(_project(_attenuation(hu), views), np.ones(views, dtype=bool), hu.shape[0])
    return _add_error(hu, sparse), f"radiating streaks across the field of view ({views} views)"


def limited_angle(hu: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """A contiguous missing arc of views: edges parallel to the missing directions smear out."""
    _square(hu)
    missing = round(ANGLES * (0.04 + 0.45 * s))
    start = int(rng.integers(ANGLES))
    keep = np.ones(ANGLES, dtype=bool)
    keep[(start + np.arange(missing)) % ANGLES] = False
    degrees = int(180 * missing / ANGLES)
    return _with_error(hu, _project(_attenuation(hu)), keep), f"directional smearing ({degrees} degree arc missing)"


def metal(hu: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """Dense implants: beam hardening (a quadratic term on metal path length) and photon
    starvation (few counts behind the metal) give dark and bright streaks between them."""
    _square(hu)
    n = hu.shape[0]
    body = ndimage.binary_erosion(hu > -300, iterations=max(2, n // 32))
    candidates = np.argwhere(body)
    if candidates.size == 0:
        candidates = np.argwhere(np.ones_like(hu, dtype=bool))
    objects = 1 + int(s > 0.45) + int(s > 0.8)
    radius = max(0.8, n / 128.0 * (0.8 + 2.2 * s))
    yy, xx = np.mgrid[:n, :n]
    implant = np.zeros_like(hu, dtype=bool)
    centres = []
    for _ in range(objects):
        cy, cx = candidates[int(rng.integers(len(candidates)))]
        implant |= (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        centres.append((float(cy), float(cx)))
    with_metal = np.where(implant, np.float32(2000.0 + 6000.0 * s), hu).astype(np.float32)
    p = _project(_attenuation(with_metal))
    p_metal = _project((implant * (MU_WATER * FOV_MM / n) * (1.0 + 8.0 * s)).astype(np.float32))
    hardened = p - (0.05 + 0.35 * s) * p_metal**2 / (1.0 + p_metal)
    measured = _counts(hardened, 10.0 ** (6.5 - 2.0 * s), rng)
    out = _with_error(with_metal, measured, np.ones(ANGLES, dtype=bool))
    cy, cx = np.mean(centres, axis=0)
    return out, f"{quadrant(cy / n, cx / n)} of the image (implant)"


def ring(hu: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """Mis-calibrated detector elements: a fixed gain error per bin becomes concentric rings."""
    _square(hu)
    p = _project(_attenuation(hu))
    bins = p.shape[1]
    bad = rng.choice(np.arange(bins // 6, bins // 2 - 1), size=2 + int(4 * s), replace=False)
    gain = np.ones(bins, dtype=np.float32)
    gain[bad] = 1.0 + rng.choice([-1.0, 1.0], size=bad.size) * (0.02 + 0.4 * s)
    # Over a full rotation each element also sees the opposite side of the circle; in this
    # 180-degree parallel geometry that is the mirrored bin, without which rings are halves.
    gain[bins - 1 - bad] = gain[bad]
    corrupted = p - np.log(gain)[None, :]
    return _with_error(hu, corrupted, np.ones(ANGLES, dtype=bool)), "concentric rings around the isocentre"


def motion(hu: Image, s: float, rng: Rng) -> tuple[Image, str]:
    """The patient moves mid-rotation: the later views see a shifted object."""
    _square(hu)
    n = hu.shape[0]
    shift_px = (0.6 + 5.0 * s) * n / 128.0
    angle = rng.uniform(0, 2 * np.pi)
    moved = ndimage.shift(hu, (shift_px * np.sin(angle), shift_px * np.cos(angle)), order=1, mode="nearest")
    p = _project(_attenuation(hu))
    p_moved = _project(_attenuation(moved.astype(np.float32)))
    start = int(rng.integers(ANGLES // 4, ANGLES // 2))
    ramp = np.clip((np.arange(ANGLES) - start) / max(1, ANGLES // 8), 0.0, 1.0)[:, None].astype(np.float32)
    corrupted = p * (1.0 - ramp) + p_moved * ramp
    return _with_error(hu, corrupted, np.ones(ANGLES, dtype=bool)), "double contours and streaks at moving edges"
