"""The workflow step ``seg.segment``: instances read from a real store, the study's lesions
as the step's result, ``lesions.json``, the SEG and overlays as artifacts, and bad series
named in the result or failing the step with a stable code.

The wrapper runs through Celery's ``apply`` and publishes its events through the embedded
broker (a SQLite file in tmp_path); a real worker process runs the step in
tests/e2e/test_seg_step.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from celery import Celery
from seg_fixtures import Series, as_modality, remake
from shared_fixtures import drain_step_events, step_app, step_request, store_study

from medgate_common.errors import ModelError
from medgate_common.schemas import StudyRef, StudySegmentation
from medgate_common.schemas.workflow import StepEventKind, StepName, StepRequest
from medgate_common.storage import LocalStorage, storage_from_uri
from medgate_seg import tasks
from medgate_seg.core.pipeline import Segmenter
from medgate_seg.settings import SegSettings


@pytest.fixture
def storage(settings: SegSettings) -> LocalStorage:
    return storage_from_uri(settings.resolved_storage_uri())


@pytest.fixture
def step(settings: SegSettings, segmenter: Segmenter) -> tasks.SegmentStep:
    return tasks.SegmentStep(settings, segmenter)


def request_for(storage: LocalStorage, study: StudyRef, dispatch: int = 1) -> StepRequest:
    return step_request(storage, StepName.segmentation, study, dispatch=dispatch)


def test_the_step_answers_with_the_lesions_and_leaves_seg_overlays_and_json(
    step: tasks.SegmentStep, storage: LocalStorage, phantom_series: Series
) -> None:
    mr = remake(phantom_series[:4], as_modality("MR"))
    request = request_for(storage, store_study(storage, phantom_series, mr))
    outcome = step.run(request)
    assert outcome.installed and outcome.model == step.segmenter.model.backend.info
    study = StudySegmentation.model_validate(outcome.result)
    [ct] = study.series
    assert ct.series_instance_uid == request.study.series[0].series_instance_uid and len(ct.lesions) == 2
    assert [(s.modality, s.code) for s in study.not_segmented] == [("MR", "unsupported_modality")]
    folder = f"jobs/job-1/run1/segmentation/d1/{ct.series_instance_uid}"
    assert ct.seg_uri == storage.uri_for(f"{folder}/seg.dcm")
    media = [(a.uri, a.media_type) for a in outcome.artifacts]
    assert media[0] == (storage.uri_for("jobs/job-1/run1/segmentation/d1/lesions.json"), "application/json")
    assert media[1] == (ct.seg_uri, "application/dicom")
    assert [m for _, m in media[2:]] == ["image/png", "image/png"]
    assert json.loads(storage.get_bytes(media[0][0])) == outcome.result
    seg = pydicom.dcmread(io.BytesIO(storage.get_bytes(ct.seg_uri)))
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == request.study.study_instance_uid

    # the same request again (a redelivery) writes the same SEG object, not a second one
    again = StudySegmentation.model_validate(step.run(request).result)
    assert (
        pydicom.dcmread(io.BytesIO(storage.get_bytes(again.series[0].seg_uri or ""))).SOPInstanceUID
        == seg.SOPInstanceUID
    )


def test_a_study_without_a_ct_series_is_not_installed_for_this_model(
    step: tasks.SegmentStep, storage: LocalStorage, phantom_series: Series
) -> None:
    outcome = step.run(request_for(storage, store_study(storage, remake(phantom_series[:4], as_modality("MR")))))
    assert not outcome.installed and "MR" in outcome.note
    assert not (storage.root / "jobs").exists()


def test_a_series_that_cannot_be_segmented_is_named_with_its_reason_and_the_step_is_done(
    step: tasks.SegmentStep, storage: LocalStorage, phantom_series: Series
) -> None:
    holed = remake(phantom_series[:6] + phantom_series[9:], lambda n, ds: None)
    alone = StudySegmentation.model_validate(step.run(request_for(storage, store_study(storage, holed))).result)
    assert alone.series == () and [s.code for s in alone.not_segmented] == ["missing_slices"]
    assert "missing" in alone.not_segmented[0].reason
    # beside a good series, the good one is segmented
    study = StudySegmentation.model_validate(
        step.run(request_for(storage, store_study(storage, phantom_series, holed))).result
    )
    assert [s.code for s in study.not_segmented] == ["missing_slices"] and len(study.series) == 1


def test_no_packaged_weights_is_not_installed_but_a_bad_configured_folder_is_an_error(
    tmp_path: Path, storage: LocalStorage, phantom_series: Series
) -> None:
    request = request_for(storage, store_study(storage, phantom_series))
    outcome = tasks.SegmentStep(SegSettings(home=tmp_path / "h"), packaged=tmp_path / "empty").run(request)
    assert not outcome.installed and "no lesion segmentation model" in outcome.note
    with pytest.raises(ModelError, match="MEDGATE_SEG_WEIGHTS"):
        tasks.SegmentStep(SegSettings(home=tmp_path / "h", weights=tmp_path / "nothing")).run(request)


@pytest.fixture
def app(settings: SegSettings, step: tasks.SegmentStep) -> Iterator[Celery]:
    with step_app(settings, tasks.register, step) as celery:
        yield celery


def test_the_celery_task_reports_done_with_the_lesions_or_with_the_reason_it_could_not_segment(
    app: Celery, storage: LocalStorage, phantom_series: Series
) -> None:
    task = app.tasks["seg.segment"]
    assert task.name == StepName.segmentation.task and task.acks_late
    request = request_for(storage, store_study(storage, phantom_series))
    task.apply(args=[request.model_dump(mode="json")])
    started, done = drain_step_events(app)
    assert (started.kind, done.kind) == (StepEventKind.started, StepEventKind.done)
    assert len(StudySegmentation.model_validate(done.result).series[0].lesions) == 2
    assert done.model is not None and done.model.backend == "onnxruntime"
    assert done.artifacts[0].uri == request.output_prefix + "/lesions.json"

    single = request_for(storage, store_study(storage, phantom_series[:1]))
    task.apply(args=[single.model_dump(mode="json")])
    _, done = drain_step_events(app)
    assert done.kind is StepEventKind.done and done.attempt == 1  # not retried
    refused = StudySegmentation.model_validate(done.result)
    assert refused.series == () and [s.code for s in refused.not_segmented] == ["single_slice"]
    assert "single slice" in refused.not_segmented[0].reason
