"""Physics-based degradation simulators with measured severity levels.

``OPERATORS[modality][attribute]`` is an operator ``(slice, s, rng) -> (slice, location)``
with a severity knob ``s`` in [0, 1]; the knob is *not* the label. :func:`degrade` searches
the knob until the measured :func:`~medgate_iqa.degrade.impact.impact` falls inside the
band of the requested level (:data:`BANDS`), and records knob, impact and location, so the
level of every generated image is a measurement of the image it produced.

Slices are in physical units on the model grid: CT in HU, MR in scanner signal (>= 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from medgate_common.schemas.quality import QualityAttribute as A
from medgate_common.schemas.quality import Severity
from medgate_iqa.core.labels import verdict_of
from medgate_iqa.degrade import common, ct, mr
from medgate_iqa.degrade.base import Image, Rng
from medgate_iqa.degrade.impact import impact

Operator = Callable[[Image, float, Rng], tuple[Image, str]]

OPERATORS: dict[str, dict[A, Operator]] = {
    "CT": {
        A.noise: ct.low_dose,
        A.streak: ct.sparse_view,
        A.limited_angle: ct.limited_angle,
        A.metal: ct.metal,
        A.ring: ct.ring,
        A.motion: ct.motion,
        A.blur: common.blur,
        A.exposure: partial(common.exposure, modality="CT"),
        A.contrast: partial(common.contrast, modality="CT"),
    },
    "MR": {
        A.motion: mr.motion,
        A.ghosting: mr.ghosting,
        A.undersampling: mr.undersampling,
        A.bias_field: mr.bias_field,
        A.spike: mr.spike,
        A.gibbs: mr.gibbs,
        A.noise: mr.noise,
        A.susceptibility: mr.susceptibility,
        A.blur: common.blur,
        A.exposure: partial(common.exposure, modality="MR"),
        A.contrast: partial(common.contrast, modality="MR"),
    },
}

FOCAL = frozenset({A.metal, A.susceptibility})


@dataclass(frozen=True)
class Band:
    """Impact range of "mild" ([mild_lo, mild_hi]) and the floor of "severe"; the gap
    between them is never labelled, so the two levels cannot be confused by a hair."""

    mild_lo: float
    mild_hi: float
    severe_lo: float

    def level(self, value: float) -> Severity | None:
        if self.mild_lo <= value <= self.mild_hi:
            return Severity.mild
        if value >= self.severe_lo:
            return Severity.severe
        if value < self.mild_lo * 0.5:
            return Severity.none
        return None


DEFAULT_BAND = Band(0.08, 0.22, 0.32)
BANDS: dict[A, Band] = {
    A.metal: Band(0.30, 0.60, 0.85),
    A.susceptibility: Band(0.20, 0.45, 0.70),
    A.exposure: Band(0.12, 0.30, 0.42),
    A.ring: Band(0.04, 0.12, 0.20),
    A.spike: Band(0.04, 0.12, 0.20),
    A.gibbs: Band(0.04, 0.12, 0.20),
    A.bias_field: Band(0.06, 0.15, 0.22),
    A.ghosting: Band(0.06, 0.15, 0.22),
}


def band(attribute: A) -> Band:
    return BANDS.get(attribute, DEFAULT_BAND)


@dataclass(frozen=True)
class Applied:
    """What was done to a slice: the ground truth the benchmark and training read."""

    attribute: A
    level: Severity
    knob: float
    impact: float
    location: str


def attributes(modality: str) -> tuple[A, ...]:
    return tuple(OPERATORS[modality])


def degrade(
    image: Image,
    modality: str,
    attribute: A,
    level: Severity,
    rng: Rng,
    tries: int = 7,
    operator: Operator | None = None,
) -> tuple[Image, Applied] | None:
    """Apply ``attribute`` so that the measured impact lands in ``level``'s band.

    Bisects the knob between tries; returns ``None`` when no knob in [0, 1] gets there on
    this slice (e.g. a blank slice cannot be made "severely" blurred), and the caller
    draws another slice. ``operator`` replaces ours with another implementation of the
    same attribute (training mixes in torchio's), measured by the same bands.
    """
    if level is Severity.none:
        raise ValueError("level none means: do not degrade")
    op = operator or OPERATORS[modality][attribute]
    b = band(attribute)
    lo, hi = 0.0, 1.0
    knob = float(rng.uniform(0.1, 0.5) if level is Severity.mild else rng.uniform(0.5, 1.0))
    for _ in range(tries):
        out, where = op(image, knob, rng)
        value = impact(image, out, modality, focal=attribute in FOCAL)
        if b.level(value) is level:
            return out, Applied(attribute, level, round(knob, 4), round(value, 4), where)
        target_lo = b.mild_lo if level is Severity.mild else b.severe_lo
        if value < target_lo:
            lo = knob
        else:
            hi = knob
        if hi - lo < 1e-3:
            break
        knob = float(rng.uniform(lo + 0.25 * (hi - lo), hi - 0.25 * (hi - lo)))
    return None


__all__ = [
    "BANDS",
    "FOCAL",
    "OPERATORS",
    "Applied",
    "Band",
    "Operator",
    "attributes",
    "band",
    "degrade",
    "impact",
    "verdict_of",
]
