"""The jobs API over HTTP: list, detail, retry, reprocess and the server-sent-events stream.

The broker is the recording double from workflow_support (these tests are about the HTTP
surface); tests/e2e runs the same routes with real workers.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from gateway_fixtures import Credentials
from workflow_support import RecordingDispatcher, ingest_study

from medgate_common.schemas.workflow import StepEventKind, StepName, StepRequest
from medgate_gateway.bench.workload import quality_of
from medgate_gateway.context import GatewayContext
from medgate_gateway.workflow.assemble import assemble


@pytest.fixture
def context(wf: GatewayContext) -> GatewayContext:
    """The routes under test need the workflow engine (the shared fixture turns it off)."""
    return wf


def apply(context: GatewayContext, request: StepRequest, kind: StepEventKind, **fields: Any) -> None:
    assert context.workflow is not None
    context.workflow.handle_event(request.event(kind, **fields))


def new_job(context: GatewayContext, dispatcher: RecordingDispatcher) -> tuple[str, StepRequest]:
    study = ingest_study(context)
    context.tracker.mark_complete(study)
    [iqa] = dispatcher.take()
    return study, iqa


def test_jobs_are_listed_and_read_with_their_steps(
    live_server: str, credentials: Credentials, context: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    study, iqa = new_job(context, dispatcher)
    apply(context, iqa, StepEventKind.started, worker="host:42")
    listed = httpx.get(live_server + "/api/v1/jobs", headers=credentials.radiologist)
    assert listed.status_code == 200
    [job] = listed.json()
    assert job["job_id"] == iqa.job_id and job["study_instance_uid"] == study and job["status"] == "running"
    assert httpx.get(live_server + "/api/v1/jobs?state=failed", headers=credentials.radiologist).json() == []
    assert len(httpx.get(live_server + f"/api/v1/jobs?study_uid={study}", headers=credentials.radiologist).json()) == 1
    detail = httpx.get(live_server + f"/api/v1/jobs/{iqa.job_id}", headers=credentials.radiologist).json()
    steps = {s["name"]: s for s in detail["steps"]}
    assert steps["iqa"]["status"] == "running" and steps["iqa"]["worker"] == "host:42"
    assert steps["iqa"]["dispatches"] == 1 and steps["iqa"]["started_at"] is not None
    assert steps["segmentation"]["status"] == "pending" and steps["segmentation"]["series"] == list(
        iqa.study.series[0].series_instance_uid.split()
    )
    missing = httpx.get(live_server + "/api/v1/jobs/nope", headers=credentials.radiologist)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert httpx.get(live_server + "/api/v1/jobs").status_code == 401
    bad = httpx.get(live_server + "/api/v1/jobs?state=bogus", headers=credentials.radiologist)
    assert bad.status_code == 422


def test_retry_needs_the_jobs_permission_and_a_failed_job(
    live_server: str, credentials: Credentials, context: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    _, iqa = new_job(context, dispatcher)
    url = live_server + f"/api/v1/jobs/{iqa.job_id}/retry"
    assert httpx.post(url, headers=credentials.technologist).status_code == 409  # not failed
    apply(context, iqa, StepEventKind.failed, error_code="invalid_dicom", error_detail="no pixels")
    failed = httpx.get(live_server + f"/api/v1/jobs/{iqa.job_id}", headers=credentials.technologist).json()
    assert failed["status"] == "failed" and failed["error_code"] == "invalid_dicom"
    assert httpx.post(url, headers=credentials.radiologist).status_code == 403
    retried = httpx.post(url, headers=credentials.technologist)
    assert retried.status_code == 202
    body = retried.json()
    assert body["status"] == "queued" and body["run"] == 2 and body["error_code"] is None
    [again] = dispatcher.take()
    assert again.step.value == "iqa" and again.run == 2
    audit = httpx.get(live_server + "/api/v1/audit?action=job.retry", headers=credentials.admin).json()
    assert any(row["resource_uid"] == iqa.job_id for row in audit)


def test_a_complete_study_can_be_run_again(
    live_server: str, credentials: Credentials, context: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    study, first = new_job(context, dispatcher)
    resp = httpx.post(live_server + f"/api/v1/studies/{study}/jobs", headers=credentials.technologist)
    assert resp.status_code == 202
    job_id = resp.json()["job_id"]
    assert job_id != first.job_id and [r.job_id for r in dispatcher.take()] == [job_id]
    assert httpx.post(live_server + f"/api/v1/studies/{study}/jobs", headers=credentials.radiologist).status_code == 403
    unknown = httpx.post(live_server + "/api/v1/studies/1.2.3/jobs", headers=credentials.technologist)
    assert unknown.status_code == 404


def read_events(url: str, headers: dict[str, str], out: list[dict[str, object]], limit: int = 0) -> None:
    with httpx.stream("GET", url, headers=headers, timeout=30) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        event: dict[str, object] = {}
        for line in resp.iter_lines():
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif not line and "data" in event:
                out.append(event)
                event = {}
                if limit and len(out) >= limit:
                    return


def test_the_event_stream_follows_a_job_to_its_end_and_resumes(
    live_server: str, credentials: Credentials, context: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    _, iqa = new_job(context, dispatcher)
    url = live_server + f"/api/v1/jobs/events?job_id={iqa.job_id}&until_done=true"
    seen: list[dict[str, object]] = []
    reader = threading.Thread(target=read_events, args=(url, credentials.radiologist, seen))
    reader.start()
    apply(context, iqa, StepEventKind.started)
    apply(context, iqa, StepEventKind.done, result=quality_of(iqa).model_dump(mode="json"))
    pending = dispatcher.take()
    while pending and pending[0].step is not StepName.assemble:  # segmentation, then reasoning
        for request in pending:
            apply(context, request, StepEventKind.not_installed, error_detail="not here")
        pending = dispatcher.take()
    [asm] = pending
    apply(context, asm, StepEventKind.done, result=assemble(context.db, context.ingestor, asm).result)
    reader.join(timeout=30)
    assert not reader.is_alive(), "the stream did not close after the job ended"
    statuses = [(e["data"]["step"], e["data"]["status"]) for e in seen]  # type: ignore[index]
    assert statuses[0] == ("", "queued") and statuses[-1] == ("", "review_ready")
    assert ("iqa", "done") in statuses and ("segmentation", "not_installed") in statuses
    ids = [int(e["id"]) for e in seen]  # type: ignore[call-overload]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # a client that reconnects with Last-Event-ID gets only what came after
    resumed: list[dict[str, object]] = []
    headers = {**credentials.radiologist, "Last-Event-ID": str(ids[-3])}
    read_events(url, headers, resumed)
    assert [int(e["id"]) for e in resumed] == ids[-2:]  # type: ignore[call-overload]


def test_the_unfiltered_stream_is_live_and_an_unknown_job_is_404(
    live_server: str, credentials: Credentials, context: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    _, iqa = new_job(context, dispatcher)  # its history exists before anyone listens
    missing = httpx.get(live_server + "/api/v1/jobs/events?job_id=nope", headers=credentials.radiologist)
    assert missing.status_code == 404
    seen: list[dict[str, object]] = []
    reader = threading.Thread(
        target=read_events, args=(live_server + "/api/v1/jobs/events", credentials.radiologist, seen, 1)
    )
    reader.start()
    import time

    time.sleep(1.0)  # the stream has started and found where "now" is
    apply(context, iqa, StepEventKind.started, worker="w:1")
    reader.join(timeout=30)
    assert not reader.is_alive()
    [first] = seen
    assert first["data"]["step"] == "iqa" and first["data"]["status"] == "running"  # type: ignore[index]
