"""The gate's words: the reasoning paragraph, perception answers and pairwise comparison.

Reasoning follows MedQ-Bench's no-reference format: 3-5 sentences on global clarity and
contrast, the artifacts and where they are, what they do to reading, and the closing
"Overall, the quality of this image is <verdict>." Every statement is generated from the
report's findings and measured statistics, so the text can never disagree with the
structured verdict.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from medgate_common.errors import InputError
from medgate_common.schemas.quality import QualityAttribute, QualityReport, Severity, Verdict
from medgate_iqa.core.lexicon import TERMS, attribute_in

if TYPE_CHECKING:
    from medgate_iqa.core.assess import Assessment

MODALITY_NAMES = {"CT": "CT", "MR": "MR"}
IMPACT = {
    Verdict.good: "Fine anatomical detail is preserved and the image is suitable for diagnosis.",
    Verdict.usable: "The diagnostic content is preserved, although fine detail is somewhat degraded.",
    Verdict.reject: "These problems obscure anatomical detail and make the image unreliable for diagnosis; "
    "re-acquisition should be considered.",
}


def _clarity(report: QualityReport) -> str:
    severities = {f.attribute: f.severity for f in report.findings}
    blur, noise = severities.get(QualityAttribute.blur), severities.get(QualityAttribute.noise)
    sharp = "soft, poorly defined edges" if blur else "sharp anatomical edges"
    grain = "a noisy, grainy texture" if noise else "a clean background"
    contrast = severities.get(QualityAttribute.contrast)
    tissue = "reduced tissue contrast" if contrast else "good tissue contrast"
    return f"This {MODALITY_NAMES.get(report.modality, report.modality)} image shows {sharp}, {grain} and {tissue}."


def _finding_sentence(report: QualityReport) -> str:
    shown = report.findings[:2]
    if not shown:
        return "No artifacts such as noise, motion, streaks or aliasing are visible."
    parts = []
    for f in shown:
        term = TERMS[f.attribute]
        parts.append(f"{f.severity.value} {term.name} ({f.location or term.pattern}), so {term.effect}")
    sentence = "There is " + "; there is also ".join(parts) + "."
    more = report.findings[2:]
    if more:
        sentence += (
            " Further findings: " + ", ".join(f"{f.severity.value} {TERMS[f.attribute].name}" for f in more) + "."
        )
    return sentence


def describe(report: QualityReport) -> str:
    """The no-reference reasoning paragraph for one series report."""
    sentences = [_clarity(report), _finding_sentence(report), IMPACT[report.verdict]]
    sentences.append(f"Overall, the quality of this image is {report.verdict.value}.")
    return " ".join(sentences)


# -- perception ------------------------------------------------------------------------------

LETTERS = "ABCD"


@dataclass(frozen=True)
class Answer:
    letter: str
    option: str
    confidence: float
    kind: Literal["yes-or-no", "what", "how"]


def _yes(text: str) -> bool | None:
    """Yes / No options, with or without a letter ("A. Yes"); "Noise" or "None" is neither."""
    low = re.sub(r"^[a-d][.)]\s*", "", text.strip().lower())
    return True if re.match(r"yes\b", low) else False if re.match(r"no\b(?!\s+\w)", low) else None


_NONE_OPTION = re.compile(r"\b(?:no|none)\b.*\b(?:artifact|degradation|problem)s?\b|^\s*none\s*$", re.IGNORECASE)


def _level_of(option: str) -> Severity | Verdict | None:
    low = option.strip().lower()
    for verdict in Verdict:
        if low.startswith(verdict.value):
            return verdict
    for severity in Severity:
        if low.startswith(severity.value):
            return severity
    return None


def answer(question: str, options: Sequence[str], assessment: Assessment) -> Answer:
    """Answer a MedQ-style multiple-choice question from the assessment's probabilities.

    Yes-or-no questions about an attribute read its presence probability; "what" questions
    pick the option naming the most probable attribute (or "no artifact" when none is
    present); "how" questions read the verdict or the named attribute's severity.
    """
    if not 2 <= len(options) <= 4:
        raise InputError("a perception question needs 2 to 4 options")
    named = attribute_in(question)
    yes_no = [_yes(o) for o in options]
    if all(v is not None for v in yes_no):
        if named is None:
            raise InputError("the question names no quality attribute this gate knows")
        p = assessment.present.get(named, 0.0)
        want = p >= 0.5
        idx = yes_no.index(want) if want in yes_no else 0
        return Answer(LETTERS[idx], options[idx], round(p if want else 1 - p, 4), "yes-or-no")
    levels = [_level_of(o) for o in options]
    if all(v is not None for v in levels):
        if all(isinstance(v, Verdict) for v in levels):
            target: Severity | Verdict = assessment.report.verdict
            confidence = float(assessment.verdict_probability[list(Verdict).index(assessment.report.verdict)])
        else:
            attribute = named or _dominant(assessment)
            target = assessment.severity(attribute) if attribute else Severity.none
            confidence = assessment.present.get(attribute, 0.0) if attribute else 1.0
        idx = levels.index(target) if target in levels else 0
        return Answer(LETTERS[idx], options[idx], round(confidence, 4), "how")
    scores = []
    for option in options:
        attribute = attribute_in(option)
        if attribute is not None:
            scores.append(assessment.present.get(attribute, 0.0) + assessment.severe.get(attribute, 0.0))
        elif _NONE_OPTION.search(option):
            scores.append(0.5 if not assessment.report.findings else 0.0)
        else:
            scores.append(-1.0)
    idx = max(range(len(options)), key=lambda i: scores[i])
    return Answer(LETTERS[idx], options[idx], round(min(1.0, max(0.0, scores[idx])), 4), "what")


def _dominant(assessment: Assessment) -> QualityAttribute | None:
    return assessment.report.findings[0].attribute if assessment.report.findings else None


# -- comparison ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    preferred: Literal["A", "B"]
    text: str


def _summary(report: QualityReport) -> str:
    if not report.findings:
        return "shows no relevant artifact"
    items = [f"{f.severity.value} {TERMS[f.attribute].name}" for f in report.findings[:2]]
    return "shows " + " and ".join(items)


def compare(a: Assessment, b: Assessment) -> Comparison:
    """MedQ's comparison reasoning: which of two images is better, and why."""
    preferred: Literal["A", "B"]
    preferred, better, worse = ("A", a, b) if a.badness <= b.badness else ("B", b, a)
    other = "B" if preferred == "A" else "A"
    sentences = [
        f"Image A {_summary(a.report)} and is judged {a.report.verdict.value}.",
        f"Image B {_summary(b.report)} and is judged {b.report.verdict.value}.",
    ]
    if better.report.verdict is worse.report.verdict:
        sentences.append(
            f"Both reach the same verdict, but the problems in image {other} are more pronounced or more likely."
        )
    else:
        sentences.append(f"The problems in image {other} affect reading more than those in image {preferred}.")
    sentences.append(f"Overall, image {preferred} has the higher quality.")
    return Comparison(preferred, " ".join(sentences))
