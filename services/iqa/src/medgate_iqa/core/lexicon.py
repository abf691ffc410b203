"""Words for quality attributes: how the gate writes them and how it recognises them.

The reasoning writer, the perception answerer and the rule judge (``bench.claims``) all read
this table, so a term the writer uses is a term the judge understands. Patterns say where an attribute shows
when the model cannot point at a place (a diffuse or directional artifact).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medgate_common.schemas.quality import QualityAttribute as A


@dataclass(frozen=True)
class Term:
    name: str  # how the report names it
    synonyms: tuple[str, ...]  # lower-case phrases that mean it (regex fragments)
    pattern: str  # where / how it shows when no location is measured
    effect: str  # what it does to reading


TERMS: dict[A, Term] = {
    A.noise: Term(
        "noise",
        (r"noise", r"noisy", r"grain(?:y|iness)?", r"low[- ]dose", r"mottle", r"snow"),
        "diffuse over the whole image",
        "it masks low-contrast structures",
    ),
    A.blur: Term(
        "blurring",
        (r"blur(?:red|ring|ry)?", r"unsharp", r"soft edges?", r"defocus", r"loss of (?:edge )?sharpness"),
        "diffuse loss of edge definition",
        "fine boundaries and small structures lose definition",
    ),
    A.motion: Term(
        "motion artifact",
        (r"motion", r"movement", r"double contours?", r"patient moved"),
        "smearing and double contours at moving edges",
        "edges are duplicated or smeared",
    ),
    A.streak: Term(
        "streak artifact from sparse views",
        (r"streak(?:s|ing)?", r"sparse[- ]view", r"incomplete projections?", r"view aliasing"),
        "radiating streaks across the field of view",
        "streaks overlie and mimic structures",
    ),
    A.limited_angle: Term(
        "limited-angle artifact",
        (r"limited[- ]angle", r"missing (?:angular )?(?:arc|wedge|views)", r"directional smear(?:ing)?"),
        "directional smearing where views are missing",
        "edges along the missing directions are lost",
    ),
    A.metal: Term(
        "metal artifact",
        (r"metal", r"implant", r"beam hardening", r"photon starvation"),
        "around a dense implant, with dark and bright bands across the slice",
        "tissue next to the implant cannot be assessed",
    ),
    A.ring: Term(
        "ring artifact",
        (r"rings?\b", r"concentric", r"detector (?:calibration|element)"),
        "concentric rings around the isocentre",
        "rings can mimic or hide round structures",
    ),
    A.undersampling: Term(
        "undersampling aliasing",
        (r"undersampl\w*", r"aliasing", r"wrap[- ]?around", r"fold[- ]?over", r"acceleration"),
        "aliasing along the phase-encoding direction",
        "folded signal overlies the anatomy",
    ),
    A.bias_field: Term(
        "intensity inhomogeneity",
        (r"bias field", r"inhomogene\w*", r"shading", r"uneven (?:signal|intensity|brightness)", r"coil sensitivity"),
        "a smooth brightness gradient across the image",
        "signal intensities are not comparable across the image",
    ),
    A.spike: Term(
        "spike (herringbone) artifact",
        (r"spikes?", r"herringbone", r"corduroy", r"stripes?"),
        "stripes over the whole image",
        "a striped pattern overlies all tissue",
    ),
    A.gibbs: Term(
        "Gibbs ringing",
        (r"gibbs", r"truncation", r"ringing"),
        "ringing parallel to high-contrast boundaries",
        "ringing can mimic thin layers at boundaries",
    ),
    A.susceptibility: Term(
        "susceptibility artifact",
        (r"susceptibility", r"signal (?:void|loss|drop[- ]?out)", r"distortion"),
        "focal signal loss with geometric distortion",
        "the distorted region cannot be assessed",
    ),
    A.ghosting: Term(
        "ghosting",
        (r"ghost(?:s|ing)?", r"replicas?", r"n/2"),
        "replicas along the phase-encoding direction",
        "ghost copies overlie the anatomy",
    ),
    A.exposure: Term(
        "exposure error",
        (r"exposure", r"over[- ]?exposed", r"under[- ]?exposed", r"saturat\w*", r"clipp\w*", r"crushed"),
        "saturated or crushed intensity ranges",
        "values beyond the limit are lost",
    ),
    A.contrast: Term(
        "reduced contrast",
        (
            r"(?:low|poor|reduced|decreased|flat) contrast",
            r"contrast (?:is )?(?:low|poor|reduced)",
            r"washed[- ]out",
            r"haz[ey]",
            r"glare",
        ),
        "global loss of tissue contrast",
        "tissue boundaries fade",
    ),
    A.compression: Term(
        "lossy compression",
        (r"lossy", r"(?:irreversibl[ey]|lossily) compress\w*", r"compression artefacts?", r"compression artifacts?"),
        "the whole image",
        "detail removed by the codec cannot be recovered; the lossless originals should be retrieved",
    ),
}

# Free-text wordings found while hand-labelling the judge sample (MiniMedQ): how people
# and language models describe these attributes besides the names above.
WORDINGS: dict[A, tuple[str, ...]] = {
    A.noise: (r"speckl\w*", r"mottl\w*", r"(?:low|poor|reduced) snr"),
    A.streak: (r"undersampled (?:projection|view)s?", r"lines (?:that )?(?:fan|radiat)\w*"),
    A.blur: (
        r"fuzzy",
        r"out of focus",
        r"smeared out",
        r"lack(?:s|ing)? (?:of )?(?:definition|sharpness)",
        r"poorly defined (?:edges|boundaries)",
        r"soft(?:er)? (?:edges|boundaries|appearance)",
    ),
    A.limited_angle: (r"directional (?:blur|smear)\w*", r"(?:blur|smear)\w* (?:along|in) one direction"),
    A.metal: (r"beam[- ]hardening",),
    A.ghosting: (r"(?:copies|duplicates) of the (?:anatomy|head|brain|body|object|image)",),
    A.bias_field: (
        r"(?:brightness|intensity|signal) gradient",
        r"uneven (?:illumination|signal|intensity)",
        r"(?:brighter|darker) than the (?:rest|other side|opposite side)",
    ),
    A.exposure: (r"burn(?:t|ed)[- ]out", r"blown[- ]out"),
    A.spike: (r"strip(?:e|es|ed|ing)\b",),
    A.susceptibility: (r"warp(?:ing|ed)",),
    A.contrast: (
        r"(?:low|poor|reduced|decreased|flat) (?:tissue |soft[- ]tissue )?contrast",
        r"(?:grey|gray) levels? (?:\w+ ){0,3}flat",
        r"tissues? blend",
        r"poor (?:tissue )?differentiation",
        r"contrast (?:is |looks |appears )?(?:\w+ )?(?:low|poor|reduced|weak)",
    ),
}


def _compiled(attribute: A) -> re.Pattern[str]:
    words = (*TERMS[attribute].synonyms, *WORDINGS.get(attribute, ()))
    return re.compile(r"\b(?:" + "|".join(words) + r")", re.IGNORECASE)


PATTERNS: dict[A, re.Pattern[str]] = {a: _compiled(a) for a in TERMS}


def attribute_in(text: str) -> A | None:
    """The first attribute a short phrase (a question, an option) names, if any."""
    best: tuple[int, A] | None = None
    for attribute, pattern in PATTERNS.items():
        match = pattern.search(text)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), attribute)
    return best[1] if best else None
