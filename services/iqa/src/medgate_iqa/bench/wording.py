"""The bench's words: option labels, question templates and the gold descriptions.

Gold descriptions are written from the simulator's record (attribute, measured level,
location) with templates of their own, on purpose unlike the service's ``describe()``: a
judge that only matched the model's own sentences would measure nothing. Every phrase is
checked by the tests to read back, through the lexicon, as exactly the attribute it names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from medgate_common.schemas.quality import QualityAttribute as A
from medgate_common.schemas.quality import Severity, Verdict
from medgate_iqa.degrade import Applied

MODALITY_WORD = {"CT": "CT", "MR": "MRI"}
NO_ARTIFACT = "No obvious artifact"
# Shown in perception items; ``general`` questions are those every modality shares.
GENERAL = frozenset({A.noise, A.blur, A.contrast, A.exposure})
# Described in the opening sentence rather than as a finding of their own.
GLOBAL = (A.blur, A.noise, A.contrast)

OPTION: dict[A, str] = {
    A.noise: "Noise",
    A.blur: "Blurring",
    A.motion: "Motion artifact",
    A.streak: "Streak artifacts (sparse-view)",
    A.limited_angle: "Limited-angle artifact",
    A.metal: "Metal artifact",
    A.ring: "Ring artifact",
    A.undersampling: "Undersampling aliasing",
    A.bias_field: "Intensity inhomogeneity (bias field)",
    A.spike: "Spike (herringbone) artifact",
    A.gibbs: "Gibbs ringing",
    A.susceptibility: "Susceptibility artifact",
    A.ghosting: "Ghosting",
    A.exposure: "Exposure error",
    A.contrast: "Low contrast",
}
CT_OPTION = {A.noise: "Low-dose noise"}

# "Is there <phrase> ..." and "How severe is the <bare> ..."
PHRASE: dict[A, tuple[str, str]] = {
    A.noise: ("noise", "noise"),
    A.blur: ("blurring", "blurring"),
    A.motion: ("a motion artifact", "motion artifact"),
    A.streak: ("streak artifacts", "streak artifacts"),
    A.limited_angle: ("a limited-angle artifact", "limited-angle artifact"),
    A.metal: ("a metal artifact", "metal artifact"),
    A.ring: ("ring artifacts", "ring artifacts"),
    A.undersampling: ("undersampling aliasing", "undersampling aliasing"),
    A.bias_field: ("intensity inhomogeneity", "intensity inhomogeneity"),
    A.spike: ("a spike (herringbone) artifact", "spike artifact"),
    A.gibbs: ("Gibbs ringing", "Gibbs ringing"),
    A.susceptibility: ("a susceptibility artifact", "susceptibility artifact"),
    A.ghosting: ("ghosting", "ghosting"),
    A.exposure: ("an exposure error", "exposure error"),
    A.contrast: ("low contrast", "low contrast"),
}

YES_NO = (
    "Is there {phrase} in this {modality} image?",
    "Does this {modality} image show {phrase}?",
    "Can {phrase} be seen in this {modality} slice?",
    "Is this {modality} image affected by {phrase}?",
)
WHAT = (
    "What is the primary artifact visible in this {modality} image?",
    "Which degradation dominates this {modality} image?",
    "Which quality problem is most prominent in this {modality} slice?",
)
OVERALL = (
    "How would you rate the overall quality of this {modality} image?",
    "What is the overall quality of this {modality} slice?",
    "How fit is this {modality} image for diagnostic reading overall?",
)
SEVERITY = (
    "How severe is the {bare} in this {modality} image?",
    "How would you grade the {bare} in this {modality} slice?",
    "Rate the severity of the {bare} in this {modality} image.",
)
VERDICT_OPTIONS = ("Good", "Usable", "Reject")
SEVERITY_OPTIONS = ("None", "Mild", "Severe")


def option(attribute: A, modality: str) -> str:
    return (CT_OPTION if modality == "CT" else {}).get(attribute, OPTION[attribute])


# -- gold descriptions ----------------------------------------------------------------------

MILD = ("mild", "slight", "subtle")
SEVERE = ("severe", "marked", "pronounced")


def _pick(rng: np.random.Generator, words: Sequence[str]) -> str:
    return words[int(rng.integers(len(words)))]


def _adj(level: Severity, rng: np.random.Generator) -> str:
    return _pick(rng, MILD if level is Severity.mild else SEVERE)


def _where(applied: Applied) -> str:
    """The simulator's location, reduced to words that name no other attribute."""
    loc = applied.location
    if match := re.match(r"(.*?) of the image", loc):
        return f"in the {match.group(1)}"
    if match := re.search(r"towards the (.*)$", loc):
        return f"towards the {match.group(1)}"
    return ""


def _opening(modality: str, levels: dict[A, Severity], rng: np.random.Generator) -> str:
    blur, noise, contrast = (levels.get(a, Severity.none) for a in GLOBAL)
    if blur is Severity.none:
        edges = "anatomical edges are crisp and free of blurring"
    else:
        edges = f"{_adj(blur, rng)} blurring has softened the anatomical edges"
    if noise is Severity.none:
        grain = "there is no visible noise in the tissue"
    else:
        grain = f"{_adj(noise, rng)} noise gives the tissue a grainy texture"
    if contrast is Severity.none:
        tissue = "tissue contrast is well preserved"
    elif contrast is Severity.mild:
        tissue = "slightly low contrast makes neighbouring tissues harder to separate"
    else:
        tissue = "very poor contrast makes neighbouring tissues hard to separate"
    return f"In this {MODALITY_WORD[modality]} slice, {edges}, {grain}, and {tissue}."


def _finding(applied: Applied, modality: str, rng: np.random.Generator) -> str:
    adj, where = _adj(applied.level, rng), _where(applied)
    cap = adj.capitalize()
    a = applied.attribute
    if a is A.streak:
        return f"{cap} streak artifacts from sparse-view sampling radiate across the field of view."
    if a is A.limited_angle:
        deg = re.search(r"(\d+) degree", applied.location)
        arc = f", with about {deg.group(1)} degrees of views missing" if deg else ""
        return f"{cap} limited-angle artifacts smear edges in one direction{arc}."
    if a is A.metal:
        return (
            f"{cap} metal artifacts spread from a dense implant {where}, with dark and bright bands across the slice."
        )
    if a is A.ring:
        return f"{cap} ring artifacts form concentric circles around the centre of rotation."
    if a is A.motion and modality == "CT":
        return f"{cap} motion artifacts double the contours of moving structures."
    if a is A.motion:
        return f"{cap} motion artifacts smear the anatomy along the phase-encoding direction."
    if a is A.ghosting:
        return f"{cap} ghosting repeats faint copies of the anatomy along the phase-encoding direction."
    if a is A.undersampling:
        accel = re.search(r"about ([\d.]+)x", applied.location)
        rate = f" (about {accel.group(1)}-fold acceleration)" if accel else ""
        return f"{cap} undersampling aliasing folds signal back over the anatomy{rate}."
    if a is A.bias_field:
        return f"{cap} intensity inhomogeneity makes the signal brighter {where or 'on one side'}."
    if a is A.spike:
        return f"A {adj} spike artifact lays a herringbone pattern of stripes over the slice."
    if a is A.gibbs:
        return f"{cap} Gibbs ringing runs parallel to sharp tissue boundaries."
    if a is A.susceptibility:
        return f"A {adj} susceptibility artifact leaves a signal void with geometric distortion {where}."
    if a is A.exposure:
        state = (
            "over-exposed, with saturated bright regions"
            if "over" in applied.location
            else "under-exposed, with crushed dark regions"
        )
        return f"A {adj} exposure error has left the image {state}."
    raise ValueError(f"{a} is described in the opening sentence")


CLEAN_NOTE = {
    "CT": "No streak, ring, metal or motion artifacts are present.",
    "MR": "No ghosting, aliasing, motion or susceptibility artifacts are present.",
}
IMPACT = {
    Verdict.good: (
        "All anatomical structures can be assessed with confidence.",
        "Nothing here limits diagnostic reading.",
    ),
    Verdict.usable: (
        "Fine detail is somewhat compromised, but the slice still supports a diagnosis.",
        "Small structures are harder to judge, although the slice remains readable.",
    ),
    Verdict.reject: (
        "Diagnostic detail is lost under these problems, so the slice should be acquired again.",
        "The degradation is too strong for reliable interpretation and a repeat acquisition is advisable.",
    ),
}


def verdict_sentence(verdict: Verdict) -> str:
    return f"Overall, the quality of this image is {verdict.value}."


def describe_gold(modality: str, applied: Sequence[Applied], verdict: Verdict, rng: np.random.Generator) -> str:
    """3-5 sentences: clarity/noise/contrast, up to two findings with where they are, what
    they do to reading, and MedQ's closing verdict sentence."""
    levels = {a.attribute: a.level for a in applied}
    sentences = [_opening(modality, levels, rng)]
    findings = [a for a in applied if a.attribute not in GLOBAL]
    sentences += [_finding(a, modality, rng) for a in findings[:2]] or [CLEAN_NOTE[modality]]
    sentences += [_pick(rng, IMPACT[verdict]), verdict_sentence(verdict)]
    return " ".join(sentences)


def _summary(applied: Sequence[Applied], rng: np.random.Generator) -> str:
    if not applied:
        return "is clean, with crisp edges and no visible artifacts"
    parts = []
    for a in applied:
        if a.attribute is A.contrast:
            parts.append("slightly low contrast" if a.level is Severity.mild else "very poor contrast")
        else:
            parts.append(f"{_adj(a.level, rng)} {PHRASE[a.attribute][1]}")
    return "shows " + ", together with ".join(parts)


def describe_pair(
    a: Sequence[Applied], b: Sequence[Applied], preferred: str, coarse: bool, rng: np.random.Generator
) -> str:
    """Each image in a sentence, how far apart they are, and the preferred image."""
    worse = "B" if preferred == "A" else "A"
    if coarse:
        gap = f"The difference is obvious: image {worse} is far more degraded."
    else:
        gap = f"The difference is subtle, but the problems in image {worse} weigh more heavily on reading."
    return " ".join(
        [
            f"Image A {_summary(a, rng)}.",
            f"Image B {_summary(b, rng)}.",
            gap,
            f"Overall, image {preferred} has the higher quality.",
        ]
    )
