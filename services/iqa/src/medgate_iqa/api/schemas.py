"""Wire types of the HTTP API that the shared schemas do not already define."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from medgate_common.schemas.base import WireModel
from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.quality import QualityReport


class PerceptionAnswer(WireModel):
    letter: str = Field(pattern=r"^[A-D]$", description="The chosen option's letter")
    option: str = Field(description="The chosen option's text")
    confidence: float = Field(ge=0.0, le=1.0)
    kind: Literal["yes-or-no", "what", "how"] = Field(description="How the question was read")
    model: ModelInfo


class ComparisonResult(WireModel):
    preferred: Literal["A", "B"] = Field(description="The image with the higher quality")
    text: str = Field(description="Why, in a few sentences")
    a: QualityReport
    b: QualityReport


class Readiness(WireModel):
    status: Literal["ready"]
    model: ModelInfo


def _file_list(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string", "format": "binary"}, "description": description}


def upload_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """OpenAPI for a multipart body the route parses itself (to count its bytes as they come)."""
    schema = {"type": "object", "properties": properties, "required": required}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


ASSESS_BODY = upload_body(
    {"files": _file_list("DICOM instances of one study (one or more series); any field name is accepted")},
    ["files"],
)
PERCEPTION_BODY = upload_body(
    {
        "files": _file_list("DICOM instances of one series"),
        "question": {"type": "string", "example": "Is there noise in this image?"},
        "options": {
            "type": "array",
            "items": {"type": "string"},
            "description": "2 to 4 options: one JSON array, or the field repeated",
            "example": ["Yes", "No"],
        },
    },
    ["files", "question", "options"],
)
COMPARE_BODY = upload_body(
    {"a": _file_list("DICOM instances of series A"), "b": _file_list("DICOM instances of series B")},
    ["a", "b"],
)

_PROBLEM_JSON = {"application/problem+json": {"schema": {"type": "object"}}}
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not DICOM (invalid_dicom), mixed studies, or a bad form field", "content": _PROBLEM_JSON},
    413: {
        "description": "Upload larger than MEDGATE_IQA_MAX_UPLOAD_BYTES (payload_too_large)",
        "content": _PROBLEM_JSON,
    },
    415: {"description": "Not multipart/form-data (unsupported_media_type)", "content": _PROBLEM_JSON},
    422: {
        "description": "Nothing the gate can judge (not_assessable); details.series say why, per series",
        "content": _PROBLEM_JSON,
    },
}
