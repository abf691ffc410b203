"""Reasoning in the real workflow: the embedded stack's worker process runs the real
``vlm.reason`` after the real ``seg.segment`` on a synthetic CT study stored by the gateway.

The step must draft one report whose every sentence cites its evidence, and the gateway's
assembly must index its SR (which references the SEG segmentation wrote) and its key images
into the study. It runs the packaged grounded VQA model (``medgate_vlm/weights``); a checkout
without it would make the step ``not_installed``, and the test fails rather than skip: the
model is committed.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select
from workflow_support import run_ct_study

from medgate_common.schemas import JobStatus, StepStatus, StudyReasoning
from medgate_gateway.db.orm import Instance, Series, Study
from medgate_gateway.embedded import EmbeddedStack
from medgate_vlm.core.vqa import package_weights_dir
from medgate_vlm.runtime import vqa_present

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_ct_study_gets_a_draft_report_whose_sr_references_the_seg(stack: EmbeddedStack, tmp_path: Path) -> None:
    assert vqa_present(package_weights_dir()), "the grounded VQA model is committed in medgate_vlm/weights"
    context = stack.context
    assert context is not None
    study, _, job = run_ct_study(context, tmp_path, 240)
    steps = {s.name: s for s in job.steps}
    assert job.status is JobStatus.review_ready, job
    step = steps["reasoning"]
    assert step.status is StepStatus.done, step
    assert step.dispatched_at is not None and steps["segmentation"].finished_at is not None
    assert step.dispatched_at >= steps["segmentation"].finished_at  # reasoning waits for the SEG
    result = StudyReasoning.model_validate(step.result)
    [report] = result.series
    assert report.statements and all(s.evidence for s in report.statements)
    with context.db.read() as session:
        rows = session.execute(
            select(Series.modality, Instance.storage_uri)
            .join(Instance, Instance.series_fk == Series.id)
            .join(Study)
            .where(Study.study_uid == study.truth.study_instance_uid, Series.modality.in_(["SEG", "SR"]))
        ).all()
    by_modality = {str(modality): str(uri) for modality, uri in rows}  # one SEG and one SR
    sr = pydicom.dcmread(context.storage.path_for(by_modality["SR"]))
    seg = pydicom.dcmread(context.storage.path_for(by_modality["SEG"]), stop_before_pixels=True)
    evidence = {
        item.ReferencedSOPInstanceUID
        for series in sr.CurrentRequestedProcedureEvidenceSequence
        for ref in series.ReferencedSeriesSequence
        for item in ref.ReferencedSOPSequence
    }
    assert seg.SOPInstanceUID in evidence
    derived = {d["modality"] for d in steps["assemble"].result["derived_instances"]}  # type: ignore[index]
    assert {"SEG", "SR"} <= derived
