"""One series from segmentation result to draft report: the lesion map from the SEG, the key
slice, the triage score, the standard questions to the grounded VQA model, the statements and
their DICOM outputs. The HTTP API and the workflow step both run this; neither adds logic.

The standard questions cover what a reader asks first (presence, location, count, size).
They are asked on the key slice (largest lesion area, else the middle slice), the slice the
triage classifier sees too, so that every answer and its heatmap are about one picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.quality import QualityReport
from medgate_common.schemas.reasoning import GroundedAnswer
from medgate_common.schemas.segmentation import Lesion
from medgate_vlm.core.evidence import ReportStatement
from medgate_vlm.core.report import Grounding, Outputs, Uids, answered, build_outputs, compose, refuse
from medgate_vlm.core.study import KeySlice, ReportSeries, key_slice, lesion_labels
from medgate_vlm.core.triage import Triage, TriageModel
from medgate_vlm.core.vqa import VqaModel, VqaResult

#: (intent, question) asked of every reported series.
STANDARD_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("presence", "Is there a lesion in this image?"),
    ("location", "Where is the lesion located?"),
    ("count", "How many lesions are there?"),
    ("size", "How large is the largest lesion?"),
)


@dataclass(frozen=True)
class Asked:
    """An answer on slice ``index`` of the series, with what the model said about it."""

    result: VqaResult
    index: int


@dataclass(frozen=True)
class Report:
    statements: tuple[ReportStatement, ...]
    asked: tuple[Asked, ...]
    cited: tuple[GroundedAnswer, ...]
    triage: Triage | None
    key_slice: KeySlice
    outputs: Outputs

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

    def triage(self, series: ReportSeries, key: KeySlice) -> Triage | None:
        return self.triage_model.score(series.volume.array, key) if self.triage_model is not None else None

    def ask(self, series: ReportSeries, question: str, index: int) -> Asked:
        result = self.vqa.answer(
            series.volume.array[index],
            series.volume.modality,
            question,
            spacing_mm=series.spacing_rc(),
            slice_index=index,
        )
        return Asked(result, index)

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
        asked = tuple(self.ask(series, question, key.index) for _, question in self.questions)
        cited: list[GroundedAnswer] = []
        groundings: list[Grounding] = []
        for a in asked:
            if answered([a.result.grounded]):
                cited.append(a.result.grounded)
                groundings.append(Grounding(len(cited), a.index, a.result.heatmap))
        statements = compose(quality, lesions, cited, triage.score if triage is not None else None)
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
            triage=triage.score if triage is not None else None,
            segmentation_model=segmentation_model,
        )
        return Report(tuple(statements), asked, tuple(cited), triage, key, outputs)
