"""OpenAPI descriptions of the segmentation API's upload and its problems."""

from __future__ import annotations

from typing import Any

from medgate_common.api.uploads import PROBLEM_CONTENT, file_list, upload_body

SEGMENT_BODY = upload_body(
    {
        "files": file_list(
            "DICOM instances of one series, or zip archives of them (DICOMDIR is ignored); any field name is accepted"
        )
    },
    ["files"],
)

PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Not DICOM or not a readable zip (invalid_dicom), several series, a missing tag",
        "content": PROBLEM_CONTENT,
    },
    413: {
        "description": "Upload (or its unzipped files) larger than MEDGATE_SEG_MAX_UPLOAD_BYTES (payload_too_large)",
        "content": PROBLEM_CONTENT,
    },
    415: {"description": "Not multipart/form-data (unsupported_media_type)", "content": PROBLEM_CONTENT},
    422: {
        "description": "A series that cannot be segmented without misplacing the result: not_an_image, "
        "unsupported_modality, or inconsistent_geometry with details.reason single_slice, missing_slices, "
        "inconsistent_spacing, gantry_tilt, mixed_orientation, mixed_pixel_spacing or duplicate_position",
        "content": PROBLEM_CONTENT,
    },
}
