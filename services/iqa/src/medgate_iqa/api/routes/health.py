"""Liveness, readiness and Prometheus metrics (no patient data, no authentication)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from medgate_iqa.api.deps import AssessorDep
from medgate_iqa.api.schemas import Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The quality model is loaded (503 not_ready until it is)")
async def readyz(assessor: AssessorDep) -> Readiness:
    return Readiness(status="ready", model=assessor.model.info)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
