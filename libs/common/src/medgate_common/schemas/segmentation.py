"""Lesions found by the segmentation service."""

from __future__ import annotations

from pydantic import Field

from medgate_common.schemas.base import DicomUID, WireModel
from medgate_common.schemas.models import ModelInfo
from medgate_common.schemas.quality import NotAssessable

Point3 = tuple[float, float, float]


class Lesion(WireModel):
    lesion_id: int = Field(ge=1)
    volume_ml: float = Field(ge=0.0)
    centroid_lps_mm: Point3
    slice_range: tuple[int, int]
    mean_intensity: float
    components: int = Field(default=1, ge=1)
    organ: str | None = None


class SegmentationResult(WireModel):
    series_instance_uid: DicomUID
    lesions: tuple[Lesion, ...]
    seg_uri: str | None = Field(default=None, description="Storage URI of the DICOM SEG")
    overlay_uris: tuple[str, ...] = ()
    model: ModelInfo


class StudySegmentation(WireModel):
    """The segmentation step's answer for a study: one result per segmented series, and every
    routed series that was not segmented with its reason (never a silent gap)."""

    study_instance_uid: DicomUID
    series: tuple[SegmentationResult, ...]
    not_segmented: tuple[NotAssessable, ...] = Field(
        default=(), description="Series the model could not segment: code (e.g. missing_slices) and reason"
    )
