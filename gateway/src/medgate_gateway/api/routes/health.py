"""Liveness, readiness and Prometheus metrics (no authentication, no patient data)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from starlette.concurrency import run_in_threadpool

from medgate_gateway.api.deps import ContextDep
from medgate_gateway.listener.workers import metrics_dir

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
    if metrics_dir() is None:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
    # several listener processes: add up what each of them counted
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
