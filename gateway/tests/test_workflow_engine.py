"""The workflow state machine, driven event by event, on SQLite and PostgreSQL.

The broker is replaced by ``RecordingDispatcher``, a transport double in the manner of
httpx's MockTransport: these tests are about which step is sent when and what the database
records. Real brokers and worker processes carry the same code in tests/e2e.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from gateway_fixtures import modified, sample_path
from pydicom.uid import generate_uid
from sqlalchemy import func, select
from workflow_support import RecordingDispatcher, ingest_study

from medgate_common.errors import ConflictError, NotFoundError
from medgate_common.schemas import JobStatus, StepStatus
from medgate_common.schemas.workflow import Artifact, StepEvent, StepEventKind, StepName, StepRequest
from medgate_gateway.bench.workload import MODEL, quality_of
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import Job, JobStep, Result, Series, Study
from medgate_gateway.settings import GatewaySettings
from medgate_gateway.workflow.assemble import assemble
from medgate_gateway.workflow.views import load_job


def event(request: StepRequest, kind: StepEventKind, **fields: Any) -> StepEvent:
    return request.event(kind, worker="test:1", **fields)


def finish(wf: GatewayContext, request: StepRequest, **fields: Any) -> None:
    assert wf.workflow is not None
    wf.workflow.handle_event(event(request, StepEventKind.started))
    wf.workflow.handle_event(event(request, StepEventKind.done, duration_s=0.01, model=MODEL, **fields))


def start_job(wf: GatewayContext, dispatcher: RecordingDispatcher, description: str = "Axial 3mm") -> str:
    study = ingest_study(wf, description=description)
    assert wf.tracker.mark_complete(study) is not None
    return study


def state(wf: GatewayContext, job_id: str) -> Any:
    with wf.db.read() as session:
        return load_job(session, job_id)


def steps(wf: GatewayContext, job_id: str) -> dict[str, StepStatus]:
    return {s.name: s.status for s in state(wf, job_id).steps}


def test_a_ready_study_gets_one_job_that_sends_the_quality_gate_first(
    wf: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    study = start_job(wf, dispatcher)
    [iqa] = dispatcher.take()
    assert iqa.step is StepName.iqa and iqa.run == 1 and iqa.dispatch == 1
    assert iqa.study.study_instance_uid == study
    [series] = iqa.study.series
    assert series.modality == "CT" and series.instance_count == 2 and len(series.instance_uris) == 2
    assert all(uri.startswith("file://") for uri in series.instance_uris)
    assert iqa.output_prefix.endswith(f"/jobs/{iqa.job_id}/run1/iqa/d1")  # one folder per copy sent
    assert steps(wf, iqa.job_id) == {
        "iqa": StepStatus.queued,
        "segmentation": StepStatus.pending,
        "reasoning": StepStatus.pending,
        "assemble": StepStatus.pending,
    }
    assert wf.workflow is not None
    # the same arrival never makes a second job
    assert wf.workflow.create_job(study, trigger="quiet", times_ready=1) == iqa.job_id
    with pytest.raises(NotFoundError):
        wf.workflow.create_job(generate_uid(), trigger="quiet", times_ready=1)


def test_steps_run_in_order_and_results_are_stored_once(wf: GatewayContext, dispatcher: RecordingDispatcher) -> None:
    start_job(wf, dispatcher)
    [iqa] = dispatcher.take()
    quality = quality_of(iqa).model_dump(mode="json")
    finish(wf, iqa, result=quality)
    [seg] = dispatcher.take()  # reasoning waits: its SR references segmentation's SEG
    assert seg.step is StepName.segmentation and seg.params == {}
    assert state(wf, iqa.job_id).status is JobStatus.running
    finish(wf, seg, result={"lesions": []})
    [rea] = dispatcher.take()
    # handed the gate's verdict and the lesions it reports on
    assert rea.step is StepName.reasoning and rea.params == {
        "upstream": {"iqa": quality, "segmentation": {"lesions": []}}
    }
    assert rea.upstream(StepName.segmentation) == {"lesions": []}
    finish(wf, rea, result={"triage": 0.1})
    [asm] = dispatcher.take()
    assert asm.step is StepName.assemble and asm.study.series == ()
    out = assemble(wf.db, wf.ingestor, asm)
    out_again = assemble(wf.db, wf.ingestor, asm)  # a redelivered assembly
    assert out == out_again
    finish(wf, asm, result=out.result)
    final = state(wf, iqa.job_id)
    assert final.status is JobStatus.review_ready and final.finished_at is not None
    assert all(s.status is StepStatus.done and s.model == MODEL for s in final.steps if s.name != "assemble")
    with wf.db.read() as session:
        rows = session.execute(select(Result.kind, Result.model_name).where(Result.job_fk == iqa.job_id)).all()
    assert sorted(rows) == [("iqa", "workload"), ("reasoning", "workload"), ("segmentation", "workload")]


def test_a_rejected_study_skips_the_models_and_ends_quality_rejected(
    wf: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    start_job(wf, dispatcher, description="REJECT me")
    [iqa] = dispatcher.take()
    report = quality_of(iqa)
    assert report.verdict == "reject"
    finish(wf, iqa, result=report.model_dump(mode="json"))
    [asm] = dispatcher.take()
    assert asm.step is StepName.assemble
    assert steps(wf, iqa.job_id)["segmentation"] is StepStatus.skipped
    finish(wf, asm, result=assemble(wf.db, wf.ingestor, asm).result)
    final = state(wf, iqa.job_id)
    assert final.status is JobStatus.quality_rejected
    assert "marked REJECT" in final.error
    with wf.db.read() as session:
        assert session.scalars(select(Result.kind).where(Result.job_fk == iqa.job_id)).all() == ["iqa"]


def test_an_advisory_gate_lets_a_rejected_study_through(
    settings: GatewaySettings, dispatcher: RecordingDispatcher, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - {name: ct, match: {modality: [CT]}, steps: [iqa, segmentation], quality_gate: advisory}\n"
    )
    ctx = GatewayContext.build(
        settings.model_copy(update={"workflow": True, "routing_rules": rules}), dispatcher=dispatcher
    )
    try:
        start_job(ctx, dispatcher, description="REJECT me")
        [iqa] = dispatcher.take()
        finish(ctx, iqa, result=quality_of(iqa).model_dump(mode="json"))
        assert [r.step for r in dispatcher.take()] == [StepName.segmentation]  # reasoning is not routed
        assert steps(ctx, iqa.job_id)["reasoning"] is StepStatus.skipped
    finally:
        ctx.close()


def test_a_redelivered_final_event_is_counted_not_applied(wf: GatewayContext, dispatcher: RecordingDispatcher) -> None:
    start_job(wf, dispatcher)
    [iqa] = dispatcher.take()
    good = quality_of(iqa).model_dump(mode="json")
    finish(wf, iqa, result=good)
    assert [r.step for r in dispatcher.take()] == [StepName.segmentation]
    assert wf.workflow is not None
    # the worker died after reporting but before acknowledging: the task ran again
    wf.workflow.handle_event(event(iqa, StepEventKind.started))
    wf.workflow.handle_event(event(iqa, StepEventKind.failed, error_code="late"))
    assert dispatcher.take() == []
    [step] = [s for s in state(wf, iqa.job_id).steps if s.name == "iqa"]
    assert step.status is StepStatus.done and step.duplicates == 1 and step.result == good


def test_a_permanent_failure_fails_the_job_and_retry_reruns_only_what_failed(
    wf: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    assert wf.workflow is not None
    start_job(wf, dispatcher)
    [iqa] = dispatcher.take()
    finish(wf, iqa, result=quality_of(iqa).model_dump(mode="json"))
    [seg] = dispatcher.take()
    assert seg.step is StepName.segmentation
    wf.workflow.handle_event(event(seg, StepEventKind.failed, error_code="model_input_mismatch", error_detail="bad"))
    failed = state(wf, iqa.job_id)
    assert failed.status is JobStatus.failed and failed.error_code == "model_input_mismatch"
    assert dispatcher.take() == []  # reasoning never runs on a failed segmentation
    assert steps(wf, iqa.job_id)["reasoning"] is StepStatus.pending
    assert wf.workflow.retry(iqa.job_id, actor="tech") == 1
    with pytest.raises(ConflictError):  # only a failed job can be retried
        wf.workflow.retry(iqa.job_id)
    [again] = dispatcher.take()
    assert again.step is StepName.segmentation and again.run == 2 and again.dispatch == 1
    # an event from the first run no longer counts
    wf.workflow.handle_event(event(seg, StepEventKind.done, result={"stale": True}))
    assert steps(wf, iqa.job_id)["segmentation"] is StepStatus.queued
    finish(wf, again, result={"lesions": []})
    [rea] = dispatcher.take()
    assert rea.step is StepName.reasoning and rea.upstream(StepName.segmentation) == {"lesions": []}
    # reasoning fails in run 2; a retry re-runs it alone, still handed segmentation's result
    wf.workflow.handle_event(event(rea, StepEventKind.failed, error_code="boom", error_detail="bad"))
    assert wf.workflow.retry(iqa.job_id) == 1
    [rea] = dispatcher.take()
    assert rea.step is StepName.reasoning and rea.run == 3 and rea.upstream(StepName.segmentation) == {"lesions": []}
    finish(wf, rea, result={"triage": 0.5})
    [asm] = dispatcher.take()
    finish(wf, asm, result=assemble(wf.db, wf.ingestor, asm).result)
    final = state(wf, iqa.job_id)
    assert final.status is JobStatus.review_ready and final.run == 3 and final.error_code is None
    with pytest.raises(NotFoundError):
        wf.workflow.retry("no-such-job")


def test_steps_whose_service_is_not_installed_are_recorded_as_such(
    wf: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    assert wf.workflow is not None
    start_job(wf, dispatcher)
    pending = dispatcher.take()
    while pending:
        for request in pending:
            if request.step is StepName.assemble:
                finish(wf, request, result=assemble(wf.db, wf.ingestor, request).result)
            else:
                wf.workflow.handle_event(event(request, StepEventKind.not_installed, error_detail="not here"))
        pending = dispatcher.take()
    final = state(wf, final_job_id(wf))
    assert final.status is JobStatus.review_ready
    assert [s.status for s in final.steps] == [StepStatus.not_installed] * 3 + [StepStatus.done]
    assert all(s.result is None for s in final.steps[:3])


def final_job_id(wf: GatewayContext) -> str:
    with wf.db.read() as session:
        return str(session.scalar(select(Job.id)))


def test_derived_dicom_joins_the_study_without_reopening_it(
    wf: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    study = start_job(wf, dispatcher)
    [iqa] = dispatcher.take()
    finish(wf, iqa, result=quality_of(iqa).model_dump(mode="json"))
    [seg] = dispatcher.take()
    derived = modified(
        sample_path("explicit"),
        StudyInstanceUID=study,
        SeriesInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
        SeriesDescription="MedGate derived",
    )
    uri = wf.storage.put_bytes(f"jobs/{seg.job_id}/run1/segmentation/derived.dcm", derived)
    artifact = Artifact(uri=uri, media_type="application/dicom", description="stand-in for a SEG")
    finish(wf, seg, result={"lesions": []}, artifacts=(artifact,))
    [rea] = dispatcher.take()
    finish(wf, rea, result={})
    [asm] = dispatcher.take()
    first = assemble(wf.db, wf.ingestor, asm)
    second = assemble(wf.db, wf.ingestor, asm)
    assert first.result is not None and second.result is not None
    [item] = first.result["derived_instances"]
    assert item["step"] == "segmentation" and item == second.result["derived_instances"][0]
    with wf.db.read() as session:
        row = session.execute(select(Study.state, Study.num_instances, Study.num_series)).one()
        results = session.scalar(select(func.count()).select_from(Result))
    assert tuple(row) == ("ready", 3, 2)  # joined the study, did not re-open it
    assert results == 3  # one per finished step, however often assembly runs
    assert wf.tracker.sweep(dt.datetime.now(dt.UTC) + dt.timedelta(days=1)) == []


def test_the_watchdog_recovers_what_fell_between_database_and_broker(
    wf: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    assert wf.watchdog is not None and wf.workflow is not None
    # 1. claimed ready, but the gateway died before the job was written
    old = ingest_study(wf)  # ready two days ago, before the workflow was switched on: left alone
    with wf.db.write() as session:
        two_days = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        session.execute(Study.__table__.update().values(state="ready", ready_count=1, ready_at=two_days))
    study = ingest_study(wf)
    with wf.db.write() as session:
        session.execute(
            Study.__table__.update()
            .where(Study.study_uid == study)
            .values(state="ready", ready_count=1, ready_at=dt.datetime.now(dt.UTC))
        )
    report = wf.watchdog.tick()
    assert report.jobs_recovered == 1
    assert wf.watchdog.tick().jobs_recovered == 0
    assert old != study
    [iqa] = dispatcher.take()
    assert iqa.study.study_instance_uid == study
    assert state(wf, iqa.job_id).trigger == "recovered"
    # 2. the broker refused a send: the step goes back to pending and the next tick sends it
    finish(wf, iqa, result=quality_of(iqa).model_dump(mode="json"))
    assert len(dispatcher.take()) == 1  # segmentation; reasoning waits for it
    # 3. a step queued for longer than any backlog explains is sent again
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wf.settings.step_queued_timeout_seconds + 5)
    report = wf.watchdog.tick(later)
    assert report.redispatched == 1
    again = dispatcher.take()
    assert {r.dispatch for r in again} == {2}
    # 4. a step running on a worker that vanished is sent again, then given up on
    seg = next(r for r in again if r.step is StepName.segmentation)
    wf.workflow.handle_event(event(seg, StepEventKind.started))
    runs_out = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wf.settings.step_running_timeout_seconds + 5)
    for expected in range(3, wf.settings.step_max_dispatches + 1):
        assert wf.watchdog.tick(runs_out).redispatched >= 1
        latest = [r for r in dispatcher.take() if r.step is StepName.segmentation]
        assert latest[0].dispatch == expected
        wf.workflow.handle_event(event(latest[0], StepEventKind.started))
    assert wf.watchdog.tick(runs_out).failed == 1
    final = state(wf, iqa.job_id)
    assert final.status is JobStatus.failed and final.error_code == "step_lost"


def test_a_failed_send_is_retried_by_the_next_tick(wf: GatewayContext, dispatcher: RecordingDispatcher) -> None:
    assert wf.watchdog is not None
    dispatcher.failures = 1
    study = start_job(wf, dispatcher)
    assert dispatcher.take() == []
    with wf.db.read() as session:
        status = session.scalar(select(JobStep.status).where(JobStep.step == "iqa"))
    assert status == StepStatus.pending
    assert wf.watchdog.tick().pending_sent == 1
    [iqa] = dispatcher.take()
    assert iqa.study.study_instance_uid == study


def test_a_study_of_derived_objects_only_runs_no_model(wf: GatewayContext, dispatcher: RecordingDispatcher) -> None:
    study = ingest_study(wf)
    with wf.db.write() as session:
        session.execute(Series.__table__.update().values(modality="SEG"))
    assert wf.tracker.mark_complete(study) is not None
    [asm] = dispatcher.take()
    assert asm.step is StepName.assemble
    assert set(steps(wf, asm.job_id).values()) == {StepStatus.skipped, StepStatus.queued}


def test_reprocess_starts_a_new_job_for_a_complete_study(wf: GatewayContext, dispatcher: RecordingDispatcher) -> None:
    assert wf.workflow is not None
    study = start_job(wf, dispatcher)
    [first] = dispatcher.take()
    second = wf.workflow.reprocess(study, actor="chief")
    assert second != first.job_id
    assert state(wf, second).trigger == "manual:chief"
    [iqa] = dispatcher.take()
    assert iqa.job_id == second
    with pytest.raises(NotFoundError):
        wf.workflow.reprocess(generate_uid())


def test_a_malformed_event_or_result_fails_the_step_instead_of_vanishing(
    wf: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    assert wf.workflow is not None
    start_job(wf, dispatcher)
    [iqa] = dispatcher.take()
    # the quality gate answers something that is not a StudyQualityReport
    finish(wf, iqa, result={"verdict": "splendid"})
    first = state(wf, iqa.job_id)
    assert first.status is JobStatus.failed and first.error_code == "bad_result"
    assert dispatcher.take() == []
    # a second job: an event from a service speaking another version of the contract
    study = ingest_study(wf)
    wf.tracker.mark_complete(study)
    [iqa2] = dispatcher.take()
    payload = event(iqa2, StepEventKind.done).model_dump(mode="json") | {"confidence_interval": [0, 1]}
    wf.workflow.reject_event(payload, "extra field")
    second = state(wf, iqa2.job_id)
    assert second.status is JobStatus.failed and second.error_code == "bad_event"


def test_a_long_backlog_is_not_mistaken_for_lost_messages(wf: GatewayContext, dispatcher: RecordingDispatcher) -> None:
    """The queued timeout re-sends only while the step's queue is empty (embedded broker here)."""
    from medgate_common.tasking import make_celery

    assert wf.watchdog is not None
    start_job(wf, dispatcher)
    [iqa] = dispatcher.take()
    celery = make_celery(wf.settings)
    celery.send_task("iqa.assess", args=[iqa.model_dump(mode="json")], queue="iqa")  # the backlog
    celery.close()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wf.settings.step_queued_timeout_seconds + 5)
    assert wf.watchdog.probe.queue_length("iqa") == 1
    assert wf.watchdog.tick(later).redispatched == 0
    assert dispatcher.take() == []
