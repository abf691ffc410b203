"""Triage, grounded answers and the draft report from the reasoning service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from medgate_common.schemas.base import DicomUID, WireModel
from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.quality import NotAssessable


class TriageScore(WireModel):
    score: float = Field(ge=0.0, le=1.0, description="Probability that the study is abnormal")
    label: str
    model: ModelInfo


class GroundedAnswer(WireModel):
    question: str
    answer: str
    rationale: str
    # Bounding box of the grounding region in (slice, row, col) voxel indices, if any.
    grounding_box: tuple[int, int, int, int, int, int] | None = None
    confidence: float = Field(ge=0.0, le=1.0)


class DraftStatement(WireModel):
    """One sentence of the draft report and the results it rests on (never empty)."""

    section: Literal["findings", "impression"]
    text: str = Field(min_length=1)
    evidence: tuple[str, ...] = Field(
        min_length=1, description='What it cites, e.g. "lesion 2", "lesion 2 volume", "answer 1", "quality report"'
    )


class ReasoningResult(WireModel):
    study_instance_uid: DicomUID
    series_instance_uid: DicomUID | None = Field(default=None, description="The series the report is about")
    triage: TriageScore | None = Field(default=None, description="None when no triage model is installed")
    triage_note: str = Field(default="", description="Why there is no triage score")
    answers: tuple[GroundedAnswer, ...] = ()
    findings_text: str = ""
    impression_text: str = ""
    statements: tuple[DraftStatement, ...] = ()
    sr_uri: str | None = None
    key_image_uris: tuple[str, ...] = ()
    model: ModelInfo


class StudyReasoning(WireModel):
    """The reasoning step's answer for a study: one result per reported series, and every
    routed series that was not reported on with its reason (never a silent gap)."""

    study_instance_uid: DicomUID
    series: tuple[ReasoningResult, ...]
    not_reasoned: tuple[NotAssessable, ...] = Field(
        default=(), description="Series without a report: code (e.g. missing_segmentation) and reason"
    )
