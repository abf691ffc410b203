"""Image-quality report in the MedQ style: attributes, severity, verdict and reasoning."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from medgate_common.schemas.base import DicomUID, WireModel
from medgate_common.schemas.models import ModelInfo


class Severity(StrEnum):
    none = "none"
    mild = "mild"
    severe = "severe"


class Verdict(StrEnum):
    good = "good"
    usable = "usable"
    reject = "reject"


class QualityAttribute(StrEnum):
    noise = "noise"
    blur = "blur"
    motion = "motion"
    streak = "streak"
    metal = "metal"
    ring = "ring"
    undersampling = "undersampling"
    limited_angle = "limited_angle"
    bias_field = "bias_field"
    spike = "spike"
    gibbs = "gibbs"
    susceptibility = "susceptibility"
    ghosting = "ghosting"
    exposure = "exposure"
    contrast = "contrast"
    compression = "compression"  # lossy compression, read from the header, not the pixels


class QualityFinding(WireModel):
    attribute: QualityAttribute
    severity: Severity
    probability: float = Field(ge=0.0, le=1.0)
    location: str = ""


class QualityStatistics(WireModel):
    noise_sigma: float = Field(ge=0.0)
    sharpness: float = Field(ge=0.0)
    contrast: float = Field(ge=0.0)
    clipped_fraction: float = Field(ge=0.0, le=1.0)


class QualityReport(WireModel):
    series_instance_uid: DicomUID
    modality: str
    findings: tuple[QualityFinding, ...]
    statistics: QualityStatistics
    verdict: Verdict
    reasoning: str = Field(min_length=1)
    model: ModelInfo


class NotAssessable(WireModel):
    """A series the gate could not judge, and why (never a silent pass)."""

    series_instance_uid: str
    modality: str = ""
    code: str = Field(description="Stable reason code, e.g. colour, too_small, unsupported_modality")
    reason: str = Field(min_length=1)


class StudyQualityReport(WireModel):
    """The gate's answer for a whole study: what the workflow routes on."""

    study_instance_uid: DicomUID
    verdict: Verdict
    series: tuple[QualityReport, ...]
    reasons: tuple[str, ...] = Field(default=(), description="Why the study is rejected or only usable")
    not_assessable: tuple[NotAssessable, ...] = Field(default=(), description="Series the gate could not judge")
