"""The peers the model is compared with in the same run: chance, and a reader that sees
nothing but the measured statistics (noise, sharpness, contrast, clipping).

The statistics reader's thresholds are calibrated on TRAIN-split base slices degraded by
the simulators, never on bench items. It can only measure the four general attributes, so
it says "no" to every modality-specific question and guesses the first named artifact
when a "what" question leaves it nothing it measured; its descriptions and comparisons are
written from its own calls, in its own words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medgate_common.schemas.quality import QualityAttribute as A
from medgate_common.schemas.quality import Severity, Verdict
from medgate_iqa.bench import wording as w
from medgate_iqa.bench.items import LETTERS, PerceptionItem
from medgate_iqa.bench.specimens import LEVELS
from medgate_iqa.core.lexicon import attribute_in
from medgate_iqa.core.sources import SYNTH_TRAIN_SEEDS, BaseSlice, real_slices, synthetic_slices
from medgate_iqa.core.stats import SliceStatistics, measure
from medgate_iqa.core.views import Image
from medgate_iqa.degrade import degrade, verdict_of

# attribute -> (statistic, +1 when a higher value is worse, -1 when lower is worse)
FEATURES: dict[A, tuple[str, int]] = {
    A.noise: ("noise_sigma", 1),
    A.blur: ("sharpness", -1),
    A.contrast: ("contrast", -1),
    A.exposure: ("clipped_fraction", 1),
}


def chance(item: PerceptionItem) -> float:
    """Expected accuracy of a uniform guess."""
    return 1.0 / len(item.options)


def train_bases(modality: str, synthetic: int = 4) -> list[BaseSlice]:
    """A few TRAIN-split slices: the first synthetic training seeds (as the training set
    draws them) and the real training images."""
    real = [b for b in real_slices("train") if b.modality == modality]
    return real + synthetic_slices("train", modality, per_study=3, seeds=list(SYNTH_TRAIN_SEEDS)[:synthetic])


@dataclass(frozen=True)
class Cut:
    """Thresholds on the signed statistic (higher is worse): none | mild | severe."""

    mild: float
    severe: float

    def level(self, x: float) -> Severity:
        return Severity.severe if x >= self.severe else Severity.mild if x >= self.mild else Severity.none

    def margin(self, x: float) -> float:
        return max(0.0, (x - self.mild) / max(self.severe - self.mild, 1e-6))


def _split(low: Sequence[float], high: Sequence[float], above: float = -np.inf) -> float:
    """The threshold above ``above`` with the best balanced accuracy between two samples."""
    lo, hi = np.asarray(low), np.asarray(high)
    values = np.unique(np.concatenate([lo, hi, [above]] if np.isfinite(above) else [lo, hi]))
    candidates = (values[:-1] + values[1:]) / 2.0 if len(values) > 1 else values
    candidates = candidates[candidates > above] if np.any(candidates > above) else np.array([above])
    score = [(np.mean(lo < t) + np.mean(hi >= t)) / 2.0 for t in candidates]
    return float(candidates[int(np.argmax(score))])


@dataclass(frozen=True)
class StatsCalibration:
    cuts: dict[str, dict[A, Cut]]
    slices: dict[str, int]  # train slices used per modality

    def findings(self, stats: SliceStatistics, modality: str) -> dict[A, tuple[Severity, float]]:
        out: dict[A, tuple[Severity, float]] = {}
        for attribute, cut in self.cuts[modality].items():
            name, sign = FEATURES[attribute]
            x = sign * float(getattr(stats, name))
            out[attribute] = (cut.level(x), cut.margin(x))
        return out


def calibrate(modalities: Sequence[str], seed: int, per_modality: int = 16) -> StatsCalibration:
    """Degrade TRAIN slices with each measured attribute at both levels and put each cut
    where it best separates clean from degraded, then mild from severe."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    cuts: dict[str, dict[A, Cut]] = {}
    used: dict[str, int] = {}
    for modality in modalities:
        bases = train_bases(modality)
        picks = [bases[i] for i in rng.permutation(len(bases))[:per_modality]]
        used[modality] = len(picks)
        clean = [measure(b.image, modality) for b in picks]
        cuts[modality] = {}
        for attribute, (name, sign) in FEATURES.items():
            by_level: dict[Severity, list[float]] = {s: [] for s in LEVELS}
            by_level[Severity.none] = [sign * float(getattr(s, name)) for s in clean]
            for b in picks:
                for level in (Severity.mild, Severity.severe):
                    made = degrade(b.image, modality, attribute, level, rng)
                    if made is not None:
                        by_level[level].append(sign * float(getattr(measure(made[0], modality), name)))
            bad = by_level[Severity.mild] + by_level[Severity.severe]
            mild = _split(by_level[Severity.none], bad)
            severe = _split(by_level[Severity.mild], by_level[Severity.severe], above=mild)
            cuts[modality][attribute] = Cut(mild, severe)
    return StatsCalibration(cuts, used)


class StatsReader:
    """Answers, describes and compares from :func:`~medgate_iqa.core.stats.measure` alone."""

    def __init__(self, calibration: StatsCalibration) -> None:
        self.calibration = calibration

    def read(self, image: Image, modality: str) -> dict[A, tuple[Severity, float]]:
        return self.calibration.findings(measure(image, modality), modality)

    @staticmethod
    def verdict(found: dict[A, tuple[Severity, float]]) -> Verdict:
        return Verdict(verdict_of([level for level, _ in found.values()]))

    def answer(self, item: PerceptionItem, found: dict[A, tuple[Severity, float]]) -> str:
        if item.kind == "yes-or-no":
            asked = item.attribute
            yes = asked in found and found[asked][0] is not Severity.none
            return "A" if yes else "B"
        if item.kind == "how":
            if item.attribute is None:
                return LETTERS[list(Verdict).index(self.verdict(found))]
            level = found[item.attribute][0] if item.attribute in found else Severity.none
            return LETTERS[LEVELS.index(level)]
        seen = sorted(
            ((LEVELS.index(level), margin, a) for a, (level, margin) in found.items() if level is not Severity.none),
            key=lambda t: (t[0], t[1]),
            reverse=True,
        )
        named = [attribute_in(option) for option in item.options]
        for _, _, attribute in seen:
            if attribute in named:
                return LETTERS[named.index(attribute)]
        if not seen and w.NO_ARTIFACT in item.options:
            return LETTERS[item.options.index(w.NO_ARTIFACT)]
        guess = next((i for i, a in enumerate(named) if a is not None and a not in FEATURES), 0)
        return LETTERS[guess]

    @staticmethod
    def _phrases(found: dict[A, tuple[Severity, float]]) -> list[str]:
        level = {a: found[a][0] if a in found else Severity.none for a in FEATURES}
        noise = {
            Severity.none: "measured noise is low",
            Severity.mild: "measured noise is slightly elevated",
            Severity.severe: "measured noise is severely elevated",
        }[level[A.noise]]
        edges = {
            Severity.none: "edges are sharp",
            Severity.mild: "edges show mild blurring",
            Severity.severe: "edges show severe blurring",
        }[level[A.blur]]
        contrast = {
            Severity.none: "tissue contrast lies in the expected range",
            Severity.mild: "contrast is slightly low",
            Severity.severe: "contrast is very low",
        }[level[A.contrast]]
        clipping = {
            Severity.none: "no clipping of the intensity range was measured",
            Severity.mild: "a small part of the anatomy is clipped, a mild exposure error",
            Severity.severe: "a large part of the anatomy is clipped, a severe exposure error",
        }[level[A.exposure]]
        return [noise, edges, contrast, clipping]

    def describe(self, modality: str, found: dict[A, tuple[Severity, float]]) -> str:
        noise, edges, contrast, clipping = self._phrases(found)
        verdict = self.verdict(found)
        return (
            f"On this {w.MODALITY_WORD[modality]} slice, {noise} and {edges}. "
            f"{contrast.capitalize()}; {clipping}. {w.verdict_sentence(verdict)}"
        )

    def compare(self, a: dict[A, tuple[Severity, float]], b: dict[A, tuple[Severity, float]]) -> tuple[str, str]:
        def badness(found: dict[A, tuple[Severity, float]]) -> float:
            return sum(LEVELS.index(level) + 0.1 * margin for level, margin in found.values())

        preferred = "A" if badness(a) <= badness(b) else "B"
        text = " ".join(
            [
                f"In image A, {'; '.join(self._phrases(a))}.",
                f"In image B, {'; '.join(self._phrases(b))}.",
                f"Overall, image {preferred} has the higher quality.",
            ]
        )
        return preferred, text
