"""Triage, grounded answers and the draft report from the reasoning service."""

from __future__ import annotations

from pydantic import Field

from medgate_common.schemas.base import DicomUID, WireModel
from medgate_common.schemas.models import ModelInfo


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


class ReasoningResult(WireModel):
    study_instance_uid: DicomUID
    triage: TriageScore
    answers: tuple[GroundedAnswer, ...] = ()
    findings_text: str = ""
    impression_text: str = ""
    sr_uri: str | None = None
    key_image_uris: tuple[str, ...] = ()
    model: ModelInfo
