from __future__ import annotations

import pydantic
import pytest

from medgate_common.schemas import (
    JobStatus,
    ModelInfo,
    QualityFinding,
    QualityReport,
    QualityStatistics,
    Severity,
    StudyRef,
    Verdict,
)

MODEL = ModelInfo(name="iqa", version="1", sha256="a" * 64, backend="onnxruntime")


def test_uid_validation() -> None:
    assert StudyRef(study_instance_uid="1.2.840.10008.1").study_instance_uid == "1.2.840.10008.1"
    for bad in ["1.02.3", "1..2", "abc", "1.2.", "1" * 65, "../../etc"]:
        with pytest.raises(pydantic.ValidationError):
            StudyRef(study_instance_uid=bad)


def test_wire_models_are_strict_frozen_and_round_trip() -> None:
    report = QualityReport(
        series_instance_uid="1.2.3",
        modality="CT",
        findings=(QualityFinding(attribute="noise", severity=Severity.mild, probability=0.7),),
        statistics=QualityStatistics(noise_sigma=12.0, sharpness=0.4, contrast=1.0, clipped_fraction=0.0),
        verdict=Verdict.usable,
        reasoning="Mild noise. Overall, the quality of this image is usable.",
        model=MODEL,
    )
    assert QualityReport.model_validate_json(report.model_dump_json()) == report
    with pytest.raises(pydantic.ValidationError):
        QualityReport.model_validate({**report.model_dump(), "pixels": [1, 2, 3]})
    with pytest.raises(pydantic.ValidationError):
        report.verdict = Verdict.reject  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        ModelInfo(name="x", version="1", sha256="not-a-hash", backend="onnxruntime")


def test_job_status_terminal_states() -> None:
    assert {s for s in JobStatus if s.terminal} == {
        JobStatus.quality_rejected,
        JobStatus.review_ready,
        JobStatus.signed,
        JobStatus.failed,
    }
