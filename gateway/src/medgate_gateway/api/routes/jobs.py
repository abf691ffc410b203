"""Workflow jobs: list, detail with per-step state, retry, and a server-sent-events stream.

The stream reads the append-only ``job_events`` table, so it works the same whichever
process moved the job, on SQLite and PostgreSQL, and a client that reconnects with
``Last-Event-ID`` misses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from medgate_common.errors import ConfigError, NotFoundError
from medgate_common.schemas import JobState, JobStatus, JobUpdate
from medgate_gateway.api.audit import audit
from medgate_gateway.api.deps import ContextDep, JobsManagerDep, ReaderDep
from medgate_gateway.context import GatewayContext
from medgate_gateway.db.orm import Job, JobEvent
from medgate_gateway.workflow.views import JobOrder, list_jobs, load_job, updates_after

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

STATES = "^(" + "|".join(s.value for s in JobStatus) + ")$"
POLL_SECONDS = 0.25
REREAD_WINDOW = 100
KEEPALIVE_SECONDS = 15.0


@router.get("", response_model=list[JobState])
async def get_jobs(
    context: ContextDep,
    principal: ReaderDep,
    state: str | None = Query(None, pattern=STATES),
    study_uid: str | None = Query(None, max_length=64),
    sort: Annotated[
        JobOrder, Query(description="created: newest first; triage: highest triage score first, unscored last")
    ] = JobOrder.created,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[JobState]:
    def query() -> list[JobState]:
        with context.db.read() as session:
            return list_jobs(session, state=state, study_uid=study_uid, sort=sort, limit=limit, offset=offset)

    jobs = await run_in_threadpool(query)
    await audit(context, principal, "job.list", resource_type="job", detail={"count": len(jobs)})
    return jobs


@router.get("/events")
async def job_events(
    request: Request,
    context: ContextDep,
    principal: ReaderDep,
    job_id: str | None = Query(None, max_length=36),
    after: int = Query(0, ge=0, description="Send events after this id (or use Last-Event-ID)"),
    until_done: bool = Query(False, description="With job_id: close once the job reaches a final state"),
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """``text/event-stream`` of job transitions; each event's data is a JobUpdate.

    With ``job_id`` the stream starts at the job's first event; without it, at the next
    event of any job (live), unless ``after`` or ``Last-Event-ID`` says where to resume.
    """
    resume = int(last_event_id) if last_event_id and last_event_id.isdigit() else after

    def start_at() -> int:
        with context.db.read() as session:
            if job_id is not None and session.get(Job, job_id) is None:
                raise NotFoundError("no such job")
            if resume or job_id is not None:
                return resume
            return int(session.scalar(select(func.max(JobEvent.id))) or 0)

    start = await run_in_threadpool(start_at)
    await audit(context, principal, "job.events", resource_type="job", resource_uid=job_id or "")
    return StreamingResponse(
        _stream(request, context, start, job_id, until_done and job_id is not None),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    request: Request, context: GatewayContext, after: int, job_id: str | None, until_done: bool
) -> AsyncIterator[str]:
    final = {s.value for s in JobStatus if s.terminal}
    idle = 0.0
    # On PostgreSQL ids are handed out in insert order but become visible in commit order:
    # id 101 may be readable before id 100. So each poll re-reads a window below the highest
    # id sent and sends what it has not sent yet.
    floor, cursor, sent = after, after, set[int]()
    yield "retry: 2000\n\n"
    while not await request.is_disconnected():
        updates = await run_in_threadpool(_fetch, context, max(floor, cursor - REREAD_WINDOW), job_id)
        fresh = [u for u in updates if u.event_id not in sent]
        for update in fresh:
            sent.add(update.event_id)
            cursor = max(cursor, update.event_id)
            yield f"id: {update.event_id}\nevent: job\ndata: {update.model_dump_json()}\n\n"
            if until_done and not update.step and update.status in final:
                return
        sent = {i for i in sent if i > cursor - REREAD_WINDOW}
        if fresh:
            idle = 0.0
            continue
        await asyncio.sleep(POLL_SECONDS)
        idle += POLL_SECONDS
        if idle >= KEEPALIVE_SECONDS:
            idle = 0.0
            yield ": keep-alive\n\n"


def _fetch(context: GatewayContext, after: int, job_id: str | None) -> list[JobUpdate]:
    with context.db.read() as session:
        return updates_after(session, after, job_id=job_id)


@router.get("/{job_id}", response_model=JobState)
async def get_job(job_id: str, context: ContextDep, principal: ReaderDep) -> JobState:
    def query() -> JobState | None:
        with context.db.read() as session:
            return load_job(session, job_id)

    found = await run_in_threadpool(query)
    if found is None:
        raise NotFoundError("no such job")
    await audit(context, principal, "job.read", resource_type="job", resource_uid=job_id)
    return found


@router.post("/{job_id}/retry", response_model=JobState, status_code=202)
async def retry_job(job_id: str, context: ContextDep, principal: JobsManagerDep) -> JobState:
    """Run a failed job again; steps that already finished keep their results."""
    engine = context.workflow
    if engine is None:
        raise ConfigError("the workflow is switched off on this gateway (MEDGATE_GW_WORKFLOW=false)")

    def run() -> JobState | None:
        engine.retry(job_id, actor=principal.username)
        with context.db.read() as session:
            return load_job(session, job_id)

    state = await run_in_threadpool(run)
    await audit(context, principal, "job.retry", resource_type="job", resource_uid=job_id)
    assert state is not None
    return state
