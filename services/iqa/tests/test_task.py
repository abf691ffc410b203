"""The workflow step ``iqa.assess``: instances read from a real store, the gate's report as
the step's result and artifact, and its refusals as failed steps with a stable code.

The wrapper runs through Celery's ``apply`` and publishes its events through the embedded
broker (a SQLite file in tmp_path); a real worker process runs the step in
tests/e2e/test_iqa_gate.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from iqa_fixtures import Series, modality, remake
from shared_fixtures import drain_step_events, step_app, step_request, store_study

from medgate_common.errors import UnsafePathError
from medgate_common.schemas import StudyQualityReport, StudyRef, Verdict
from medgate_common.schemas.workflow import StepEventKind, StepName, StepRequest
from medgate_common.storage import LocalStorage, storage_from_uri
from medgate_iqa import tasks
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.core.series import NotAssessableError
from medgate_iqa.settings import IqaSettings


@pytest.fixture
def storage(settings: IqaSettings) -> LocalStorage:
    return storage_from_uri(settings.resolved_storage_uri())


@pytest.fixture
def step(settings: IqaSettings, assessor: QualityAssessor) -> tasks.AssessStep:
    return tasks.AssessStep(settings, assessor)


def request_for(storage: LocalStorage, study: StudyRef) -> StepRequest:
    return step_request(storage, StepName.iqa, study)


def test_the_step_answers_with_the_study_report_and_leaves_it_in_its_folder(
    step: tasks.AssessStep, storage: LocalStorage, ct_series: Series, noisy_ct_series: Series
) -> None:
    request = request_for(storage, store_study(storage, ct_series, noisy_ct_series))
    outcome = step.run(request)
    assert outcome.installed and outcome.model == step.assessor.model.info
    report = StudyQualityReport.model_validate(outcome.result)  # what the gateway's gate reads
    assert report.study_instance_uid == request.study.study_instance_uid
    assert [s.series_instance_uid for s in report.series] == [s.series_instance_uid for s in request.study.series]
    assert report.verdict is Verdict.reject and any("severe noise" in r for r in report.reasons)
    [artifact] = outcome.artifacts
    assert artifact.media_type == "application/json"
    assert artifact.uri == storage.uri_for("jobs/job-1/run1/iqa/d1/quality.json")
    assert json.loads(storage.get_bytes(artifact.uri)) == outcome.result


def test_series_the_gate_cannot_judge_are_named_in_the_result(
    step: tasks.AssessStep, storage: LocalStorage, ct_series: Series
) -> None:
    ultrasound = remake(ct_series[:2], modality("US"))
    study = store_study(storage, ct_series, ultrasound)
    report = StudyQualityReport.model_validate(step.run(request_for(storage, study)).result)
    assert [s.series_instance_uid for s in report.series] == [study.series[0].series_instance_uid]
    assert [(s.series_instance_uid, s.code) for s in report.not_assessable] == [
        (study.series[1].series_instance_uid, "unsupported_modality")
    ]


def test_a_study_with_nothing_to_judge_fails_the_step(
    step: tasks.AssessStep, storage: LocalStorage, ct_series: Series
) -> None:
    report_only = remake(ct_series[:2], modality("SR"))
    with pytest.raises(NotAssessableError) as caught:
        step.run(request_for(storage, store_study(storage, report_only)))
    assert caught.value.code == "not_assessable" and caught.value.details["reason"] == "no_assessable_series"
    assert "not supported" in caught.value.message
    assert not (storage.root / "jobs").exists()  # no report for a study that was not judged


def test_an_instance_outside_the_store_is_refused(
    step: tasks.AssessStep, storage: LocalStorage, ct_series: Series, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.dcm"
    outside.write_bytes(ct_series[0])
    study = store_study(storage, ct_series)
    moved = study.series[0].model_copy(update={"instance_uris": (outside.as_uri(),)})
    with pytest.raises(UnsafePathError):
        step.run(request_for(storage, study.model_copy(update={"series": (moved,)})))


@pytest.fixture
def app(settings: IqaSettings, step: tasks.AssessStep) -> Iterator[Celery]:
    with step_app(settings, tasks.register, step) as celery:
        yield celery


def test_the_celery_task_reports_done_with_the_report_or_failed_not_assessable(
    app: Celery, storage: LocalStorage, ct_series: Series, noisy_ct_series: Series
) -> None:
    task = app.tasks["iqa.assess"]
    assert task.name == StepName.iqa.task and task.acks_late
    judged = request_for(storage, store_study(storage, noisy_ct_series))
    task.apply(args=[judged.model_dump(mode="json")])
    started, done = drain_step_events(app)
    assert (started.kind, done.kind) == (StepEventKind.started, StepEventKind.done)
    assert StudyQualityReport.model_validate(done.result).verdict is Verdict.reject
    assert done.model is not None and done.model.backend == "onnxruntime"
    assert [a.uri for a in done.artifacts] == [judged.output_prefix + "/quality.json"]

    unjudged = request_for(storage, store_study(storage, remake(ct_series[:1], modality("SR"))))
    task.apply(args=[unjudged.model_dump(mode="json")])
    _, failed = drain_step_events(app)
    assert failed.kind is StepEventKind.failed and failed.error_code == "not_assessable"
    assert failed.attempt == 1  # not retried: sending it again would fail the same way
