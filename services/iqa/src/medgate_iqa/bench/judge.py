"""Scoring free-text quality descriptions on MedQ-Bench's four axes (0-2 each, total 0-8).

:class:`Judge` is the seam: MedQ uses an LLM (GPT-4o) here, and one can be plugged in behind
the same ``score``. :class:`RuleJudge` is the offline judge. It reads the gold and the
candidate with :mod:`medgate_iqa.bench.claims` and applies the rubric:

- completeness: the share of the gold's findings the candidate asserts (all: 2, some or
  only through a look-alike: 1, none: 0); for a clean gold, 2 when the candidate claims no
  problem and says what is absent, 1 when it claims none but says nothing specific, 0 when
  it invents one;
- preciseness: obvious contradictions (denying a severe finding or all of them, naming another artifact
  instead of the gold's, the opposite verdict or the wrong preferred image, two or more
  invented or mis-graded findings) give 0; one such minor point, or a verdict one step
  off, gives 1; none gives 2. An invented finding that is how a gold finding looks
  (streaks from an implant, blur from a missing arc) is not counted;
- consistency: the candidate's own findings against its own verdict (a severe one: reject,
  mild or ungraded: usable, none: good; three or more: usable or reject), scored by
  ordinal distance; for pairs, preferring the image it describes as worse gives 0;
- quality accuracy: ordinal distance of the verdicts (2/1/0), or the preferred image (2/0).
A missing verdict or preference scores 0 on quality accuracy and 1 on consistency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from medgate_common.schemas.quality import QualityAttribute as A
from medgate_common.schemas.quality import Severity, Verdict
from medgate_iqa.bench import claims as c

Task = Literal["single", "pair"]
AXES = ("completeness", "preciseness", "consistency", "quality_accuracy")
_ORDER = {Verdict.reject: 0, Verdict.usable: 1, Verdict.good: 2}
_WEIGHT = {None: 1.0, Severity.mild: 1.0, Severity.severe: 2.0}


@dataclass(frozen=True)
class JudgeScores:
    completeness: int
    preciseness: int
    consistency: int
    quality_accuracy: int
    raw: str = ""

    @property
    def total(self) -> int:
        return self.completeness + self.preciseness + self.consistency + self.quality_accuracy

    def axes(self) -> dict[str, int]:
        return {axis: int(getattr(self, axis)) for axis in AXES}


class Judge(Protocol):
    name: str

    def score(self, candidate: str, gold: str, task: Task) -> JudgeScores: ...


@dataclass
class _Review:
    """What one image's candidate text gets right and wrong against its gold."""

    covered: int = 0
    related: int = 0  # findings not named but described through a look-alike
    findings: int = 0
    obvious: list[str] = field(default_factory=list)
    minor: list[str] = field(default_factory=list)
    clean_ok: int = 0  # clean gold: 0 invented, 1 silent, 2 says what is absent


def _review(gold: c.Claims, cand: c.Claims, clean_words: bool) -> _Review:
    out = _Review()
    gold_on, cand_on = c.asserted(gold), c.asserted(cand)
    out.findings = len(gold_on)
    denials: list[tuple[A, Severity | None]] = []
    for attribute, level in gold_on.items():
        if attribute in cand_on:
            out.covered += 1
            said = cand_on[attribute]
            if said is not None and level is not None and said is not level:
                out.minor.append(f"{attribute.value}: {said.value} for {level.value}")
        elif attribute in c.denied(cand):
            denials.append((attribute, level))
        elif c.RELATED.get(attribute, frozenset()) & set(cand_on):
            out.related += 1
    for attribute, level in denials:
        # Denying a severe finding, or every finding there is, is the obvious kind.
        obvious = level is Severity.severe or out.covered + out.related == 0
        (out.obvious if obvious else out.minor).append(f"denies {attribute.value}")
    related = set().union(*(c.RELATED.get(a, frozenset()) for a in gold_on)) if gold_on else set()
    invented = [a for a in cand_on if a not in gold_on and a not in related]
    if gold_on and invented and out.covered + out.related == 0:
        out.obvious.append(f"names {invented[0].value} instead of the gold's findings")
    else:
        out.minor += [f"invents {a.value}" for a in invented]
    if not gold_on:
        out.clean_ok = 0 if cand_on else 2 if c.denied(cand) or clean_words else 1
    return out


def _completeness(reviews: list[_Review]) -> int:
    """All findings named: 2 (1 if a clean image of a pair got an invented one); some, or
    only through look-alikes: 1; none: 0."""
    findings = sum(r.findings for r in reviews)
    if findings == 0:
        return min(r.clean_ok for r in reviews)
    covered = sum(r.covered for r in reviews)
    spoiled = any(r.findings == 0 and r.clean_ok == 0 for r in reviews)
    if covered == findings:
        return 1 if spoiled else 2
    return 1 if covered or sum(r.related for r in reviews) else 0


def _preciseness(reviews: list[_Review], verdict_step: int) -> int:
    obvious = sum(len(r.obvious) for r in reviews) + (verdict_step >= 2)
    minor = sum(len(r.minor) for r in reviews)
    if obvious or minor >= 2:
        return 0
    return 1 if minor or verdict_step == 1 else 2


def expected_verdicts(found: dict[A, Severity | None]) -> set[Verdict]:
    """The rule MedQ asks the verdict to follow, on the text's own findings."""
    if not found:
        return {Verdict.good}
    if Severity.severe in found.values():
        return {Verdict.reject}
    return {Verdict.usable, Verdict.reject} if len(found) >= 3 else {Verdict.usable}


def _badness(claims: c.Claims, text: str) -> float:
    """How bad a text says one image is: its findings, weighted by severity, plus comparative
    words ("noisier", "only faint") and grades given without a named attribute ("a strong one")."""
    found = c.asserted(claims)
    score = sum(_WEIGHT[s] for s in found.values())
    score += 0.5 * len(c.WORSE_WORDS.findall(text)) - 0.5 * len(c.BETTER_WORDS.findall(text))
    if not found:
        score += sum(_WEIGHT[s] for s in c.unnamed_grades(text))
    return score


class RuleJudge:
    """The offline judge; deterministic, no model."""

    name = "rule-judge-1"

    def score(self, candidate: str, gold: str, task: Task) -> JudgeScores:
        return self._pair(candidate, gold) if task == "pair" else self._single(candidate, gold)

    def _single(self, candidate: str, gold: str) -> JudgeScores:
        gold_claims, cand_claims = c.read(gold), c.read(candidate)
        review = _review(gold_claims, cand_claims, c.says_clean(candidate))
        want, said = c.verdict(gold), c.verdict(candidate)
        step = abs(_ORDER[want] - _ORDER[said]) if want and said else 0
        own = c.asserted(cand_claims)
        consistency = 1 if said is None else 2 - min(abs(_ORDER[said] - _ORDER[v]) for v in expected_verdicts(own))
        accuracy = 0 if said is None or want is None else 2 - step
        raw = (
            f"gold {_show(c.asserted(gold_claims))} -> {want}; candidate {_show(own)} -> {said}; "
            f"contradictions {review.obvious or '-'}; minor {review.minor or '-'}"
        )
        return JudgeScores(_completeness([review]), _preciseness([review], step), consistency, accuracy, raw)

    def _pair(self, candidate: str, gold: str) -> JudgeScores:
        gold_parts, cand_parts = c.per_image(gold), c.per_image(candidate)
        reviews, badness, shown = [], {}, []
        for image in ("A", "B"):
            g, k = c.read(gold_parts[image]), c.read(cand_parts[image])
            reviews.append(_review(g, k, c.says_clean(cand_parts[image])))
            badness[image] = _badness(k, cand_parts[image])
            shown.append(f"{image}: gold {_show(c.asserted(g))} candidate {_show(c.asserted(k))}")
        want, said = c.preference(gold), c.preference(candidate)
        wrong = said is not None and want is not None and said != want
        if wrong:
            reviews[0].obvious.append("prefers the worse image")
        other = {"A": "B", "B": "A"}
        if said is None:
            consistency = 1
        elif badness[said] > badness[other[said]]:
            consistency = 0
        elif badness[said] == badness[other[said]] == 0:
            consistency = 1
        else:
            consistency = 2
        accuracy = 2 if said is not None and said == want else 0
        raw = f"{'; '.join(shown)}; preferred {said} (gold {want}); badness {badness}"
        return JudgeScores(_completeness(reviews), _preciseness(reviews, 0), consistency, accuracy, raw)


def _show(found: dict[A, Severity | None]) -> str:
    return "{" + ", ".join(f"{a.value}:{s.value if s else '?'}" for a, s in found.items()) + "}"
