"""Wire types of the reasoning API's answers and OpenAPI descriptions of its uploads and problems."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from medgate_common.api.uploads import PROBLEM_CONTENT, file_list, upload_body
from medgate_common.schemas.base import WireModel
from medgate_common.schemas.reasoning import GroundedAnswer, TriageScore


class SliceRef(WireModel):
    """The slice a single-slice model looked at."""

    index: int = Field(ge=0, description="0-based, in volume order")
    instance_number: int = Field(description="Instance Number (frame number in a multi-frame image)")
    reason: str


class TriageAnswer(WireModel):
    triage: TriageScore
    slice: SliceRef


class VqaAnswer(WireModel):
    answer: GroundedAnswer
    intent: str = Field(description="The question type the model recognised, or out_of_scope")
    answerable: bool = Field(description='False: "cannot answer from this study", with the reason in the rationale')
    consistent: bool = Field(description="The rationale agrees with the answer (automatic check)")
    slice: SliceRef
    heatmap_uri: str | None = Field(description="/v1/answers/{id}/heatmap.png, None when nothing is grounded")


_SERIES = file_list(
    "DICOM instances of one series, or zip archives of them; for /v1/report (and to pick the key slice) also the "
    "series' DICOM SEG"
)
_STUDY = {"type": "string", "description": "Instead of files: a StudyRef (JSON) of one series in the shared store"}
_SEGMENTATION = {
    "type": "string",
    "description": "The seg service's SegmentationResult of the series (JSON); required by /v1/report",
}
TRIAGE_BODY = upload_body({"files": _SERIES, "study": _STUDY, "segmentation": _SEGMENTATION}, [])
VQA_BODY = upload_body(
    {
        "files": _SERIES,
        "study": _STUDY,
        "segmentation": _SEGMENTATION,
        "question": {"type": "string", "description": "Free text"},
        "instance_number": {"type": "integer", "description": "The image to ask about (default: the key slice)"},
    },
    ["question"],
)
REPORT_BODY = upload_body(
    {
        "files": _SERIES,
        "study": _STUDY,
        "segmentation": _SEGMENTATION,
        "quality": {"type": "string", "description": "The quality gate's QualityReport of the series (JSON)"},
    },
    ["segmentation"],
)

PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Not DICOM, several series, a bad form field (invalid_dicom, invalid_input)",
        "content": PROBLEM_CONTENT,
    },
    413: {
        "description": "Upload larger than MEDGATE_VLM_MAX_UPLOAD_BYTES (payload_too_large)",
        "content": PROBLEM_CONTENT,
    },
    415: {"description": "Not multipart/form-data (unsupported_media_type)", "content": PROBLEM_CONTENT},
    422: {
        "description": "empty_study, quality_rejected, missing_segmentation, unresolved_evidence, not_an_image, "
        "inconsistent_geometry, model_input_mismatch (a modality the model does not take)",
        "content": PROBLEM_CONTENT,
    },
    503: {
        "description": "The VQA or triage model is not installed or not loaded (not_ready)",
        "content": PROBLEM_CONTENT,
    },
}
