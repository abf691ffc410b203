"""The reasoning service's ASGI application: ``create_app(settings)``; uvicorn runs it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from medgate_common.api.app import serve_app, service_app
from medgate_common.storage import storage_from_uri
from medgate_vlm import __version__, metrics
from medgate_vlm.api.routes import health, report, triage, vqa
from medgate_vlm.runtime import Models, load_models
from medgate_vlm.settings import VlmSettings

log = logging.getLogger(__name__)


def create_app(settings: VlmSettings | None = None, *, models: Models | None = None) -> FastAPI:
    """Build the app. The models are loaded once, at start-up, unless ``models`` is given. A
    missing VQA model does not stop the service: its routes answer 503 ``not_ready`` saying so
    (and ``/readyz`` too), while ``/v1/triage`` works if the triage model is there."""
    settings = settings or VlmSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.models is None:
            app.state.models = await anyio.to_thread.run_sync(load_models, settings)
        loaded: Models = app.state.models
        if loaded.reasoner is None:
            log.warning("no grounded VQA model", extra={"reason": loaded.vqa_note})
        if loaded.triage is None:
            log.warning("no triage model", extra={"reason": loaded.triage_note})
        yield

    app = service_app(
        settings,
        title="MedGate reasoning",
        version=__version__,
        description="Triage score, grounded answers with rationale and heatmap, and a draft report whose every "
        "sentence cites its evidence, written as a DICOM SR with key images.",
        what="reasoning service",
        lifespan=lifespan,
        collectors=(metrics.REQUESTS, metrics.REQUEST_SECONDS),
        routers=(health.router, triage.router, vqa.router, report.router),
    )
    app.state.models = models
    app.state.storage = storage_from_uri(settings.resolved_storage_uri())
    return app


def serve(host: str = "127.0.0.1", port: int = 8103) -> None:
    """Run the API with uvicorn until stopped (``medgate vlm serve``)."""
    serve_app(VlmSettings(), create_app, host, port)
