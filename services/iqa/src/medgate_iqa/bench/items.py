"""MiniMedQ items: specimens (held-out slices with known degradations) and the questions,
descriptions and pairs built on them.

Everything is decided by plans drawn from one seed before any image is touched, so the
item set is the same on every machine: each modality gets ``images`` specimens with the
levels none/mild/severe in equal shares and the modality's attributes in turn; a quarter of
the severe ones carry a second, mild attribute (the first stays the primary one). Each
specimen gives one yes-or-no, one what and one how question and one description item;
pairs are built from a base slice of their own. Answers are balanced by construction
(yes/no half each, what-answers spread over the four letters, how-answers following the
balanced levels); ordinal scales keep their natural order, as in MedQ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from medgate_common.schemas.quality import QualityAttribute as A
from medgate_common.schemas.quality import Severity, Verdict
from medgate_iqa.bench import wording as w
from medgate_iqa.bench.specimens import (
    LEVELS,
    MODALITIES,
    Made,
    Pools,
    Specimen,
    apply,
    augment,
    draw_specimen,
)
from medgate_iqa.core.labels import APPLICABLE, ATTRIBUTES
from medgate_iqa.core.sources import BaseSlice
from medgate_iqa.degrade import attributes

Kind = Literal["yes-or-no", "what", "how"]
Scope = Literal["general", "specific"]
LETTERS = "ABCD"
T = TypeVar("T")


@dataclass(frozen=True)
class PerceptionItem:
    id: str
    specimen: str
    question: str
    options: tuple[str, ...]
    answer: str  # letter
    kind: Kind
    scope: Scope
    level: Severity  # of the image
    modality: str
    real: bool
    attribute: A | None  # asked about (yes-or-no, severity) or the right answer (what)


@dataclass(frozen=True)
class DescriptionItem:
    id: str
    specimen: str
    gold: str
    verdict: Verdict
    level: Severity
    modality: str
    real: bool


@dataclass(frozen=True)
class PairItem:
    id: str
    a: str
    b: str
    gold: str
    preferred: str  # "A" or "B"
    grain: Literal["coarse", "fine"]
    modality: str
    real: bool


@dataclass(frozen=True)
class Bench:
    specimens: dict[str, Specimen]
    perception: tuple[PerceptionItem, ...]
    descriptions: tuple[DescriptionItem, ...]
    pairs: tuple[PairItem, ...]


def _balanced(values: Sequence[T], n: int, rng: np.random.Generator) -> list[T]:
    """``n`` values in equal shares (up to one), in a seeded order."""
    out = [values[i % len(values)] for i in range(n)]
    return [out[i] for i in rng.permutation(n)]


def _specimens(
    pools: Pools, modality: str, n: int, real_share: float, rng: np.random.Generator, seed: int
) -> list[Specimen]:
    attrs = list(attributes(modality))
    levels = _balanced(list(LEVELS), n, rng)
    n_real = round(n * real_share) if pools.real else 0
    reals = _balanced([True] * n_real + [False] * (n - n_real), n, rng) if n else []
    order = [attrs[i] for i in rng.permutation(len(attrs))]
    out: list[Specimen] = []
    turn = 0
    for i in range(n):
        own = np.random.default_rng(np.random.SeedSequence([seed, MODALITIES.index(modality), i]))
        level = levels[i]
        key = f"{modality}-{i:04d}"
        made: Specimen | None = None
        if level is Severity.none:
            base = pools.draw(reals[i], own)
            made = Specimen(key, augment(base.image, own), modality, base.source, base.real, ())
        for _ in range(len(attrs)):
            if made is not None:
                break
            primary = order[turn % len(order)]
            turn += 1
            plan = [(primary, level)]
            if level is Severity.severe and own.random() < 0.25:
                others = [a for a in attrs if a is not primary]
                plan.append((others[int(own.integers(len(others)))], Severity.mild))
            made = draw_specimen(key, pools, modality, plan, reals[i], own)
        if made is None:
            raise RuntimeError(f"no base slice takes any {level.value} degradation for {key}")
        out.append(made)
    return out


def _scope(attribute: A | None) -> Scope:
    return "general" if attribute is None or attribute in w.GENERAL else "specific"


def _choice(rng: np.random.Generator, values: list[A]) -> A:
    return values[int(rng.integers(len(values)))]


def _yes_no(s: Specimen, yes: bool, rng: np.random.Generator) -> PerceptionItem:
    applied = {a.attribute for a in s.applied}
    asked = s.applied[0].attribute if yes else _choice(rng, [a for a in attributes(s.modality) if a not in applied])
    template = w.YES_NO[int(rng.integers(len(w.YES_NO)))]
    question = template.format(phrase=w.PHRASE[asked][0], modality=w.MODALITY_WORD[s.modality])
    return PerceptionItem(
        f"{s.key}-yn",
        s.key,
        question,
        ("Yes", "No"),
        "A" if yes else "B",
        "yes-or-no",
        _scope(asked),
        s.level,
        s.modality,
        s.real,
        asked,
    )


def _what(s: Specimen, position: int, rng: np.random.Generator) -> PerceptionItem:
    applied = {a.attribute for a in s.applied}
    same = [a for a in attributes(s.modality) if a not in applied]
    picks = [same[i] for i in rng.permutation(len(same))]
    if s.applied:
        truth, attribute = w.option(s.applied[0].attribute, s.modality), s.applied[0].attribute
        foreign = [a for a in ATTRIBUTES if a not in APPLICABLE[s.modality]]
        fourth = w.NO_ARTIFACT if rng.random() < 0.5 else w.option(_choice(rng, foreign), s.modality)
        others = [w.option(a, s.modality) for a in picks[:2]] + [fourth]
    else:
        truth, attribute = w.NO_ARTIFACT, None
        others = [w.option(a, s.modality) for a in picks[:3]]
    others = [others[i] for i in rng.permutation(len(others))]
    options = (*others[:position], truth, *others[position:])
    template = w.WHAT[int(rng.integers(len(w.WHAT)))]
    return PerceptionItem(
        f"{s.key}-what",
        s.key,
        template.format(modality=w.MODALITY_WORD[s.modality]),
        options,
        LETTERS[position],
        "what",
        _scope(attribute),
        s.level,
        s.modality,
        s.real,
        attribute,
    )


def _how(s: Specimen, overall: bool, rng: np.random.Generator) -> PerceptionItem:
    modality = w.MODALITY_WORD[s.modality]
    if overall:
        template = w.OVERALL[int(rng.integers(len(w.OVERALL)))]
        question, options = template.format(modality=modality), w.VERDICT_OPTIONS
        index, asked = list(Verdict).index(s.verdict), None
    else:
        asked = s.applied[0].attribute if s.applied else _choice(rng, list(attributes(s.modality)))
        template = w.SEVERITY[int(rng.integers(len(w.SEVERITY)))]
        question, options = template.format(bare=w.PHRASE[asked][1], modality=modality), w.SEVERITY_OPTIONS
        index = LEVELS.index(s.applied[0].level) if s.applied else 0
    return PerceptionItem(
        f"{s.key}-how",
        s.key,
        question,
        options,
        LETTERS[index],
        "how",
        _scope(asked),
        s.level,
        s.modality,
        s.real,
        asked,
    )


def _questions(specimens: list[Specimen], rng: np.random.Generator) -> list[PerceptionItem]:
    n = len(specimens)
    degraded = [i for i, s in enumerate(specimens) if s.applied]
    chosen = rng.choice(np.array(degraded, dtype=np.int64), size=min(len(degraded), n // 2), replace=False)
    yes = set(chosen.tolist())
    positions = _balanced([0, 1, 2, 3], n, rng)
    overall = _balanced([True, False], n, rng)
    items: list[PerceptionItem] = []
    for i, s in enumerate(specimens):
        own = np.random.default_rng(np.random.SeedSequence([int(rng.integers(2**31)), i]))
        position = positions[i]
        items += [_yes_no(s, i in yes, own), _what(s, position, own), _how(s, overall[i], own)]
    return items


def _pairs(
    pools: Pools, modality: str, n: int, real_share: float, rng: np.random.Generator, seed: int
) -> tuple[list[Specimen], list[PairItem]]:
    attrs = list(attributes(modality))
    grains = _balanced(["coarse", "fine"], n, rng)
    preferred = _balanced(["A", "B"], n, rng)
    n_real = round(n * real_share) if pools.real else 0
    reals = _balanced([True] * n_real + [False] * (n - n_real), n, rng) if n else []
    order = [attrs[i] for i in rng.permutation(len(attrs))]
    specimens: list[Specimen] = []
    items: list[PairItem] = []
    for j in range(n):
        own = np.random.default_rng(np.random.SeedSequence([seed, MODALITIES.index(modality), 100_000 + j]))
        coarse = grains[j] == "coarse"
        for turn in range(len(attrs)):
            x = order[(j + turn) % len(order)]
            if coarse:
                plans: tuple[list[tuple[A, Severity]], ...] = ([], [(x, Severity.severe)])
            else:
                y = x if own.random() < 0.5 else _choice(own, [a for a in attrs if a is not x])
                plans = ([(x, Severity.mild)], [(y, Severity.severe)])
            made = _pair(pools, modality, plans, reals[j], own)
            if made is not None:
                break
        else:
            raise RuntimeError(f"no base slice takes pair {j} of {modality}")
        base, better, worse = made
        first, second = (better, worse) if preferred[j] == "A" else (worse, better)
        keys = (f"{modality}-P{j:03d}-A", f"{modality}-P{j:03d}-B")
        for key, (image, applied) in zip(keys, (first, second), strict=True):
            specimens.append(Specimen(key, image, modality, base.source, base.real, applied))
        gold = w.describe_pair(first[1], second[1], preferred[j], coarse, own)
        items.append(
            PairItem(
                f"{modality}-P{j:03d}",
                *keys,
                gold,
                preferred[j],
                "coarse" if coarse else "fine",
                modality,
                base.real,
            )
        )
    return specimens, items


def _pair(
    pools: Pools,
    modality: str,
    plans: tuple[list[tuple[A, Severity]], ...],
    real: bool,
    rng: np.random.Generator,
    tries: int = 8,
) -> tuple[BaseSlice, Made, Made] | None:
    for _ in range(tries):
        base = pools.draw(real, rng)
        image = augment(base.image, rng)
        better = apply(image, modality, plans[0], rng)
        worse = apply(image, modality, plans[1], rng)
        if better is not None and worse is not None:
            return base, better, worse
    return None


def build_bench(
    bases: list[BaseSlice], images: int, seed: int, pairs: int | None = None, real_share: float = 0.25
) -> Bench:
    """``images`` specimens and ``pairs`` pairs (default ``images // 4``) per modality."""
    n_pairs = max(1, images // 4) if pairs is None else pairs
    specimens: dict[str, Specimen] = {}
    perception: list[PerceptionItem] = []
    descriptions: list[DescriptionItem] = []
    pair_items: list[PairItem] = []
    for m, modality in enumerate(MODALITIES):
        rng = np.random.default_rng(np.random.SeedSequence([seed, m]))
        pools = Pools(bases, modality)
        singles = _specimens(pools, modality, images, real_share, rng, seed)
        perception += _questions(singles, rng)
        for s in singles:
            own = np.random.default_rng(np.random.SeedSequence([seed, m, 200_000, int(s.key[-4:])]))
            gold = w.describe_gold(modality, s.applied, s.verdict, own)
            descriptions.append(DescriptionItem(f"{s.key}-desc", s.key, gold, s.verdict, s.level, modality, s.real))
        extra, items = _pairs(pools, modality, n_pairs, real_share, rng, seed)
        pair_items += items
        specimens.update({s.key: s for s in [*singles, *extra]})
    return Bench(specimens, tuple(perception), tuple(descriptions), tuple(pair_items))
