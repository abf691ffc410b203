"""Liveness, readiness and Prometheus metrics of a model service (no patient data, no
authentication). Readiness names the loaded model, so an operator sees which weights serve."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from medgate_common.schemas.base import WireModel
from medgate_common.schemas.models import ModelInfo


class Readiness(WireModel):
    status: Literal["ready"]
    model: ModelInfo


def operations_router(model_info: Callable[..., Awaitable[ModelInfo]], what: str) -> APIRouter:
    """``/healthz``, ``/readyz`` and ``/metrics``. ``model_info`` is a FastAPI dependency that
    returns the loaded model's identity, or raises NotReadyError while ``what`` is loading."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary=f"The {what} is loaded (503 not_ready until it is)")
    async def readyz(info: ModelInfo = Depends(model_info)) -> Readiness:  # noqa: B008 - FastAPI's idiom
        return Readiness(status="ready", model=info)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
