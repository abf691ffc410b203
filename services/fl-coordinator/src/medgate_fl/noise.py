"""Label noise injected per site, with the true labels kept to score sample selection.

Definitions (``rate`` is the probability that a sample's label is corrupted):

* ``symmetric``: the label becomes one of the *other* classes, uniformly.
* ``asymmetric``: the label follows a fixed class-confusion map of clinically plausible
  mistakes (:data:`ASYMMETRIC_MAP`): a lesion called normal, a normal study called
  hypodense, a hyperdense lesion or several lesions read as a single hypodense one. For the
  binary task only misses are simulated (present -> absent).
* ``extreme``: 60 % of the sites carry symmetric noise at ``rate`` (0.8 by default in the
  experiments), the others are clean.
* ``heterogeneous``: 30 % of the sites are clean; each other site draws its own rate
  uniformly within +-0.2 of ``m`` (clipped to [0.05, 0.9]) and alternates symmetric and
  asymmetric noise, where ``m = rate * K / noisy sites`` so that the *average* over all
  ``K`` sites is ``rate``.
* ``clean``: no noise (the clean upper bound).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

NOISE_KINDS = ("clean", "symmetric", "asymmetric", "extreme", "heterogeneous")
#: Four-class confusion: normal -> hypodense, hypodense -> normal, hyperdense -> hypodense,
#: multiple -> hypodense.
ASYMMETRIC_MAP = {0: 1, 1: 0, 2: 1, 3: 1}
BINARY_ASYMMETRIC_MAP = {1: 0}
EXTREME_FRACTION = 0.6
HETEROGENEOUS_CLEAN_FRACTION = 0.3

Labels = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SiteNoise:
    kind: str  # "clean", "symmetric" or "asymmetric": what this one site gets
    rate: float


def flip_symmetric(labels: Labels, rate: float, classes: int, rng: np.random.Generator) -> Labels:
    out = labels.copy()
    flip = rng.random(len(labels)) < rate
    shift = rng.integers(1, classes, size=len(labels))
    out[flip] = (labels[flip] + shift[flip]) % classes
    return out


def flip_asymmetric(labels: Labels, rate: float, mapping: dict[int, int], rng: np.random.Generator) -> Labels:
    out = labels.copy()
    flip = rng.random(len(labels)) < rate
    for source, target in mapping.items():
        out[flip & (labels == source)] = target
    return out


def corrupt(labels: Labels, noise: SiteNoise, classes: int, rng: np.random.Generator) -> Labels:
    """The noisy labels of one site; ``labels`` (the truth) is left untouched."""
    if noise.kind == "clean" or noise.rate <= 0.0:
        return labels.copy()
    if noise.kind == "symmetric":
        return flip_symmetric(labels, noise.rate, classes, rng)
    if noise.kind == "asymmetric":
        mapping = BINARY_ASYMMETRIC_MAP if classes == 2 else ASYMMETRIC_MAP
        return flip_asymmetric(labels, noise.rate, mapping, rng)
    raise ValueError(f"unknown site noise {noise.kind!r}")


def site_noise_plan(kind: str, rate: float, sites: int, seed: int = 0) -> list[SiteNoise]:
    """What each of ``sites`` sites gets under one experiment-level noise setting."""
    rng = np.random.default_rng([seed, 31])
    if kind == "clean":
        return [SiteNoise("clean", 0.0)] * sites
    if kind in ("symmetric", "asymmetric"):
        return [SiteNoise(kind, rate)] * sites
    order = rng.permutation(sites)
    if kind == "extreme":
        noisy = set(order[: round(EXTREME_FRACTION * sites)].tolist())
        return [SiteNoise("symmetric", rate) if k in noisy else SiteNoise("clean", 0.0) for k in range(sites)]
    if kind == "heterogeneous":
        clean = set(order[: round(HETEROGENEOUS_CLEAN_FRACTION * sites)].tolist())
        noisy_count = sites - len(clean)
        centre = rate * sites / max(noisy_count, 1)
        plan: list[SiteNoise] = []
        turn = 0
        for k in range(sites):
            if k in clean:
                plan.append(SiteNoise("clean", 0.0))
                continue
            site_rate = float(np.clip(rng.uniform(centre - 0.2, centre + 0.2), 0.05, 0.9))
            plan.append(SiteNoise("symmetric" if turn % 2 == 0 else "asymmetric", site_rate))
            turn += 1
        return plan
    raise ValueError(f"unknown noise kind {kind!r}; one of {NOISE_KINDS}")
