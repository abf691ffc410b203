"""Synthetic CT volumes with fragmented lesions for the BARL experiments.

Studies come from :func:`medgate_common.synth.generate_study` (the same generator as
``medgate synth``), across the three scanner profiles, at 3 mm slices and a matrix that
gives about 3 mm pixels, so that the voxel grid is the one the served model expects
(``SPACING_MM``). Each volume is cropped to the body's bounding box and mapped to [0, 1]
through the soft-tissue window ``WINDOW_HU``. Labels are binary lesion masks; the
generator's lesion instance ids are kept for lesion-wise detection scoring.

Training studies all carry 1-6 lesions (as in the public SSL benchmarks, where every
volume shows the target); the test set also holds normal studies, so that false
positives on a normal study are measured too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch.nn import functional

from medgate_common.synth.profiles import PROFILES
from medgate_common.synth.study import generate_study

SPACING_MM = (3.0, 3.0, 3.0)
WINDOW_HU = (-20.0, 140.0)
SLICES = 32
MAX_LESIONS = 6
PATCH = (16, 32, 32)
#: Seeds of the generator: training studies and test studies never share one.
TRAIN_SEED, TEST_SEED = 6100, 6200


@dataclass(frozen=True)
class Volume:
    image: npt.NDArray[np.float32]  # [D, H, W] in [0, 1]
    label: npt.NDArray[np.uint8]  # [D, H, W] 0/1
    instances: npt.NDArray[np.uint16]  # generator lesion ids, 0 = none
    name: str


def normalise_hu(hu: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    lo, hi = WINDOW_HU
    return np.asarray(np.clip((hu.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0), dtype=np.float32)


def synth_volume(seed: int, index: int, lesion_count: int | None = None, slices: int = SLICES) -> Volume:
    """One study, body-cropped and normalised. ``lesion_count`` None draws 0-6 lesions."""
    profile_name = sorted(PROFILES)[index % len(PROFILES)]
    profile = dataclasses.replace(PROFILES[profile_name], slice_thickness_mm=SPACING_MM[0])
    matrix = round(profile.ct_fov_mm / SPACING_MM[1])
    study = generate_study(
        "CT", seed=seed, index=index, profile=profile, slices=slices, matrix=matrix,
        max_lesions=MAX_LESIONS, lesion_count=lesion_count,
    )  # fmt: skip
    hu = study.hu_or_signal
    body = np.argwhere(hu > -400.0)
    lo = np.maximum(body.min(axis=0) - 2, 0)
    hi = np.minimum(body.max(axis=0) + 3, hu.shape)
    box = (slice(None), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2])))
    instances = study.lesions[box]
    return Volume(normalise_hu(hu[box]), (instances > 0).astype(np.uint8), instances, f"{profile_name}-{seed}-{index}")


def training_set(count: int, seed: int = TRAIN_SEED) -> list[Volume]:
    """``count`` lesion-bearing studies (1-6 lesions each)."""
    rng = np.random.default_rng(seed)
    return [synth_volume(seed, i, int(rng.integers(1, MAX_LESIONS + 1))) for i in range(count)]


def held_out_set(count: int, seed: int = TEST_SEED, normal_every: int = 5) -> list[Volume]:
    """Held-out studies; every ``normal_every``-th one is normal (no lesion)."""
    rng = np.random.default_rng(seed)
    return [
        synth_volume(seed, i, 0 if (i + 1) % normal_every == 0 else int(rng.integers(1, MAX_LESIONS + 1)))
        for i in range(count)
    ]


def labelled_split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of the labelled subset (at least 2) and of the unlabelled rest, drawn per seed."""
    order = np.random.default_rng([seed, 17]).permutation(n)
    k = max(2, round(n * fraction))
    return sorted(int(i) for i in order[:k]), sorted(int(i) for i in order[k:])


class PatchSampler:
    """Random ``PATCH``-sized crops; labelled crops are centred on a lesion two times in three.

    Unlabelled crops cannot look at labels; they are centred on a soft-tissue voxel (where
    the organs, and so the lesions, are) so that few crops are empty air.
    """

    def __init__(self, volumes: Sequence[Volume], rng: np.random.Generator, lesion_bias: float = 2 / 3) -> None:
        self.volumes = list(volumes)
        self.rng = rng
        self.lesion_bias = lesion_bias
        self._lesion = [np.argwhere(v.label > 0) for v in self.volumes]
        self._tissue = [np.argwhere((v.image > 0.25) & (v.image < 0.75)) for v in self.volumes]

    def _centre(self, i: int, labelled: bool) -> npt.NDArray[np.int64]:
        pool = self._lesion[i] if labelled and self.rng.random() < self.lesion_bias else self._tissue[i]
        if len(pool) == 0:
            pool = np.argwhere(np.ones_like(self.volumes[i].label, dtype=bool))
        return np.asarray(pool[int(self.rng.integers(len(pool)))], dtype=np.int64)

    def sample(self, batch: int, labelled: bool) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = [], []
        for _ in range(batch):
            i = int(self.rng.integers(len(self.volumes)))
            v = self.volumes[i]
            centre = self._centre(i, labelled)
            # Padded by half a patch, the crop starting at ``centre`` (+ jitter) is centred on it.
            jitter = [int(self.rng.integers(-(p // 4), p // 4 + 1)) for p in PATCH]
            start = [
                int(np.clip(c + j, 0, n + 2 * (p // 2) - p))
                for c, j, n, p in zip(centre, jitter, v.image.shape, PATCH, strict=True)
            ]
            window = tuple(slice(s, s + p) for s, p in zip(start, PATCH, strict=True))
            pad = [(p // 2, p // 2) for p in PATCH]
            crops = [np.pad(array, pad, mode="constant")[window] for array in (v.image, v.label)]
            images.append(crops[0])
            labels.append(crops[1])
        return torch.from_numpy(np.stack(images)[:, None].copy()), torch.from_numpy(np.stack(labels).astype(np.int64))


def weak_view(
    image: torch.Tensor, label: torch.Tensor | None, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random in-plane flips (image and label alike) and an intensity scale x[0.9, 1.1]."""
    out, lab = image.clone(), None if label is None else label.clone()
    for b in range(out.shape[0]):
        for axis in (2, 3):  # H, W of [C, D, H, W] / W of [D, H, W]
            if torch.rand((), generator=generator) < 0.5:
                out[b] = out[b].flip(axis)
                if lab is not None:
                    lab[b] = lab[b].flip(axis - 1)
        out[b] = out[b] * (0.9 + 0.2 * torch.rand((), generator=generator))
    return out, lab


def strong_view(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Photometric only, so voxel correspondence with the weak view is the identity:
    gamma [0.7, 1.5], Gaussian noise sigma 0.03-0.08, a light blur half the time, one cutout box."""
    out = image.clone()
    for b in range(out.shape[0]):
        gamma = 0.7 + 0.8 * float(torch.rand((), generator=generator))
        x = out[b].clamp(0.0, 1.0) ** gamma
        sigma = 0.03 + 0.05 * float(torch.rand((), generator=generator))
        x = x + sigma * torch.randn(x.shape, generator=generator).to(x.device)
        if torch.rand((), generator=generator) < 0.5:
            k = torch.tensor([0.25, 0.5, 0.25], device=x.device)
            kernel = (k[:, None, None] * k[None, :, None] * k[None, None, :])[None, None]
            x = functional.conv3d(x[None], kernel, padding=1)[0]
        d, h, w = x.shape[1:]
        cd, ch, cw = d // 3, h // 3, w // 3
        z0 = int(torch.randint(0, d - cd + 1, (), generator=generator))
        y0 = int(torch.randint(0, h - ch + 1, (), generator=generator))
        x0 = int(torch.randint(0, w - cw + 1, (), generator=generator))
        x[:, z0 : z0 + cd, y0 : y0 + ch, x0 : x0 + cw] = 0.0
        out[b] = x
    return out
