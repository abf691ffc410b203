"""What a sentence of the draft report rests on.

A radiologist signs a report sentence by sentence, so every sentence the model drafts names
the results it was drawn from: a lesion of the segmentation, one of its measurements, an
answer of the grounded VQA model, the lesion search as a whole (for "no lesion found"), the
quality gate's report on the series, or the triage classifier's score.
A sentence without evidence is refused here, before anything is written: the SR writer
never has to decide what an unsupported sentence means.

A lesion's host organ is the segmentation's when it names one. When it names none, the
reasoning step may name it from a grounded answer about that very lesion (:class:`LesionSite`);
every sentence and SR item that says the organ then cites that answer too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from medgate_common.errors import InputError
from medgate_common.schemas.reasoning import GroundedAnswer
from medgate_common.schemas.segmentation import Lesion

#: Measurements a statement may cite, by the name used in ``EvidenceRef.quantity``.
QUANTITIES = frozenset({"volume"})


class EvidenceError(InputError, ValueError):
    """A report item points at evidence that is not there (a lesion the segmentation did not
    report, a segment the SEG does not have, an answer that was not given)."""

    code = "unresolved_evidence"
    http_status = 422


class Section(StrEnum):
    FINDINGS = "findings"
    IMPRESSION = "impression"


class EvidenceKind(StrEnum):
    LESION = "lesion"
    MEASUREMENT = "measurement"
    ANSWER = "answer"
    LESION_SEARCH = "lesion_search"
    QUALITY = "quality"
    TRIAGE = "triage"


@dataclass(frozen=True)
class EvidenceRef:
    """One result a statement rests on. ``number`` is the lesion id (lesion, measurement) or the
    answer's 1-based position in the answers given to the writer; 0 for the lesion search."""

    kind: EvidenceKind
    number: int = 0
    quantity: str = ""

    @classmethod
    def lesion(cls, lesion_id: int) -> EvidenceRef:
        return cls(EvidenceKind.LESION, lesion_id)

    @classmethod
    def volume_of(cls, lesion_id: int) -> EvidenceRef:
        return cls(EvidenceKind.MEASUREMENT, lesion_id, "volume")

    @classmethod
    def answer(cls, number: int) -> EvidenceRef:
        return cls(EvidenceKind.ANSWER, number)

    @classmethod
    def lesion_search(cls) -> EvidenceRef:
        return cls(EvidenceKind.LESION_SEARCH)

    @classmethod
    def quality(cls) -> EvidenceRef:
        """The quality gate's report on the series (verdict and reasoning)."""
        return cls(EvidenceKind.QUALITY)

    @classmethod
    def triage(cls) -> EvidenceRef:
        """The triage classifier's score of the study."""
        return cls(EvidenceKind.TRIAGE)

    @property
    def label(self) -> str:
        """Human-readable name, written into the SR beside the cited item's tracking UID."""
        if self.kind is EvidenceKind.LESION:
            return f"lesion {self.number}"
        if self.kind is EvidenceKind.MEASUREMENT:
            return f"lesion {self.number} {self.quantity}"
        if self.kind is EvidenceKind.ANSWER:
            return f"answer {self.number}"
        if self.kind is EvidenceKind.QUALITY:
            return "quality report"
        if self.kind is EvidenceKind.TRIAGE:
            return "triage score"
        return "lesion search"


#: The VQA model's location answers → the organ names the SR's finding sites use.
LOCATION_ORGANS: dict[str, str] = {
    "liver": "liver",
    "spleen": "spleen",
    "kidney": "kidney",
    "white matter": "white_matter",
}


@dataclass(frozen=True)
class LesionSite:
    """Lesion ``lesion_id``'s host organ as grounded answer ``answer`` (its number among the
    answers given to the writer) names it, for a lesion the segmentation names no organ of.
    ``organ`` is spelled as the segmentation would spell it (``white_matter``)."""

    lesion_id: int
    organ: str
    answer: int

    @property
    def evidence(self) -> EvidenceRef:
        return EvidenceRef.answer(self.answer)


@dataclass(frozen=True)
class ReportStatement:
    """One sentence of the draft report's findings or impression, with what it rests on."""

    text: str
    evidence: tuple[EvidenceRef, ...]
    section: Section = Section.FINDINGS

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise EvidenceError("a report statement needs text")
        if not self.evidence:
            raise EvidenceError("a report statement needs at least one piece of evidence", statement=self.text)


def check_evidence(
    statements: Iterable[ReportStatement],
    lesions: Sequence[Lesion],
    answers: Sequence[GroundedAnswer],
    *,
    quality: bool = False,
    triage: bool = False,
    sites: Iterable[LesionSite] = (),
) -> None:
    """Raise :class:`EvidenceError` for the first citation of something not among ``lesions``/``answers``,
    or of the quality report / triage score when ``quality`` / ``triage`` say there is none, and
    for a site of a lesion that is not there, that the segmentation already names, or that
    rests on an answer that was not given or that names another organ (or no organ), and for
    two sites of one lesion."""
    lesion_ids = {lesion.lesion_id for lesion in lesions}
    named = {lesion.lesion_id for lesion in lesions if lesion.organ}
    placed: set[int] = set()
    for site in sites:
        if site.lesion_id in placed:
            raise EvidenceError(f"lesion {site.lesion_id} is given more than one site")
        placed.add(site.lesion_id)
        if site.lesion_id not in lesion_ids:
            raise EvidenceError(f"a site is given for lesion {site.lesion_id}, which the segmentation did not report")
        if site.lesion_id in named:
            raise EvidenceError(f"lesion {site.lesion_id}'s organ is the segmentation's; no answer replaces it")
        if not 1 <= site.answer <= len(answers):
            raise EvidenceError(
                f"lesion {site.lesion_id}'s site cites {site.evidence.label}, but {len(answers)} answer(s) were given"
            )
        said = answers[site.answer - 1].answer
        if LOCATION_ORGANS.get(said.strip().lower()) != site.organ:
            raise EvidenceError(
                f"lesion {site.lesion_id}'s site {site.organ!r} cites {site.evidence.label}, which answered {said!r}"
            )
    present = {EvidenceKind.QUALITY: quality, EvidenceKind.TRIAGE: triage}
    for statement in statements:
        for ref in statement.evidence:
            if not present.get(ref.kind, True):
                raise EvidenceError(f"a statement cites the {ref.label}, but there is none")
            if ref.kind in (EvidenceKind.LESION, EvidenceKind.MEASUREMENT) and ref.number not in lesion_ids:
                raise EvidenceError(f"a statement cites {ref.label}, which the segmentation did not report")
            if ref.kind is EvidenceKind.MEASUREMENT and ref.quantity not in QUANTITIES:
                raise EvidenceError(f"a statement cites {ref.label}, a measurement that is not made")
            if ref.kind is EvidenceKind.ANSWER and not 1 <= ref.number <= len(answers):
                raise EvidenceError(f"a statement cites {ref.label}, but {len(answers)} answer(s) were given")
