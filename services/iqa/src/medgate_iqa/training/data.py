"""Training and test samples: base slices degraded by the simulators, with measured labels.

Each sample is clean (22 %), carries one degradation (60 %) or two (18 %), each at a
measured level; about a third of the MR degradations torchio covers come from torchio.
Labels are per attribute (none/mild/severe) plus the verdict of the default rule.
Generation is deterministic in (seed, index) and runs in worker processes.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from medgate_common.schemas.quality import QualityAttribute as A
from medgate_common.schemas.quality import Severity
from medgate_iqa.core.labels import ATTRIBUTES, MODALITY_INDEX, SEVERITIES, VERDICTS
from medgate_iqa.core.sources import BaseSlice, Split, base_slices
from medgate_iqa.core.views import model_input
from medgate_iqa.degrade import Applied, Operator, attributes, degrade, verdict_of


@dataclass(frozen=True)
class Sample:
    image: npt.NDArray[np.float32]  # grid slice in physical units
    modality: str
    source: str
    applied: tuple[Applied, ...]

    @property
    def levels(self) -> npt.NDArray[np.int64]:
        out = np.zeros(len(ATTRIBUTES), dtype=np.int64)
        for a in self.applied:
            i = ATTRIBUTES.index(a.attribute)
            out[i] = max(out[i], SEVERITIES.index(a.level))
        return out

    @property
    def verdict(self) -> str:
        return verdict_of([a.level for a in self.applied])


def _augment(image: npt.NDArray[np.float32], modality: str, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Variety a site's clean images have and our few bases lack: orientation, field of
    view (zoom), and for MR the arbitrary contrast of a sequence (a monotone gamma)."""
    image = np.rot90(image, int(rng.integers(4)))
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.35:
        image = _zoom(np.ascontiguousarray(image), float(rng.uniform(0.8, 1.25)), modality)
    if modality == "MR" and rng.random() < 0.5:
        top = max(float(np.percentile(image, 99.5)), 1e-6)
        image = (np.clip(image, 0, None) / top) ** rng.uniform(0.7, 1.4) * top
    return np.ascontiguousarray(image, dtype=np.float32)


def _zoom(image: npt.NDArray[np.float32], factor: float, modality: str) -> npt.NDArray[np.float32]:
    n = image.shape[0]
    zoomed: npt.NDArray[np.float32] = ndimage.zoom(image, factor, order=1).astype(np.float32)
    m = zoomed.shape[0]
    if m >= n:
        start = (m - n) // 2
        return zoomed[start : start + n, start : start + n]
    background = -1000.0 if modality == "CT" else float(np.percentile(image, 1))
    out = np.full((n, n), background, dtype=np.float32)
    start = (n - m) // 2
    out[start : start + m, start : start + m] = zoomed
    return out


def _reconstruction_circle(image: npt.NDArray[np.float32], rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """CT scanners fill the corners outside the reconstruction circle with a padding value."""
    n = image.shape[0]
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2.0
    outside = np.hypot(yy, xx) > n / 2.0 * rng.uniform(0.9, 1.0)
    out = image.copy()
    out[outside] = float(rng.choice([-1024.0, -2000.0, -3024.0]))
    return out


TORCHIO_SHARE = 0.35
# Bump when the simulators or the sampling change, so cached arrays are not reused.
DATA_VERSION = 5


def _operator(modality: str, attribute: A, rng: np.random.Generator) -> Operator | None:
    """torchio's implementation for about a third of the MR attributes it covers."""
    from medgate_iqa.training.torchio_ops import MR_OPERATORS

    if modality == "MR" and attribute in MR_OPERATORS and rng.random() < TORCHIO_SHARE:
        return MR_OPERATORS[attribute]
    return None


def make_sample(base: BaseSlice, rng: np.random.Generator, clean: float = 0.22, double: float = 0.18) -> Sample:
    image = _augment(base.image, base.modality, rng)
    u = rng.random()
    count = 0 if u < clean else 2 if u > 1.0 - double else 1
    chosen = rng.choice(np.array(attributes(base.modality), dtype=object), size=count, replace=False)
    applied: list[Applied] = []
    for attribute in chosen:
        level = Severity.mild if rng.random() < 0.5 else Severity.severe
        result = degrade(image, base.modality, attribute, level, rng, operator=_operator(base.modality, attribute, rng))
        if result is None:
            continue
        image, what = result
        applied.append(what)
    if base.modality == "CT" and rng.random() < 0.35:
        image = _reconstruction_circle(image, rng)
    return Sample(image, base.modality, base.source, tuple(applied))


def _pick(bases: list[BaseSlice], rng: np.random.Generator, real_share: float) -> BaseSlice:
    modality = "CT" if rng.random() < 0.5 else "MR"
    pool = [b for b in bases if b.modality == modality]
    real = [b for b in pool if b.real]
    if real and rng.random() < real_share:
        return real[int(rng.integers(len(real)))]
    synthetic = [b for b in pool if not b.real] or pool
    return synthetic[int(rng.integers(len(synthetic)))]


_BASES: list[BaseSlice] = []


def _init(split: Split) -> None:
    _BASES.extend(base_slices(split))


def _one(args: tuple[int, int, float]) -> Sample:
    seed, index, real_share = args
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    return make_sample(_pick(_BASES, rng, real_share), rng)


def generate(split: Split, count: int, seed: int, workers: int = 2, real_share: float = 0.35) -> list[Sample]:
    jobs = [(seed, i, real_share) for i in range(count)]
    if workers <= 1:
        _init(split)
        return [_one(j) for j in jobs]
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(split,)) as pool:
        return list(pool.map(_one, jobs, chunksize=64))


@dataclass(frozen=True)
class Arrays:
    x: npt.NDArray[np.float16]  # (N, 2, G, G) model views
    modality: npt.NDArray[np.int64]  # (N,)
    levels: npt.NDArray[np.int64]  # (N, attributes)
    verdict: npt.NDArray[np.int64]  # (N,)


def to_arrays(samples: list[Sample]) -> Arrays:
    return Arrays(
        x=np.stack([model_input(s.image, s.modality) for s in samples]).astype(np.float16),
        modality=np.array([MODALITY_INDEX[s.modality] for s in samples], dtype=np.int64),
        levels=np.stack([s.levels for s in samples]),
        verdict=np.array([[v.value for v in VERDICTS].index(s.verdict) for s in samples], dtype=np.int64),
    )
