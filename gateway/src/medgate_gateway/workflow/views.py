"""Read models of jobs: what the API, the event stream and the demo show."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from medgate_common.errors import InputError
from medgate_common.schemas import JobState, JobStatus, JobUpdate, ModelInfo, StepState, StepStatus
from medgate_gateway.db.orm import Job, JobEvent, Study


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def job_state(session: Session, job: Job) -> JobState:
    study_uid = session.scalar(select(Study.study_uid).where(Study.id == job.study_fk))
    steps = tuple(
        StepState(
            name=s.step,
            status=StepStatus(s.status),
            series=tuple(s.series),
            dispatched_at=utc(s.dispatched_at),
            started_at=utc(s.started_at),
            finished_at=utc(s.finished_at),
            duration_s=s.duration_s,
            worker=s.worker,
            dispatches=s.dispatches,
            attempts=s.attempts,
            duplicates=s.duplicates,
            error_code=s.error_code or None,
            error_detail=s.error_detail,
            model=ModelInfo.model_validate(s.model) if s.model else None,
            result=s.result,
        )
        for s in job.steps
    )
    created = utc(job.created_at)
    updated = utc(job.updated_at)
    assert created is not None
    assert updated is not None
    assert study_uid is not None
    return JobState(
        job_id=job.id,
        study_instance_uid=study_uid,
        status=JobStatus(job.state),
        run=job.run,
        trigger=job.trigger,
        steps=steps,
        error_code=job.error_code or None,
        error=job.error,
        triage_score=job.triage_score,
        triage_label=job.triage_label,
        created_at=created,
        updated_at=updated,
        finished_at=utc(job.finished_at),
    )


def load_job(session: Session, job_id: str) -> JobState | None:
    job = session.get(Job, job_id)
    return job_state(session, job) if job is not None else None


class JobOrder(StrEnum):
    """How the job list is sorted; newest first breaks every tie."""

    created = "created"  # newest first
    triage = "triage"  # highest triage score first, jobs not scored (yet) last


def list_jobs(
    session: Session,
    *,
    state: str | None = None,
    study_uid: str | None = None,
    sort: JobOrder | str = JobOrder.created,
    limit: int = 100,
    offset: int = 0,
) -> list[JobState]:
    """The jobs in ``sort`` order; an unknown ``sort`` raises ``InputError``."""
    try:
        order = JobOrder(sort)
    except ValueError:
        raise InputError(f"unknown sort {sort!r}; use one of: {', '.join(JobOrder)}") from None
    newest = (Job.created_at.desc(), Job.id)
    keys = (Job.triage_score.desc().nulls_last(), *newest) if order is JobOrder.triage else newest
    stmt = select(Job).order_by(*keys).limit(limit).offset(offset)
    if state:
        stmt = stmt.where(Job.state == state)
    if study_uid:
        stmt = stmt.join(Study).where(Study.study_uid == study_uid)
    return [job_state(session, job) for job in session.scalars(stmt)]


def updates_after(session: Session, after: int, *, job_id: str | None = None, limit: int = 500) -> list[JobUpdate]:
    stmt = select(JobEvent).where(JobEvent.id > after).order_by(JobEvent.id).limit(limit)
    if job_id:
        stmt = stmt.where(JobEvent.job_fk == job_id)
    return [
        JobUpdate(event_id=e.id, job_id=e.job_fk, at=utc(e.at) or e.at, step=e.step, status=e.status, detail=e.detail)
        for e in session.scalars(stmt)
    ]
