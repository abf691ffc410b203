"""torchio's MRI artifact transforms as extra operators for training.

A second, independent implementation of the same physics (torchio's k-space motion with
in-plane rigid movements, ghosting, spikes, polynomial bias fields, Gaussian blur and
noise) keeps the network from learning the fingerprints of our own simulators. Levels are
still measured with our impact bands, exactly as for our operators. Used for MR only; these
transforms are 3-D, so a slice travels as a volume one voxel thick and movements stay in
the slice plane.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torchio as tio

from medgate_common.schemas.quality import QualityAttribute as A
from medgate_iqa.degrade.base import Image, Rng

TorchioOp = Callable[[Image, float, Rng], tuple[Image, str]]


def _run(transform: tio.Transform, image: Image) -> Image:
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, :, :, None]
    volume = tio.ScalarImage(tensor=tensor)  # type: ignore[no-untyped-call]
    out = transform(volume)
    return np.asarray(out.data[0, :, :, 0].numpy(), dtype=np.float32)


def motion(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    moves = 1 + int(rng.integers(1, 4))
    degrees = np.zeros((moves, 3))
    degrees[:, 2] = rng.uniform(-1, 1, moves) * (0.2 + 3.0 * s)
    translation = np.zeros((moves, 3))
    translation[:, :2] = rng.uniform(-1, 1, (moves, 2)) * (0.2 + 3.0 * s)
    times = np.sort(rng.uniform(0.15, 0.85, moves))
    transform = tio.Motion(degrees=degrees, translation=translation, times=times, image_interpolation="linear")
    return np.abs(_run(transform, image)), "smearing along the phase-encoding direction"


def ghosting(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    ghosts = int(rng.integers(2, 6))
    transform = tio.Ghosting(num_ghosts=ghosts, axis=int(rng.integers(2)), intensity=0.1 + 0.9 * s, restore=0.02)
    return np.abs(_run(transform, image)), "replicas along the phase-encoding direction"


def spike(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    positions = np.zeros((1 + int(2 * s), 3))
    positions[:, :2] = rng.uniform(0.1, 0.4, (positions.shape[0], 2)) * rng.choice([-1, 1], (positions.shape[0], 2))
    transform = tio.Spike(spikes_positions=positions, intensity=0.05 + 0.8 * s)
    return np.abs(_run(transform, image)), "stripes over the whole image"


def bias_field(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    # order 2 in 3-D has 10 coefficients; in-plane terms only matter for a one-voxel slice.
    coefficients = list(rng.uniform(-1, 1, 10) * (0.1 + 0.8 * s))
    return _run(tio.BiasField(coefficients=coefficients, order=2), image), "a smooth brightness gradient"


def blur(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    std = (0.5 + 2.8 * s) * max(image.shape) / 128.0
    return _run(tio.Blur(std=(std, std, 0.0)), image), "diffuse loss of edge definition"


def noise(image: Image, s: float, rng: Rng) -> tuple[Image, str]:
    top = float(np.percentile(image, 99.5)) or 1.0
    transform = tio.Noise(mean=0.0, std=top * (0.005 + 0.13 * s), seed=int(rng.integers(2**31)))
    return np.abs(_run(transform, image)), "diffuse over the whole image"


MR_OPERATORS: dict[A, TorchioOp] = {
    A.motion: motion,
    A.ghosting: ghosting,
    A.spike: spike,
    A.bias_field: bias_field,
    A.blur: blur,
    A.noise: noise,
}
