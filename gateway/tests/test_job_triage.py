"""The reasoning step's triage score on the job, and the worklist sorted by it, on SQLite and
PostgreSQL.

Steps are answered by hand through the engine (the broker is ``RecordingDispatcher``); the
reasoning results are real :class:`StudyReasoning` objects, built here with known scores.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gateway_fixtures import Credentials
from pydicom.uid import generate_uid
from workflow_support import RecordingDispatcher, ingest_study

from medgate_common.errors import InputError
from medgate_common.schemas import JobStatus, StepStatus
from medgate_common.schemas.quality import NotAssessable
from medgate_common.schemas.reasoning import ReasoningResult, StudyReasoning, TriageScore
from medgate_common.schemas.workflow import StepEventKind, StepName, StepRequest
from medgate_gateway.bench.workload import MODEL, quality_of
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import Job
from medgate_gateway.settings import GatewaySettings
from medgate_gateway.workflow.views import list_jobs, load_job


@pytest.fixture
def context(wf: GatewayContext) -> GatewayContext:
    """The jobs API needs the workflow engine (the shared fixture turns it off)."""
    return wf


def series_result(study_uid: str, score: float | None, label: str = "present") -> ReasoningResult:
    triage = TriageScore(score=score, label=label, model=MODEL) if score is not None else None
    return ReasoningResult(
        study_instance_uid=study_uid,
        series_instance_uid=generate_uid(),
        triage=triage,
        triage_note="" if triage else "no triage model is installed",
        model=MODEL,
    )


def apply(context: GatewayContext, request: StepRequest, kind: StepEventKind, **fields: Any) -> None:
    assert context.workflow is not None
    context.workflow.handle_event(request.event(kind, worker="test:1", **fields))


def finish(context: GatewayContext, request: StepRequest, **fields: Any) -> None:
    apply(context, request, StepEventKind.started)
    apply(context, request, StepEventKind.done, model=MODEL, **fields)


def to_reasoning(context: GatewayContext, dispatcher: RecordingDispatcher) -> StepRequest:
    """A new study's job, its gate and segmentation done: the reasoning request it sent."""
    study = ingest_study(context)
    assert context.tracker.mark_complete(study) is not None
    [iqa] = dispatcher.take()
    finish(context, iqa, result=quality_of(iqa).model_dump(mode="json"))
    [seg] = dispatcher.take()
    finish(context, seg, result={"lesions": []})
    [reasoning] = dispatcher.take()
    assert reasoning.step is StepName.reasoning
    return reasoning


def scored_job(context: GatewayContext, dispatcher: RecordingDispatcher, *scores: float | None) -> str:
    """A job whose reasoning step is done with one series per score (None: not scored)."""
    request = to_reasoning(context, dispatcher)
    uid = request.study.study_instance_uid
    study = StudyReasoning(study_instance_uid=uid, series=tuple(series_result(uid, s) for s in scores))
    finish(context, request, result=study.model_dump(mode="json"))
    dispatcher.take()  # the assembly
    return request.job_id


def triage_of(context: GatewayContext, job_id: str) -> tuple[float | None, str | None]:
    with context.db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.triage_score, job.triage_label


def test_the_reasoning_result_puts_the_highest_series_score_on_the_job(
    context: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    request = to_reasoning(context, dispatcher)
    uid = request.study.study_instance_uid
    study = StudyReasoning(
        study_instance_uid=uid,
        series=(
            series_result(uid, 0.31, "absent"),
            series_result(uid, 0.87, "present"),
            series_result(uid, None),
        ),
    )
    assert triage_of(context, request.job_id) == (None, None)  # not scored before reasoning ends
    finish(context, request, result=study.model_dump(mode="json"))
    assert triage_of(context, request.job_id) == (0.87, "present")
    with context.db.read() as session:
        shown = load_job(session, request.job_id)
    assert shown is not None and shown.triage_score == 0.87 and shown.triage_label == "present"
    # the step's result is kept whole beside it
    [step] = [s for s in shown.steps if s.name == "reasoning"]
    assert step.status is StepStatus.done and step.result == study.model_dump(mode="json")


def test_a_study_without_a_triage_score_stays_null_and_goes_on(
    context: GatewayContext, dispatcher: RecordingDispatcher
) -> None:
    # every series refused: the gate rejected one, segmentation gave nothing for the other
    request = to_reasoning(context, dispatcher)
    uid = request.study.study_instance_uid
    refused = tuple(
        NotAssessable(series_instance_uid=generate_uid(), modality="CT", code=code, reason="not reported on")
        for code in ("quality_rejected", "missing_segmentation")
    )
    finish(
        context,
        request,
        result=StudyReasoning(study_instance_uid=uid, series=(), not_reasoned=refused).model_dump(mode="json"),
    )
    [assemble] = dispatcher.take()
    assert assemble.step is StepName.assemble
    assert triage_of(context, request.job_id) == (None, None)
    # no triage model: series reported on with a note instead of a score
    unscored = scored_job(context, dispatcher, None, None)
    assert triage_of(context, unscored) == (None, None)
    # no reasoning service at all
    request = to_reasoning(context, dispatcher)
    apply(context, request, StepEventKind.not_installed, error_detail="no VQA model")
    [assemble] = dispatcher.take()
    assert triage_of(context, request.job_id) == (None, None)
    # a result of another shape: recorded as sent, no score, the job is not failed for it
    request = to_reasoning(context, dispatcher)
    finish(context, request, result={"triage": 0.9})
    [assemble] = dispatcher.take()
    assert assemble.step is StepName.assemble
    assert triage_of(context, request.job_id) == (None, None)
    with context.db.read() as session:
        job = load_job(session, request.job_id)
    assert job is not None and job.status is JobStatus.running
    assert [s.result for s in job.steps if s.name == "reasoning"] == [{"triage": 0.9}]


def test_a_rejected_study_is_never_scored(context: GatewayContext, dispatcher: RecordingDispatcher) -> None:
    study = ingest_study(context, description="REJECT me")
    context.tracker.mark_complete(study)
    [iqa] = dispatcher.take()
    finish(context, iqa, result=quality_of(iqa).model_dump(mode="json"))
    [assemble] = dispatcher.take()  # segmentation and reasoning were skipped
    assert assemble.step is StepName.assemble
    assert triage_of(context, iqa.job_id) == (None, None)


@pytest.fixture
def worklist(context: GatewayContext, dispatcher: RecordingDispatcher) -> dict[str, str]:
    """Four jobs, oldest first: scored 0.2, not scored, scored 0.9, still at the gate."""
    jobs = {
        "low": scored_job(context, dispatcher, 0.2),
        "unscored": scored_job(context, dispatcher, None),
        "high": scored_job(context, dispatcher, 0.1, 0.9),
    }
    study = ingest_study(context)
    context.tracker.mark_complete(study)
    [iqa] = dispatcher.take()
    jobs["waiting"] = iqa.job_id
    return jobs


def test_list_jobs_sorts_by_triage_with_unscored_jobs_last(context: GatewayContext, worklist: dict[str, str]) -> None:
    names = {job_id: name for name, job_id in worklist.items()}
    with context.db.read() as session:
        newest = [names[j.job_id] for j in list_jobs(session)]
        by_triage = [names[j.job_id] for j in list_jobs(session, sort="triage")]
        with pytest.raises(InputError, match="unknown sort 'urgency'"):
            list_jobs(session, sort="urgency")
    assert newest == ["waiting", "high", "unscored", "low"]
    assert by_triage == ["high", "low", "waiting", "unscored"]  # the unscored: newest first


def test_the_jobs_api_sorts_by_triage_and_refuses_an_unknown_order(
    live_server: str, credentials: Credentials, worklist: dict[str, str]
) -> None:
    url = live_server + "/api/v1/jobs"
    names = {job_id: name for name, job_id in worklist.items()}

    def listed(query: str) -> list[tuple[str, float | None]]:
        resp = httpx.get(url + query, headers=credentials.radiologist)
        assert resp.status_code == 200, resp.text
        return [(names[j["job_id"]], j["triage_score"]) for j in resp.json()]

    assert listed("?sort=triage") == [("high", 0.9), ("low", 0.2), ("waiting", None), ("unscored", None)]
    assert listed("") == listed("?sort=created") == [("waiting", None), ("high", 0.9), ("unscored", None), ("low", 0.2)]
    assert listed("?sort=triage&limit=2&offset=1") == [("low", 0.2), ("waiting", None)]
    assert listed("?sort=triage&state=running&limit=1") == [("high", 0.9)]
    bad = httpx.get(url + "?sort=urgency", headers=credentials.radiologist)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    problem = bad.json()
    assert problem["code"] == "invalid_input"
    [error] = problem["details"]["errors"]
    assert error["loc"] == ["query", "sort"] and "triage" in error["msg"]


def test_the_jobs_command_lists_the_worklist_by_triage(
    context: GatewayContext, worklist: dict[str, str], settings: GatewaySettings
) -> None:
    from typer.testing import CliRunner

    from medgate_common.cli import build_app

    env = {
        "MEDGATE_HOME": str(settings.home),
        "MEDGATE_GW_DATABASE_URL": settings.database_url,
        "MEDGATE_GW_TOKEN_SECRET": settings.token_secret,
    }
    runner = CliRunner()
    names = {job_id: name for name, job_id in worklist.items()}
    result = runner.invoke(build_app(), ["workflow", "jobs", "--sort", "triage"], env=env)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert [names[line.split()[0]] for line in lines] == ["high", "low", "waiting", "unscored"]
    assert "triage 0.90" in lines[0] and "triage 0.20" in lines[1] and "triage -" in lines[3]
    bad = runner.invoke(build_app(), ["workflow", "jobs", "--sort", "urgency"], env=env)
    assert bad.exit_code == 2 and "unknown sort 'urgency'" in bad.output
