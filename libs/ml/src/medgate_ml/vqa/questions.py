"""Question intents, their phrasings, the answer vocabulary and out-of-scope questions.

Every intent has several templates; slots are filled from synonym lists, so one intent has
dozens of phrasings. The last template(s) of every intent are *held out*: no phrasing made
from them is ever trained on, so the test can measure how the question encoder copes with
wording it has not seen. Out-of-scope questions (findings the model knows nothing about)
are split the same way, by finding term: the held-out terms never appear in training.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

CLOSED = ("presence", "modality", "plane", "organ_involved", "quality")
OPEN = ("location", "side", "count", "size", "largest_organ")
OUT_OF_SCOPE = "out_of_scope"
INTENTS = (*CLOSED, *OPEN, OUT_OF_SCOPE)

CT_ORGANS = ("liver", "spleen", "kidney", "aorta", "lung")
MR_ORGANS = ("csf", "grey matter", "white matter", "deep grey")
LESION_ORGANS = {"CT": ("liver", "spleen", "kidney"), "MR": ("white matter",)}
SIZE_BINS = ("small", "medium", "large")
#: Upper bounds (mm², on the slice) of the small and medium bins.
SIZE_EDGES_MM2 = (120.0, 280.0)
COUNTS = ("0", "1", "2", "3+")

ANSWERS_BY_INTENT: dict[str, tuple[str, ...]] = {
    "presence": ("yes", "no"),
    "modality": ("CT", "MR"),
    "plane": ("axial", "sagittal", "coronal"),
    "organ_involved": ("yes", "no"),
    "quality": ("yes", "no"),
    "location": ("liver", "spleen", "kidney", "white matter"),
    "side": ("left", "right"),
    "count": COUNTS,
    "size": SIZE_BINS,
    "largest_organ": (*CT_ORGANS, *MR_ORGANS),
    OUT_OF_SCOPE: (),
}
ANSWERS: tuple[str, ...] = tuple(dict.fromkeys(a for v in ANSWERS_BY_INTENT.values() for a in v))

LESION = ("lesion", "mass", "nodule", "tumor", "focal lesion", "abnormality")
LESIONS = ("lesions", "masses", "nodules", "tumors", "focal lesions", "abnormalities")
IMAGE = ("image", "scan", "slice", "picture")
ORGAN_WORDS: dict[str, tuple[str, ...]] = {
    "liver": ("liver", "hepatic parenchyma"),
    "spleen": ("spleen", "splenic parenchyma"),
    "kidney": ("kidney", "renal parenchyma"),
    "aorta": ("aorta",),
    "lung": ("lung", "lung base"),
    "csf": ("csf", "cerebrospinal fluid"),
    "grey matter": ("grey matter", "gray matter", "cortex"),
    "white matter": ("white matter", "cerebral white matter"),
    "deep grey": ("deep grey", "deep grey nuclei", "basal ganglia"),
}

# Slots: {L} lesion, {Ls} lesions, {I} image, {O} organ. The last `HELD_OUT[intent]` templates are held out.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "presence": (
        "is there a {L} in this {I}?",
        "could you check for a {L}?",
        "please look for a {L} here.",
        "does this {I} show a {L}?",
        "is a {L} present?",
        "can you see any {Ls} on the {I}?",
        "are there {Ls} in the {I}?",
        "do you see a {L}?",
        "is a {L} visible anywhere?",
        "would you say there is a {L}?",
    ),
    "modality": (
        "what modality is this {I}?",
        "could you name the modality?",
        "please state the modality used.",
        "which imaging modality was used?",
        "is this {I} ct or mr?",
        "what kind of {I} is this?",
        "tell me the modality of this {I}.",
        "was this {I} acquired with ct or mr?",
    ),
    "plane": (
        "in which plane is this {I}?",
        "could you name the plane?",
        "please state the plane of the {I}.",
        "what is the imaging plane?",
        "which plane does this {I} show?",
        "is this an axial, sagittal or coronal {I}?",
        "what plane was this {I} reconstructed in?",
        "tell me the plane of this {I}.",
    ),
    "organ_involved": (
        "is the {O} involved?",
        "could you check the {O} for a {L}?",
        "please say if the {O} is involved.",
        "does the {L} involve the {O}?",
        "is there a {L} in the {O}?",
        "is the {O} affected by a {L}?",
        "does the {O} contain a {L}?",
        "would you say the {O} is involved?",
        "is the {O} involved by any {L}?",
    ),
    "quality": (
        "is the {I} quality adequate?",
        "could you judge the {I} quality?",
        "please say if the quality is diagnostic.",
        "is this {I} of diagnostic quality?",
        "is the {I} quality good enough?",
        "is the {I} quality acceptable?",
        "would you call the {I} quality adequate?",
        "is the quality of this {I} diagnostic?",
    ),
    "location": (
        "which organ contains the {L}?",
        "could you name the organ with the {L}?",
        "please state the organ of the {L}.",
        "where is the {L} located?",
        "in which organ is the {L}?",
        "what organ does the {L} arise from?",
        "tell me which organ holds the {L}.",
        "the {L} is in which organ?",
    ),
    "side": (
        "on which side is the {L}?",
        "could you name the side of the {L}?",
        "please state which side the {L} is on.",
        "is the {L} on the left or the right?",
        "which side of the body is the {L} on?",
        "what side is the {L}?",
        "tell me the side of the {L}.",
        "the {L} is on which side?",
    ),
    "count": (
        "how many {Ls} are there?",
        "could you count the {Ls}?",
        "please state the number of {Ls}.",
        "how many {Ls} are visible on this {I}?",
        "what is the number of {Ls}?",
        "count the {Ls} in this {I}.",
        "tell me how many {Ls} there are.",
        "the {I} shows how many {Ls}?",
    ),
    "size": (
        "how large is the largest {L}?",
        "could you grade the size of the {L}?",
        "please state how big the {L} is.",
        "what is the size of the biggest {L}?",
        "how big is the {L}?",
        "is the {L} small, medium or large?",
        "tell me the size of the largest {L}.",
        "the biggest {L} is how large?",
    ),
    "largest_organ": (
        "what is the largest organ in this {I}?",
        "could you name the largest organ?",
        "please state the biggest organ here.",
        "which organ is the largest on this {I}?",
        "which organ occupies the most area?",
        "what is the biggest organ shown?",
        "tell me the largest organ on this {I}.",
        "the biggest organ in this {I} is which?",
    ),
}
HELD_OUT: dict[str, int] = dict.fromkeys(TEMPLATES, 2)

OOS_TEMPLATES = (
    "is there a {F}?",
    "is there any {F} on this {I}?",
    "does this {I} show {F}?",
    "can you see {F}?",
    "is {F} present?",
    "where is the {F}?",
    "how severe is the {F}?",
)
OOS_TRAIN_TERMS = (
    "fracture", "pneumothorax", "pleural effusion", "hemorrhage", "pneumonia", "stent",
    "calcification", "free air", "bowel obstruction", "aneurysm", "fatty liver", "stroke",
)  # fmt: skip
OOS_HELD_OUT_TERMS = (
    "dissection", "ascites", "gallstones", "appendicitis", "infarct", "edema",
    "hydronephrosis", "atelectasis", "pacemaker", "hernia",
)  # fmt: skip
OOS_OTHER = (
    "what is the patient's age?", "what medication should be given?", "what is the prognosis?",
    "who is the referring physician?", "what dose of contrast was used?",
)  # fmt: skip


@dataclass(frozen=True)
class Phrasing:
    intent: str
    text: str  # with {O} left in for organ questions
    held_out: bool


def _fill(template: str) -> list[str]:
    slots = {"L": LESION, "Ls": LESIONS, "I": IMAGE}
    names = [n for n in slots if "{" + n + "}" in template]
    out = []
    for combo in itertools.product(*(slots[n] for n in names)):
        text = template
        for name, value in zip(names, combo, strict=True):
            text = text.replace("{" + name + "}", value)
        out.append(text)
    return out


def phrasings() -> list[Phrasing]:
    """Every phrasing of every in-scope intent, with its held-out flag."""
    out: list[Phrasing] = []
    for intent, templates in TEMPLATES.items():
        cut = len(templates) - HELD_OUT[intent]
        for i, template in enumerate(templates):
            out += [Phrasing(intent, text, i >= cut) for text in _fill(template)]
    return out


def out_of_scope_questions(held_out: bool) -> list[str]:
    terms = OOS_HELD_OUT_TERMS if held_out else OOS_TRAIN_TERMS
    templates = OOS_TEMPLATES[-2:] if held_out else OOS_TEMPLATES[:-2]
    out = [t.replace("{F}", f).replace("{I}", i) for t in templates for f in terms for i in IMAGE[:2]]
    return [*dict.fromkeys(out), *(OOS_OTHER[3:] if held_out else OOS_OTHER[:3])]


def fill_organ(text: str, organ: str, variant: int) -> str:
    names = ORGAN_WORDS[organ]
    return text.replace("{O}", names[variant % len(names)])
