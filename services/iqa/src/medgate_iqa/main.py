"""The image-quality service's ASGI application: ``create_app(settings)``; uvicorn runs it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from medgate_common.api.app import serve_app, service_app
from medgate_iqa import __version__, metrics
from medgate_iqa.api.routes import assess, health, language
from medgate_iqa.core.assess import QualityAssessor
from medgate_iqa.runtime import build_assessor
from medgate_iqa.settings import IqaSettings

log = logging.getLogger(__name__)


def create_app(settings: IqaSettings | None = None, *, assessor: QualityAssessor | None = None) -> FastAPI:
    """Build the app. The model is loaded once, at start-up, unless ``assessor`` is given."""
    settings = settings or IqaSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.assessor is None:
            app.state.assessor = await anyio.to_thread.run_sync(build_assessor, settings)
            log.info("quality model loaded", extra={"model": app.state.assessor.model.info.model_dump()})
        yield

    app = service_app(
        settings,
        title="MedGate image quality",
        version=__version__,
        description="MedQ-style image-quality gate: verdicts with reasons, perception answers and comparisons.",
        what="image-quality service",
        lifespan=lifespan,
        collectors=(metrics.REQUESTS, metrics.REQUEST_SECONDS),
        routers=(health.router, assess.router, language.router),
    )
    app.state.assessor = assessor
    return app


def serve(host: str = "127.0.0.1", port: int = 8101) -> None:
    """Run the API with uvicorn until stopped (``medgate iqa serve``)."""
    serve_app(IqaSettings(), create_app, host, port)
