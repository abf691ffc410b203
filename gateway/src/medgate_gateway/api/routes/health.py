"""Liveness, readiness and Prometheus metrics (no authentication, no patient data)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from medgate_gateway.api.deps import ContextDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database reachable and storage writable")
async def readyz(context: ContextDep) -> dict[str, str]:
    await run_in_threadpool(context.db.ping)
    await run_in_threadpool(context.storage.put_bytes, "health/probe", b"ok")
    return {"status": "ready", "database": context.db.dialect}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
