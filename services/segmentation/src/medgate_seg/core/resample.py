"""Between the source grid and the model's grid, by separable linear interpolation.

Both grids cover the same physical box (pixel-area alignment: the edges of the first and
last voxels coincide), so one mapping serves both ways and the lesion probability computed
on the model's grid lands back on the source voxels it came from. The model grid has
``round(n * source_spacing / model_spacing)`` voxels per axis; its real spacing differs from
the model's by less than half a voxel over the whole extent.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


def model_shape(
    shape: tuple[int, int, int], spacing: tuple[float, float, float], target: tuple[float, float, float]
) -> tuple[int, int, int]:
    """Voxels per axis of the model grid over the same extent as ``shape`` at ``spacing``."""
    out = [max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, target, strict=True)]
    return (out[0], out[1], out[2])


def _axis_weights(n_in: int, n_out: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], FloatArray]:
    # Centre of output voxel j in input index units, clamped to the outermost centres.
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def resample(array: npt.NDArray[np.floating], shape: tuple[int, int, int]) -> FloatArray:
    """``array`` ([slice, row, col]) linearly interpolated onto ``shape`` over the same extent."""
    out = np.asarray(array, dtype=np.float32)
    for axis, n_out in enumerate(shape):
        n_in = out.shape[axis]
        if n_in == n_out:
            continue
        lo, hi, w = _axis_weights(n_in, n_out)
        shape_w = [1] * out.ndim
        shape_w[axis] = n_out
        weight = w.reshape(shape_w)
        out = np.take(out, lo, axis=axis) * (1.0 - weight) + np.take(out, hi, axis=axis) * weight
    return np.ascontiguousarray(out, dtype=np.float32)


def normalise(hu: FloatArray, window: tuple[float, float]) -> FloatArray:
    """The model's input: ``clip((HU - low) / (high - low), 0, 1)``."""
    lo, hi = window
    out: FloatArray = np.clip((hu - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0).astype(np.float32)
    return out
