"""Label noise injected per site, with the true labels kept to score sample selection.

Definitions (``rate`` is the probability that a sample's label is corrupted):

* ``symmetric``: the label becomes one of the *other* classes, uniformly.
* ``asymmetric``: the label follows a fixed class-confusion map of clinically plausible
  mistakes (:data:`ASYMMETRIC_MAP`): a lesion called normal, a normal study called
  hypodense, a hyperdense lesion or several lesions read as a single hypodense one. For the
  binary task only misses are simulated (present -> absent).
* ``extreme``: 60 % of the sites carry symmetric noise at ``rate``, the others are clean.
* ``heterogeneous``: 30 % of the sites are clean; each other site draws its own rate
  uniformly within +-0.2 of ``m = rate * K / noisy sites``, clipped to ``[MIN_RATE, cap]``,
  and alternates symmetric and asymmetric noise; the rates are then shifted (in proportion
  to each site's room) so that the *average* over all ``K`` sites is ``rate``. That is
  exact wherever the bounds leave room: with 10 sites, for an average between 0.035 and
  0.45 (binary) or 0.415 (four classes); beyond, every noisy site sits at its bound.
* ``clean``: no noise (the clean upper bound).

**Every site's rate stays below the point where its labels stop pointing to the truth**
(:func:`rate_cap`): the fraction of class-``c`` studies labelled ``c`` must be higher than
the fraction of any other class's studies labelled ``c``. Symmetric noise breaks that at
``(C-1)/C``, where every label is equally likely whatever the truth; the four-class
confusion map swaps normal and hypodense, which breaks at 0.5; binary misses (present ->
absent only) keep a "present" label certain at any rate below 1 (noise rates
rho+ + rho- < 1). A site is capped
``MARGIN`` below that limit, and in the heterogeneous setting what the cap takes off is
given to the sites with room, so the average still holds. Without the cap a binary
symmetric site at 0.68 has two thirds of its labels inverted: it teaches the opposite
task, and no noise-robust method can tell that from its losses. A rate asked for above a
cap is lowered to it (the experiment grid's defaults stay under the caps:
``experiment.default_noise``).
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
#: How far below the limit of learnability a site's rate is capped.
MARGIN = 0.05
#: The lowest and highest rate of a noisy site in the heterogeneous setting.
MIN_RATE = 0.05
MAX_RATE = 0.9

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


def rate_cap(kind: str, classes: int) -> float:
    """The highest rate a site gets with noise ``kind`` (see the module docstring)."""
    if kind == "symmetric":
        limit = (classes - 1) / classes
    elif kind == "asymmetric":
        limit = 1.0 if classes == 2 else 0.5
    else:
        raise ValueError(f"no rate for site noise {kind!r}")
    return min(limit - MARGIN, MAX_RATE)


def _hold_average(rates: list[float], caps: list[float], total: float) -> list[float]:
    """Shift ``rates`` towards sum ``total``: a deficit goes to each site in proportion to its
    room under its cap, a surplus comes off in proportion to its room above ``MIN_RATE``.
    When the room is too small every site ends at its bound."""
    r = np.asarray(rates, dtype=np.float64)
    bound = np.asarray(caps, dtype=np.float64) if total > r.sum() else np.full(len(r), MIN_RATE)
    room = bound - r
    gap = total - float(r.sum())
    if abs(float(room.sum())) <= 1e-12:
        return [float(v) for v in r]
    share = min(gap / float(room.sum()), 1.0)
    return [float(v) for v in r + share * room]


def site_noise_plan(kind: str, rate: float, sites: int, classes: int, seed: int = 0) -> list[SiteNoise]:
    """What each of ``sites`` sites gets under one experiment-level noise setting, for a
    task of ``classes`` classes (which sets each site's :func:`rate_cap`)."""
    rng = np.random.default_rng([seed, 31])
    if kind == "clean":
        return [SiteNoise("clean", 0.0)] * sites
    if kind in ("symmetric", "asymmetric"):
        return [SiteNoise(kind, min(rate, rate_cap(kind, classes)))] * sites
    order = rng.permutation(sites)
    if kind == "extreme":
        noisy = set(order[: round(EXTREME_FRACTION * sites)].tolist())
        capped = min(rate, rate_cap("symmetric", classes))
        return [SiteNoise("symmetric", capped) if k in noisy else SiteNoise("clean", 0.0) for k in range(sites)]
    if kind == "heterogeneous":
        clean = set(order[: round(HETEROGENEOUS_CLEAN_FRACTION * sites)].tolist())
        noisy_ids = [k for k in range(sites) if k not in clean]
        centre = rate * sites / max(len(noisy_ids), 1)
        kinds = ["symmetric" if turn % 2 == 0 else "asymmetric" for turn in range(len(noisy_ids))]
        caps = [rate_cap(k, classes) for k in kinds]
        drawn = [float(np.clip(rng.uniform(centre - 0.2, centre + 0.2), MIN_RATE, cap)) for cap in caps]
        rates = _hold_average(drawn, caps, rate * sites)
        plan = [SiteNoise("clean", 0.0)] * sites
        for k, site_kind, site_rate in zip(noisy_ids, kinds, rates, strict=True):
            plan[k] = SiteNoise(site_kind, site_rate)
        return plan
    raise ValueError(f"unknown noise kind {kind!r}; one of {NOISE_KINDS}")
