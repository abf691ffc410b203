"""Sliding-window inference with Gaussian-weighted blending, in numpy, through any
``ModelBackend``.

The same scheme as MONAI's ``sliding_window_inference(mode="gaussian")`` that training
evaluates with: windows of the card's patch size, overlapping by ``overlap``, the last one
flush with the far edge; each window's output weighted by a Gaussian of sigma = patch / 8
(its centre trusted more than its rim) and the weighted sum divided by the summed weights.
Every window the model sees is exactly one patch (multiples of 8, as the network's four
down-samplings need); an axis shorter than the patch is padded at its far end with zeros,
the model's value for anything below the window, as in training.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt

from medgate_common.inference import ModelBackend

FloatArray = npt.NDArray[np.float32]
SIGMA_SCALE = 0.125


def gaussian_importance(patch: tuple[int, int, int]) -> FloatArray:
    axes = []
    for size in patch:
        centre = (size - 1) / 2.0
        sigma = SIGMA_SCALE * size
        axes.append(np.exp(-0.5 * ((np.arange(size) - centre) / sigma) ** 2))
    weight = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    weight = weight / weight.max()
    # Never zero: a voxel seen only by the rim of one window still gets that window's answer.
    floor = max(float(weight[weight > 0].min()), 1e-3)
    out: FloatArray = np.maximum(weight, floor).astype(np.float32)
    return out


def window_starts(size: int, roi: int, overlap: float) -> list[int]:
    if size <= roi:
        return [0]
    step = max(int(roi * (1.0 - overlap)), 1)
    count = math.ceil((size - roi) / step) + 1
    return sorted({min(i * step, size - roi) for i in range(count)})


def padded_shape(shape: tuple[int, int, int], patch: tuple[int, int, int]) -> tuple[int, int, int]:
    out = [max(p, n) for n, p in zip(shape, patch, strict=True)]
    return (out[0], out[1], out[2])


def infer_probability(
    backend: ModelBackend,
    image: FloatArray,
    *,
    patch: tuple[int, int, int],
    input_name: str,
    output_name: str,
    channel: int,
    overlap: float = 0.5,
    batch: int = 4,
) -> FloatArray:
    """Probability of class ``channel`` for every voxel of ``image`` ([D, H, W], model input units)."""
    shape = (int(image.shape[0]), int(image.shape[1]), int(image.shape[2]))
    full = padded_shape(shape, patch)
    padded = np.zeros(full, dtype=np.float32)
    padded[: shape[0], : shape[1], : shape[2]] = image
    weight = gaussian_importance(patch)
    total = np.zeros(full, dtype=np.float32)
    norm = np.zeros(full, dtype=np.float32)
    starts = list(itertools.product(*(window_starts(n, p, overlap) for n, p in zip(full, patch, strict=True))))
    for first in range(0, len(starts), batch):
        group = starts[first : first + batch]
        boxes = [tuple(slice(s, s + p) for s, p in zip(start, patch, strict=True)) for start in group]
        x = np.stack([padded[box] for box in boxes])[:, np.newaxis]
        out = backend.infer({input_name: x}).outputs[output_name]
        for box, probability in zip(boxes, np.asarray(out, dtype=np.float32)[:, channel], strict=True):
            total[box] += probability * weight
            norm[box] += weight
    result: FloatArray = (total / norm)[: shape[0], : shape[1], : shape[2]]
    return np.ascontiguousarray(result)
