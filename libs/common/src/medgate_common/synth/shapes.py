"""Drawing solid shapes on a voxel grid defined in millimetres."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Grid:
    """Voxel centres of a ``[slice, row, col]`` volume in patient LPS millimetres.

    The grid is centred on the LPS origin; slice 0 is the most inferior slice, rows run
    anterior to posterior and columns right to left, as in a head-first-supine axial scan.
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]  # (slice, row, col) mm

    @property
    def origin(self) -> tuple[float, float, float]:
        """LPS position (x, y, z) of voxel [0, 0, 0]."""
        nz, ny, nx = self.shape
        sz, sy, sx = self.spacing
        return (-(nx - 1) * sx / 2, -(ny - 1) * sy / 2, -(nz - 1) * sz / 2)

    def axes(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """1-D coordinates (z, y, x) of slices, rows and columns."""
        ox, oy, oz = self.origin
        nz, ny, nx = self.shape
        sz, sy, sx = self.spacing
        z = (oz + np.arange(nz) * sz).astype(np.float32)
        y = (oy + np.arange(ny) * sy).astype(np.float32)
        x = (ox + np.arange(nx) * sx).astype(np.float32)
        return z, y, x

    def ellipsoid(self, center: tuple[float, float, float], radii: tuple[float, float, float]) -> BoolArray:
        """Solid ellipsoid; ``center`` and ``radii`` are (x, y, z) in mm."""
        return self.deformed_ellipsoid(center, radii, None, 0.0)

    def deformed_ellipsoid(
        self,
        center: tuple[float, float, float],
        radii: tuple[float, float, float],
        field: FloatArray | None,
        amount: float,
    ) -> BoolArray:
        """Ellipsoid whose implicit surface is pushed by ``amount * field`` (irregular outline)."""
        z, y, x = self.axes()
        cx, cy, cz = center
        rx, ry, rz = radii
        grow = 1.0 + abs(amount)
        zs = np.flatnonzero(np.abs(z - cz) <= rz * grow)
        ys = np.flatnonzero(np.abs(y - cy) <= ry * grow)
        xs = np.flatnonzero(np.abs(x - cx) <= rx * grow)
        out = np.zeros(self.shape, dtype=bool)
        if not (zs.size and ys.size and xs.size):
            return out
        box = (slice(zs[0], zs[-1] + 1), slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
        dz = ((z[box[0]] - cz) / rz)[:, None, None]
        dy = ((y[box[1]] - cy) / ry)[None, :, None]
        dx = ((x[box[2]] - cx) / rx)[None, None, :]
        level = dz * dz + dy * dy + dx * dx
        if field is not None and amount:
            level = level + amount * field[box]
        out[box] = level <= 1.0
        return out

    def cylinder_z(
        self, center_xy: tuple[float, float], radii_xy: tuple[float, float], z_range: tuple[float, float]
    ) -> BoolArray:
        z, y, x = self.axes()
        zmask = (z >= z_range[0]) & (z <= z_range[1])
        disc = ((x[None, :] - center_xy[0]) / radii_xy[0]) ** 2 + (
            (y[:, None] - center_xy[1]) / radii_xy[1]
        ) ** 2 <= 1.0
        return zmask[:, None, None] & disc[None, :, :]


def _linear_weights(n: int, c: int) -> FloatArray:
    """(n, c) matrix that linearly interpolates c coarse samples onto n fine ones (cell-centred)."""
    pos = np.clip((np.arange(n, dtype=np.float64) + 0.5) * c / n - 0.5, 0.0, c - 1.0)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, c - 1)
    frac = pos - lo
    weights = np.zeros((n, c), dtype=np.float32)
    weights[np.arange(n), lo] += (1.0 - frac).astype(np.float32)
    weights[np.arange(n), hi] += frac.astype(np.float32)
    return weights


def smooth_field(rng: np.random.Generator, shape: tuple[int, int, int], coarse: tuple[int, int, int]) -> FloatArray:
    """Smooth random field scaled to [-1, 1]: coarse Gaussian noise, trilinearly upsampled.

    The upsampling is three small matrix products (one per axis) rather than a generic
    resampler: about 15x faster for a 64x256x256 grid, and it dominates study generation.
    """
    coarse = tuple(max(1, min(c, s)) for c, s in zip(coarse, shape, strict=True))  # type: ignore[assignment]
    low = rng.standard_normal(coarse).astype(np.float32)
    wz, wy, wx = (_linear_weights(s, c) for s, c in zip(shape, coarse, strict=True))
    field = np.einsum("xk,ijk->ijx", wx, low)
    field = np.einsum("yj,ijx->iyx", wy, field)
    field = np.tensordot(wz, field, axes=(1, 0))
    peak = float(np.max(np.abs(field))) or 1.0
    out: FloatArray = np.asarray(field / peak, dtype=np.float32)
    return out
