"""The quality gate in the real workflow: the embedded stack's worker process runs the real
``iqa.assess`` (the packaged model) on studies stored by the gateway.

A study whose CT slices carry noise far above diagnostic levels must stop at the gate, with
the finding in the job's reasons and its report kept as the job's iqa result; a clean study
of the same kind must go on to review.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from iqa_fixtures import add_noise, remake, synthetic_series
from sqlalchemy import select
from workflow_support import wait_terminal

from medgate_common.schemas import JobStatus, StepStatus, StudyQualityReport, Verdict
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import Job, Result, Study
from medgate_gateway.embedded import EmbeddedStack
from medgate_gateway.ingest.ingestor import Source

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def send(context: GatewayContext, series: list[bytes]) -> str:
    stored = [context.ingestor.ingest(data, Source(transport="stow", actor="test")) for data in series]
    return stored[0].instance.study_uid


def test_a_degraded_study_stops_at_the_gate_with_its_reasons_and_a_clean_one_goes_on(
    stack: EmbeddedStack, tmp_path: Path
) -> None:
    context = stack.context
    assert context is not None
    noisy = send(context, remake(synthetic_series("CT", 41, tmp_path / "a"), add_noise(300.0), new_series=False))
    clean = send(context, synthetic_series("CT", 42, tmp_path / "b"))
    jobs = {job.study_instance_uid: job for job in wait_terminal(context, [noisy, clean], 120)}

    rejected = jobs[noisy]
    steps = {s.name: s for s in rejected.steps}
    assert rejected.status is JobStatus.quality_rejected, rejected
    assert "severe noise" in rejected.error
    assert steps["iqa"].status is StepStatus.done and steps["iqa"].model is not None
    assert steps["iqa"].model.backend == "onnxruntime"
    report = StudyQualityReport.model_validate(steps["iqa"].result)
    assert report.verdict is Verdict.reject
    assert [
        (f.attribute.value, f.severity.value) for f in report.series[0].findings if f.attribute.value == "noise"
    ] == [("noise", "severe")]
    assert steps["segmentation"].status is StepStatus.skipped and steps["reasoning"].status is StepStatus.skipped
    assert steps["assemble"].status is StepStatus.done
    with context.db.read() as session:
        kept = session.scalar(
            select(Result).join(Job).join(Study).where(Study.study_uid == noisy, Result.kind == "iqa")
        )
        assert kept is not None and kept.payload == steps["iqa"].result
        assert kept.storage_uri.endswith("/iqa/d1/quality.json")
    assert StudyQualityReport.model_validate_json(context.storage.get_bytes(kept.storage_uri)) == report

    passed = jobs[clean]
    assert passed.status is JobStatus.review_ready, passed
    [iqa] = [s for s in passed.steps if s.name == "iqa"]
    assert StudyQualityReport.model_validate(iqa.result).verdict is not Verdict.reject
