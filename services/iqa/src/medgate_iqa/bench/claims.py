"""What a quality description claims: attributes asserted or denied, how severe, the
verdict, and for a comparison which image it prefers and what it says about each.

The vocabulary is the service's lexicon (:data:`~medgate_iqa.core.lexicon.PATTERNS`), so a
term the writer uses is a term the judge reads. Deciding polarity per sentence is defeated
by free text ("not diagnostic due to severe streaks", "streaks are absent", "no noise, and
very poor contrast"), so this reader scopes negation to
the noun phrase it governs, reads negation placed after the term, hedges that mean "absent"
("minimal noise") and severity words, and maps terms that describe one artifact through
another's look (streaks from an implant) as related rather than contradictory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medgate_common.schemas.quality import QualityAttribute as A
from medgate_common.schemas.quality import Severity, Verdict
from medgate_iqa.core.lexicon import PATTERNS


@dataclass(frozen=True)
class Claim:
    present: bool
    severity: Severity | None  # None: present but ungraded, or absent


Claims = dict[A, Claim]

SEVERE_CUES = (
    r"severe(?:ly)?|marked(?:ly)?|strong(?:ly)?|heav(?:y|ily)|pronounced|prominent|extensive|substantial(?:ly)?"
    r"|considerabl[ey]|gross(?:ly)?|major|significant(?:ly)?|intense|extreme(?:ly)?|very|large|dominant|dominates?"
)
# What a severe problem does to reading; grades a claim only when no grade word does.
_IMPACT = re.compile(r"\b(?:obscur\w*|impossible|(?:is|are) lost|cannot be (?:assessed|evaluated|read))")
MILD_CUES = r"mild(?:ly)?|slight(?:ly)?|subtle|minor|faint|light|small|modest|somewhat|weak|a little|a bit|low in"
# "more pronounced" compares two images; it does not grade one.
_CUE = re.compile(rf"(?<!more )(?<!less )(?<!most )\b(?:(?P<severe>{SEVERE_CUES})|(?P<mild>{MILD_CUES}))\b")
_NEGATION = re.compile(
    r"\b(?:no|not|without|free of|absence of|absent|nor|neither|lack of|lacks|lacking|none of|rules? out)\b"
)
# A negation stops at a clause boundary, a verb (a new statement) or a severity word that
# grades a new noun ("no noise, and very poor contrast").
_SCOPE_BREAK = re.compile(
    r"[;:]|\b(?:but|although|though|however|except|due|because|while|whereas|which|yet|whilst|apart|instead)\b"
    r"|\b(?:is|are|was|were|shows?|showing|has|have|had|appears?|remains?|looks?|seems?|contains?|displays?"
    r"|demonstrates?|gives?|makes?|leaves?|affects?|produces?|causes?|covers?)\b"
)
_NEGATION_ADJ = re.compile(
    r"^\s*(?:(?:any|significant|obvious|major|apparent|visible|evident|relevant|noticeable|appreciable|other|further"
    r"|additional|such|clear|definite|relevant|discernible|detectable)\s+)+"
)
_HEDGE_ABSENT = re.compile(
    r"(?:\b(?:minimal|negligible|low|barely any|hardly any|trace)|(?<!\ba )\blittle"
    r"|\b(?:good|high|adequate|excellent|normal) signal[- ]to[- ])\s*$"
)
_POST_ABSENT = re.compile(
    r"^[\s-]*free\b|^\W*(?:\w+\W+){0,3}?(?:is|are|was|were|appears?|seems?|looks?|remains?)\s+(?:\w+\s+)?"
    r"(?:not\s+(?:seen|visible|present|evident|apparent|identified|detected|observed|noted|significant"
    r"|a\s+concern|an\s+issue|a\s+problem)|absent|minimal|negligible|low(?!\s+in\b)|within normal limits|normal"
    r"|fine|acceptable|appropriate|adequate|correct|unremarkable)\b"
)
_CLAUSE_END = re.compile(r"[,;:]|\b(?:but|although|though|however|while|whereas|which|and)\b")
# Words that say edges are sharp: no blur, unless blur is asserted elsewhere.
_SHARP = re.compile(r"(?<!not )\b(?:sharp(?:er|ly|ness)?|crisp|well[- ]defined)\b")
_CLEAN = re.compile(
    r"\bno (?:\w+ )?(?:artifacts?|artefacts?|issues|problems|degradation)\b|artifact[- ]free"
    r"|free of (?:any )?(?:\w+ )?(?:artifacts?|artefacts?)"
)


def says_clean(text: str) -> bool:
    """Whether a text states that nothing is wrong ("no artifacts", "artifact-free")."""
    return bool(_CLEAN.search(_normal(text)))


# Artifacts that look like another one (an implant streaks; motion blurs and ghosts):
# asserting one where the gold has the other is a wording difference, not a contradiction.
RELATED: dict[A, frozenset[A]] = {
    A.metal: frozenset({A.streak}),
    A.streak: frozenset({A.metal, A.limited_angle, A.motion, A.undersampling}),
    A.motion: frozenset({A.blur, A.ghosting, A.streak}),
    A.ghosting: frozenset({A.motion, A.undersampling}),
    A.undersampling: frozenset({A.ghosting, A.streak}),
    A.limited_angle: frozenset({A.blur, A.streak}),
    A.blur: frozenset({A.motion, A.limited_angle}),
    A.susceptibility: frozenset({A.metal}),
    A.exposure: frozenset({A.contrast}),
    A.contrast: frozenset({A.exposure}),
}
_RANK = {Severity.mild: 1, Severity.severe: 2}

# Words free text uses that the lexicon (still) lacks; proposed for core/lexicon.py.


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _normal(text: str) -> str:
    low = text.lower()
    low = re.sub(r"\bmotion[- ]blur(?:red|ring)?\b", "motion", low)
    return re.sub(r"\bneither (?:image|one|scan|slice)s? (shows?|has|have|contains?|displays?)\b", r"both \1 no", low)


def _words(text: str) -> int:
    return len(re.findall(r"\w+", text))


def _negated(before: str, after: str) -> bool:
    if _HEDGE_ABSENT.search(before) or _POST_ABSENT.search(after):
        return True
    cues = list(_NEGATION.finditer(before))
    if not cues:
        return False
    between = _NEGATION_ADJ.sub("", before[cues[-1].end() :])
    return not (_SCOPE_BREAK.search(between) or _CUE.search(between) or _words(between) > 10)


@dataclass
class _Mention:
    attribute: A
    present: bool
    severity: Severity | None
    start: int


def _near(sentence: str, start: int, end: int) -> tuple[int, Severity] | None:
    """The severity word grading the term at ``sentence[start:end]``: the last one in up to
    five words before it in its clause, else the first in up to five words after it."""
    before = sentence[:start]
    bounds = [m.end() for m in _CLAUSE_END.finditer(before)]
    clause = bounds[-1] if bounds else 0
    words = list(re.finditer(r"\S+", before[clause:]))[-5:]
    lo = clause + words[0].start() if words else start
    found = [(lo + c.start(), _severity(c)) for c in _CUE.finditer(sentence[lo:start])]
    if found:
        return found[-1]
    after = sentence[end:]
    stop = _CLAUSE_END.search(after)
    tail = after[: stop.start() if stop else len(after)]
    words = list(re.finditer(r"\S+", tail))[:5]
    hi = words[-1].end() if words else 0
    found = [(end + c.start(), _severity(c)) for c in _CUE.finditer(after[:hi])]
    return found[0] if found else None


def _severity(match: re.Match[str]) -> Severity:
    return Severity.severe if match.group("severe") else Severity.mild


def _mentions(sentence: str) -> tuple[list[_Mention], set[int]]:
    found: list[_Mention] = []
    used: set[int] = set()
    for attribute, pattern in PATTERNS.items():
        for m in pattern.finditer(sentence):
            present = not _negated(sentence[: m.start()], sentence[m.end() :])
            near = _near(sentence, m.start(), m.end()) if present else None
            if near is not None:
                used.add(near[0])
            found.append(_Mention(attribute, present, near[1] if near else None, m.start()))
    return found, used


def read(text: str) -> Claims:
    """Every attribute the text names: asserted wins over denied. The severity is the
    highest grade written next to a mention; failing that, a free grade word of the same
    sentence (or of the next one when it names nothing: "The effect is slight."); failing
    that, severe when the sentence says what a severe problem does ("obscures", "is lost")."""
    near: dict[A, list[Severity]] = {}
    borrowed: dict[A, list[Severity]] = {}
    present: dict[A, bool] = {}
    parts = sentences(_normal(text))
    sharp = False
    for i, sentence in enumerate(parts):
        mentions, used = _mentions(sentence)
        free = [(m.start(), _severity(m)) for m in _CUE.finditer(sentence) if m.start() not in used]
        follow = parts[i + 1] if i + 1 < len(parts) else ""
        if follow and not _mentions(follow)[0]:
            free += [(len(sentence) + 1 + m.start(), _severity(m)) for m in _CUE.finditer(follow)]
        impact = bool(_IMPACT.search(sentence))
        for mention in mentions:
            a = mention.attribute
            present[a] = present.get(a, False) or mention.present
            if not mention.present:
                continue
            if mention.severity is not None:
                near.setdefault(a, []).append(mention.severity)
            elif free:
                borrowed.setdefault(a, []).append(min(free, key=lambda c: abs(c[0] - mention.start))[1])
            elif impact:
                borrowed.setdefault(a, []).append(Severity.severe)
        sharp = sharp or bool(_SHARP.search(sentence))
    claims: Claims = {}
    for a, on in present.items():
        grades = near.get(a) or borrowed.get(a) or []
        claims[a] = Claim(on, max(grades, key=_RANK.__getitem__) if on and grades else None)
    if sharp and A.blur not in claims:
        claims[A.blur] = Claim(False, None)
    return claims


def asserted(claims: Claims) -> dict[A, Severity | None]:
    return {a: c.severity for a, c in claims.items() if c.present}


def denied(claims: Claims) -> set[A]:
    return {a for a, c in claims.items() if not c.present}


# -- verdict and preference ------------------------------------------------------------------

_VERDICT = re.compile(r"quality of (?:this|the) (?:image|scan|slice)\s+is\s+(?:\w+\s+){0,2}?(good|usable|reject)\b")
_REJECT = re.compile(
    r"\breject(?:ed|able)?\b|non-?diagnostic|not diagnostic|\bunusable|not usable|unacceptable|not acceptable"
    r"|poor (?:overall )?(?:image )?quality|quality is poor|should be (?:repeated|re-?acquired)"
    r"|repeat (?:scan|acquisition)|re-?acquisition"
)
_USABLE = re.compile(r"\busable\b|\bacceptable|adequate quality|\bfair\b|moderate quality|suboptimal|limited quality")
_GOOD = re.compile(r"\bgood\b|\bexcellent\b|high quality")
_ABOUT_QUALITY = re.compile(r"quality|overall|verdict|\brate|\bcall|consider|diagnostic")


def verdict(text: str) -> Verdict | None:
    """The fixed closing sentence if there is one, else the last sentence that grades."""
    low = _normal(text)
    fixed = _VERDICT.findall(low)
    if fixed:
        return Verdict(fixed[-1])
    for sentence in reversed(sentences(low)):
        if _REJECT.search(sentence):
            return Verdict.reject
        if _USABLE.search(sentence):
            return Verdict.usable
        if _GOOD.search(sentence) and _ABOUT_QUALITY.search(sentence):
            return Verdict.good
    return None


_IMAGE = (
    r"(?:image|picture|scan|slice)\s+([ab])\b|\bthe\s+(first|second|former|latter)\b(?:\s+(?:image|one|scan|slice))?"
)
_BETTER = r"(?:higher|better|superior|preferable|preferred)"
_PREFER = (
    re.compile(
        rf"(?:{_IMAGE})\s+(?:\w+\s+){{0,2}}?(?:has|shows|is|offers|provides|gives)\s+(?:\w+\s+){{0,3}}?{_BETTER}"
    ),
    re.compile(rf"\b(?:prefer(?:red)?|choose|pick|favou?r)\s+(?:\w+\s+){{0,2}}?(?:{_IMAGE})"),
)
_WORSE = re.compile(rf"(?:{_IMAGE})\s+(?:\w+\s+){{0,2}}?(?:has|is)\s+(?:\w+\s+){{0,2}}?(?:worse|lower|inferior)")
_ORDINAL = {"first": "A", "former": "A", "second": "B", "latter": "B"}


def _letter(match: re.Match[str]) -> str:
    letter, ordinal = match.group(1), match.group(2)
    return letter.upper() if letter else _ORDINAL[ordinal]


def preference(text: str) -> str | None:
    """ "A" or "B": the image the text calls better, read from the last sentence that says."""
    for sentence in reversed(sentences(_normal(text))):
        for pattern in _PREFER:
            if m := pattern.search(sentence):
                return _letter(m)
        if m := _WORSE.search(sentence):
            return "B" if _letter(m) == "A" else "A"
    return None


_REFERENCE = re.compile(rf"\b(?:{_IMAGE})|\bboth\b(?:\s+(?:images|scans|slices))?")


def per_image(text: str) -> dict[str, str]:
    """The text split by which image it talks about: from each reference ("image A", "the
    second one", "both images") to the next; text before the first reference of a sentence
    continues the image of the sentence before."""
    out = {"A": "", "B": ""}
    current = "both"
    for sentence in sentences(_normal(text)):
        marks = [
            (m.start(), "both" if m.group(0).startswith("both") else _letter(m)) for m in _REFERENCE.finditer(sentence)
        ]
        bounds = [(0, current), *marks]
        for (start, who), (end, _) in zip(bounds, [*marks, (len(sentence), "")], strict=True):
            piece = sentence[start:end].strip()
            for key in ("A", "B") if who == "both" else (who,):
                out[key] += " " + piece + ("." if piece and not piece.endswith(".") else "")
        current = marks[-1][1] if marks else current
    return {k: v.strip() for k, v in out.items()}


WORSE_WORDS = re.compile(
    r"\b(?:more|worse|stronger|heavier|noisier|blurrier|greater|more pronounced|more disruptive|more severe)\b"
)
BETTER_WORDS = re.compile(r"\b(?:less|only|milder|better|cleaner|sharper|fainter|weaker|clearer)\b")


def unnamed_grades(text: str) -> list[Severity]:
    """Severity words in a text that names no attribute ("covered by a strong one")."""
    return [_severity(m) for m in _CUE.finditer(text)]
