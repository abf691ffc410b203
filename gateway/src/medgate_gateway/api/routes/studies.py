"""The gateway's own study list: what arrived and whether it is complete."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from medgate_common.errors import ConfigError, NotFoundError
from medgate_gateway.api.audit import audit
from medgate_gateway.api.deps import ContextDep, JobsManagerDep, ReaderDep
from medgate_gateway.db.orm import Study

router = APIRouter(prefix="/api/v1/studies", tags=["studies"])


class StudyOut(BaseModel):
    study_uid: str
    state: str
    modalities: str
    num_series: int
    num_instances: int
    first_received_at: dt.datetime
    last_received_at: dt.datetime
    ready_at: dt.datetime | None
    ready_count: int


@router.get("", response_model=list[StudyOut])
async def list_studies(
    context: ContextDep,
    principal: ReaderDep,
    state: str | None = Query(None, pattern="^(receiving|ready)$"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[StudyOut]:
    def query() -> list[StudyOut]:
        stmt = select(Study).order_by(Study.last_received_at.desc()).limit(limit).offset(offset)
        if state:
            stmt = stmt.where(Study.state == state)
        with context.db.read() as session:
            return [StudyOut.model_validate(s, from_attributes=True) for s in session.scalars(stmt)]

    rows = await run_in_threadpool(query)
    await audit(context, principal, "study.list", resource_type="study", detail={"count": len(rows)})
    return rows


@router.get("/{study_uid}", response_model=StudyOut)
async def get_study(study_uid: str, context: ContextDep, principal: ReaderDep) -> StudyOut:
    def query() -> StudyOut | None:
        with context.db.read() as session:
            study = session.scalar(select(Study).where(Study.study_uid == study_uid))
            return StudyOut.model_validate(study, from_attributes=True) if study else None

    found = await run_in_threadpool(query)
    if found is None:
        raise NotFoundError("no such study")
    await audit(context, principal, "study.read", resource_type="study", resource_uid=study_uid)
    return found


@router.post("/{study_uid}/jobs", status_code=202)
async def reprocess_study(study_uid: str, context: ContextDep, principal: JobsManagerDep) -> dict[str, str]:
    """Run the workflow again on a complete study; answers the new job's id."""
    engine = context.workflow
    if engine is None:
        raise ConfigError("the workflow is switched off on this gateway (MEDGATE_GW_WORKFLOW=false)")
    job_id = await run_in_threadpool(engine.reprocess, study_uid, actor=principal.username)
    await audit(context, principal, "study.reprocess", resource_type="study", resource_uid=study_uid)
    return {"job_id": job_id, "href": f"/api/v1/jobs/{job_id}"}
