"""Specimens: held-out base slices with known degradations, the images MiniMedQ asks about.

A specimen is a base slice (randomly rotated and flipped, as in training) that went through
the simulators with a planned attribute and level; a plan that no draw of the base can reach
(a blank slice cannot be blurred "severely") is tried on other bases of the same pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medgate_common.schemas.quality import QualityAttribute as A
from medgate_common.schemas.quality import Severity, Verdict
from medgate_iqa.core.sources import SYNTH_TEST_SEEDS, BaseSlice, real_slices, synthetic_slices
from medgate_iqa.degrade import Applied, degrade, verdict_of
from medgate_iqa.degrade.base import Image

MODALITIES = ("CT", "MR")
LEVELS = (Severity.none, Severity.mild, Severity.severe)
Made = tuple[Image, tuple[Applied, ...]]


@dataclass(frozen=True)
class Specimen:
    key: str
    image: Image
    modality: str
    source: str
    real: bool
    applied: tuple[Applied, ...]  # the first is the primary finding

    @property
    def level(self) -> Severity:
        return max((a.level for a in self.applied), key=LEVELS.index, default=Severity.none)

    @property
    def verdict(self) -> Verdict:
        return Verdict(verdict_of([a.level for a in self.applied]))


def augment(image: Image, rng: np.random.Generator) -> Image:
    image = np.rot90(image, int(rng.integers(4)))
    if rng.random() < 0.5:
        image = image[:, ::-1]
    return np.ascontiguousarray(image, dtype=np.float32)


def apply(image: Image, modality: str, plan: list[tuple[A, Severity]], rng: np.random.Generator) -> Made | None:
    applied: list[Applied] = []
    for attribute, level in plan:
        result = degrade(image, modality, attribute, level, rng)
        if result is None:
            return None
        image, what = result
        applied.append(what)
    return image, tuple(applied)


class Pools:
    """Held-out bases of one modality, real and synthetic, drawn from by a flag."""

    def __init__(self, bases: list[BaseSlice], modality: str) -> None:
        own = [b for b in bases if b.modality == modality]
        self.real = [b for b in own if b.real]
        self.synthetic = [b for b in own if not b.real]
        if not own:
            raise ValueError(f"no held-out base slices for {modality}")

    def pool(self, real: bool) -> list[BaseSlice]:
        return (self.real if real else self.synthetic) or self.real or self.synthetic

    def draw(self, real: bool, rng: np.random.Generator) -> BaseSlice:
        pool = self.pool(real)
        return pool[int(rng.integers(len(pool)))]


def draw_specimen(
    key: str,
    pools: Pools,
    modality: str,
    plan: list[tuple[A, Severity]],
    real: bool,
    rng: np.random.Generator,
    tries: int = 8,
) -> Specimen | None:
    for _ in range(tries):
        base = pools.draw(real, rng)
        made = apply(augment(base.image, rng), modality, plan, rng)
        if made is not None:
            return Specimen(key, made[0], modality, base.source, base.real, made[1])
    return None


def quick_bases() -> list[BaseSlice]:
    """A small held-out base set for smoke runs and tests: the real held-out images plus
    three slices of the first held-out synthetic seed per modality (all of
    ``base_slices("test")`` takes seconds to synthesise)."""
    out = real_slices("test")
    for modality in MODALITIES:
        out += synthetic_slices("test", modality, per_study=3, seeds=[SYNTH_TEST_SEEDS[0]])
    return out
