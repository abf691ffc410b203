"""Wire contracts between the gateway and the services.

Celery tasks and HTTP calls exchange these types as JSON, never pixel data: a payload
names series by UID and storage URI, and every model output names the model that made it.
"""

from medgate_common.schemas.base import WireModel
from medgate_common.schemas.jobs import JobState, JobStatus, JobUpdate, StepState, StepStatus
from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.quality import (
    NotAssessable,
    QualityAttribute,
    QualityFinding,
    QualityReport,
    QualityStatistics,
    Severity,
    StudyQualityReport,
    Verdict,
)
from medgate_common.schemas.reasoning import (
    DraftStatement,
    GroundedAnswer,
    ReasoningResult,
    StudyReasoning,
    TriageScore,
)
from medgate_common.schemas.segmentation import Lesion, SegmentationResult, StudySegmentation
from medgate_common.schemas.study import SeriesRef, StudyRef
from medgate_common.schemas.workflow import Artifact, StepEvent, StepEventKind, StepName, StepRequest, StepResult

__all__ = [
    "Artifact",
    "DraftStatement",
    "GroundedAnswer",
    "JobState",
    "JobStatus",
    "JobUpdate",
    "Lesion",
    "ModelInfo",
    "NotAssessable",
    "QualityAttribute",
    "QualityFinding",
    "QualityReport",
    "QualityStatistics",
    "ReasoningResult",
    "SegmentationResult",
    "SeriesRef",
    "Severity",
    "StepEvent",
    "StepEventKind",
    "StepName",
    "StepRequest",
    "StepResult",
    "StepState",
    "StepStatus",
    "StudyQualityReport",
    "StudyReasoning",
    "StudyRef",
    "StudySegmentation",
    "TriageScore",
    "Verdict",
    "WireModel",
]
