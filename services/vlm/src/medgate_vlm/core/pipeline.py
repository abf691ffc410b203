"""One series from segmentation result to draft report: the lesion map from the SEG, the key
slice, the triage score, the standard questions to the grounded VQA model, the statements and
their DICOM outputs. The HTTP API and the workflow step both run this; neither adds logic.

The standard questions cover what a reader asks first (presence, location, count, size).
They are asked on the key slice (largest lesion area, else the middle slice), the slice the
triage classifier sees too, so that every answer and its heatmap are about one picture.

The segmentation names no host organ (its model outlines lesions only), so for each lesion
without one the VQA model is asked which organ holds the lesion, on the slice where that
lesion is largest. The answer becomes the lesion's site only when it is a location answer the
model could give, its rationale agrees with it, and its grounding map points at this lesion
and no other (:func:`.study.grounded_on`): the model answers about the largest lesion on the
slice, which may be another one. Then the answer is cited wherever the organ is said;
otherwise the organ stays unnamed and the answer is not cited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.quality import QualityReport
from medgate_common.schemas.reasoning import GroundedAnswer
from medgate_common.schemas.segmentation import Lesion
from medgate_vlm.core.evidence import LOCATION_ORGANS, LesionSite, ReportStatement
from medgate_vlm.core.report import Grounding, Outputs, Uids, answered, build_outputs, compose, refuse
from medgate_vlm.core.study import (
    KeySlice,
    LabelMap,
    ReportSeries,
    grounded_on,
    key_slice,
    largest_slice_of,
    lesion_labels,
)
from medgate_vlm.core.triage import Triage, TriageModel
from medgate_vlm.core.vqa import VqaModel, VqaResult

#: (intent, question) asked of every reported series.
STANDARD_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("presence", "Is there a lesion in this image?"),
    ("location", "Where is the lesion located?"),
    ("count", "How many lesions are there?"),
    ("size", "How large is the largest lesion?"),
)
#: Asked, per lesion the segmentation names no organ of, on the slice where it is largest.
SITE_QUESTION = "Which organ contains the lesion?"


@dataclass(frozen=True)
class Asked:
    """An answer on slice ``index`` of the series, with what the model said about it;
    ``lesion_id`` names the lesion a site question was asked about."""

    result: VqaResult
    index: int
    lesion_id: int | None = None


def site_named(asked: Asked, labels: LabelMap) -> str | None:
    """The organ (as :data:`.dicom_sr.ORGAN_SITES` spells it) that a site question's answer
    names for its lesion, or None where it may not be taken for the lesion's site: not
    answerable, not a location answer, a rationale that disagrees with it, or a grounding that
    does not point at this lesion."""
    result = asked.result
    if asked.lesion_id is None or not (result.answerable and result.consistent) or result.intent != "location":
        return None
    organ = LOCATION_ORGANS.get(result.grounded.answer.strip().lower())
    if organ is None:
        return None
    on_lesion = grounded_on(labels, asked.index, asked.lesion_id, result.heatmap, result.grounded.grounding_box)
    return organ if on_lesion else None


@dataclass(frozen=True)
class Report:
    statements: tuple[ReportStatement, ...]
    asked: tuple[Asked, ...]
    cited: tuple[GroundedAnswer, ...]
    triage: Triage | None
    key_slice: KeySlice
    outputs: Outputs
    sites: tuple[LesionSite, ...] = ()

    @property
    def answers(self) -> tuple[GroundedAnswer, ...]:
        return tuple(a.result.grounded for a in self.asked)


@dataclass(frozen=True)
class Reasoner:
    """The VQA model (required: it is the report's observer) and the triage model (optional)."""

    vqa: VqaModel
    vqa_info: ModelInfo
    triage_model: TriageModel | None = None
    triage_note: str = "no triage model is installed"
    questions: tuple[tuple[str, str], ...] = STANDARD_QUESTIONS
    site_question: str = SITE_QUESTION

    def triage(self, series: ReportSeries, key: KeySlice) -> Triage | None:
        return self.triage_model.score(series.volume.array, key) if self.triage_model is not None else None

    def ask(self, series: ReportSeries, question: str, index: int, lesion_id: int | None = None) -> Asked:
        result = self.vqa.answer(
            series.volume.array[index],
            series.volume.modality,
            question,
            spacing_mm=series.spacing_rc(),
            slice_index=index,
        )
        return Asked(result, index, lesion_id)

    def ask_sites(self, series: ReportSeries, labels: LabelMap, lesions: Sequence[Lesion]) -> list[Asked]:
        """The site question about each lesion the segmentation names no organ of."""
        return [
            self.ask(series, self.site_question, largest_slice_of(labels, lesion.lesion_id), lesion.lesion_id)
            for lesion in sorted(lesions, key=lambda lesion: lesion.lesion_id)
            if not lesion.organ
        ]

    def report(
        self,
        series: ReportSeries,
        seg: Dataset | None,
        lesions: Sequence[Lesion] | None,
        quality: QualityReport | None,
        uids: Uids,
        *,
        segmentation_model: ModelInfo | None = None,
    ) -> Report:
        """Everything about one series; refuses a rejected series or one without segmentation
        result before any model runs."""
        refuse(quality, lesions)
        assert lesions is not None  # refuse()
        labels = lesion_labels(seg, series, [lesion.lesion_id for lesion in lesions])
        key = key_slice(labels, series.depth)
        triage = self.triage(series, key)
        asked = (
            *(self.ask(series, question, key.index) for _, question in self.questions),
            *self.ask_sites(series, labels, lesions),
        )
        cited: list[GroundedAnswer] = []
        groundings: list[Grounding] = []
        sites: list[LesionSite] = []
        for a in asked:
            organ = site_named(a, labels)
            if a.lesion_id is not None and organ is None:
                continue  # maybe about another lesion: not cited, the organ stays unnamed
            if answered([a.result.grounded]):
                cited.append(a.result.grounded)
                groundings.append(Grounding(len(cited), a.index, a.result.heatmap))
                if a.lesion_id is not None and organ is not None:
                    sites.append(LesionSite(a.lesion_id, organ, len(cited)))
        score = triage.score if triage is not None else None
        statements = compose(quality, lesions, cited, score, sites=sites)
        outputs = build_outputs(
            series,
            seg,
            labels,
            lesions,
            statements,
            cited,
            self.vqa_info,
            uids,
            groundings=groundings,
            quality=quality,
            triage=score,
            segmentation_model=segmentation_model,
            sites=sites,
        )
        return Report(tuple(statements), asked, tuple(cited), triage, key, outputs, tuple(sites))
