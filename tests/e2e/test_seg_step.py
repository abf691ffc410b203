"""Lesion segmentation in the real workflow: the embedded stack's worker process runs the
real ``seg.segment`` (the packaged model) on a synthetic CT study stored by the gateway.

The step must report the study's lesions (found where the generator put them), leave its
``lesions.json``, and the gateway's assembly must index the DICOM SEG it wrote into the
study as a derived instance, on the study's own frame of reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from sqlalchemy import select
from workflow_support import run_ct_study

from medgate_common.schemas import JobStatus, StepStatus, StudySegmentation
from medgate_gateway.db.orm import Instance, Job, Result, Series, Study
from medgate_gateway.embedded import EmbeddedStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_ct_study_gets_its_lesions_and_a_seg_indexed_into_the_study(stack: EmbeddedStack, tmp_path: Path) -> None:
    context = stack.context
    assert context is not None
    study, truth, job = run_ct_study(context, tmp_path, 180)
    steps = {s.name: s for s in job.steps}
    assert job.status is JobStatus.review_ready, job
    seg_step = steps["segmentation"]
    assert seg_step.status is StepStatus.done, seg_step
    assert seg_step.model is not None and seg_step.model.backend == "onnxruntime"
    result = StudySegmentation.model_validate(seg_step.result)
    [series] = result.series
    assert series.series_instance_uid == truth["series_instance_uid"] and result.not_segmented == ()
    # the largest lesion of the truth is found where it is
    largest = max(study.truth.lesions, key=lambda lesion: lesion.volume_ml)
    distances = [np.linalg.norm(np.subtract(f.centroid_lps_mm, largest.centroid_lps_mm)) for f in series.lesions]
    assert distances and min(distances) < 15.0, (series.lesions, largest)

    with context.db.read() as session:
        kept = session.scalar(
            select(Result)
            .join(Job)
            .join(Study)
            .where(Study.study_uid == study.truth.study_instance_uid, Result.kind == "segmentation")
        )
        assert kept is not None and kept.payload == seg_step.result
        assert kept.storage_uri.endswith("/lesions.json") and kept.model_name == seg_step.model.name
        seg_rows = session.scalars(
            select(Instance)
            .join(Series)
            .join(Study)
            .where(Study.study_uid == study.truth.study_instance_uid, Series.modality == "SEG")
        ).all()
    [seg_row] = seg_rows  # indexed into the study, once
    seg = pydicom.dcmread(context.storage.path_for(seg_row.storage_uri))
    source = pydicom.dcmread(next((tmp_path / "dicom").glob("*.dcm")), stop_before_pixels=True)
    assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID and seg.StudyInstanceUID == source.StudyInstanceUID
    assert len(seg.SegmentSequence) == len(series.lesions)
    assert steps["assemble"].result is not None
    derived = steps["assemble"].result["derived_instances"]
    assert [(d["step"], d["modality"]) for d in derived if d["step"] == "segmentation"] == [("segmentation", "SEG")]
