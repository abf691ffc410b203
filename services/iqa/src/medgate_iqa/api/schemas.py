"""Wire types of the HTTP API that the shared schemas do not already define."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from medgate_common.api.uploads import PROBLEM_CONTENT, file_list, upload_body
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


ASSESS_BODY = upload_body(
    {"files": file_list("DICOM instances of one study (one or more series); any field name is accepted")},
    ["files"],
)
PERCEPTION_BODY = upload_body(
    {
        "files": file_list("DICOM instances of one series"),
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
    {"a": file_list("DICOM instances of series A"), "b": file_list("DICOM instances of series B")},
    ["a", "b"],
)

PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not DICOM (invalid_dicom), mixed studies, or a bad form field", "content": PROBLEM_CONTENT},
    413: {
        "description": "Upload larger than MEDGATE_IQA_MAX_UPLOAD_BYTES (payload_too_large)",
        "content": PROBLEM_CONTENT,
    },
    415: {"description": "Not multipart/form-data (unsupported_media_type)", "content": PROBLEM_CONTENT},
    422: {
        "description": "Nothing the gate can judge (not_assessable); details.series say why, per series",
        "content": PROBLEM_CONTENT,
    },
}
