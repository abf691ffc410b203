"""Read the audit trail (admin)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from medgate_gateway.api.deps import AuditorDep, ContextDep
from medgate_gateway.db.orm import AuditEvent

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditOut(BaseModel):
    at: dt.datetime
    actor: str
    role: str
    action: str
    resource_type: str
    resource_uid: str
    client: str
    outcome: str


@router.get("", response_model=list[AuditOut])
async def list_audit(
    context: ContextDep,
    _auditor: AuditorDep,
    actor: str | None = None,
    action: str | None = None,
    resource_uid: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[AuditOut]:
    def query() -> list[AuditOut]:
        stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
        if actor:
            stmt = stmt.where(AuditEvent.actor == actor)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        if resource_uid:
            stmt = stmt.where(AuditEvent.resource_uid == resource_uid)
        with context.db.read() as session:
            return [AuditOut.model_validate(row, from_attributes=True) for row in session.scalars(stmt)]

    return await run_in_threadpool(query)
