"""The segmentation service's ASGI application: ``create_app(settings)``; uvicorn runs it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from medgate_common.api.app import serve_app, service_app
from medgate_common.storage import storage_from_uri
from medgate_seg import __version__, metrics
from medgate_seg.api.routes import health, segment
from medgate_seg.core.pipeline import Segmenter
from medgate_seg.runtime import build_segmenter
from medgate_seg.settings import SegSettings

log = logging.getLogger(__name__)


def create_app(settings: SegSettings | None = None, *, segmenter: Segmenter | None = None) -> FastAPI:
    """Build the app. The model is loaded once, at start-up, unless ``segmenter`` is given."""
    settings = settings or SegSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.segmenter is None:
            app.state.segmenter = await anyio.to_thread.run_sync(build_segmenter, settings)
            log.info("lesion model loaded", extra={"model": app.state.segmenter.model.backend.info.model_dump()})
        yield

    app = service_app(
        settings,
        title="MedGate lesion segmentation",
        version=__version__,
        description="Lesions of a CT series: volumes, centroids and slice ranges, a DICOM SEG and review overlays.",
        what="segmentation service",
        lifespan=lifespan,
        collectors=(metrics.REQUESTS, metrics.REQUEST_SECONDS),
        routers=(health.router, segment.router),
    )
    app.state.segmenter = segmenter
    app.state.storage = storage_from_uri(settings.resolved_storage_uri())
    return app


def serve(host: str = "127.0.0.1", port: int = 8102) -> None:
    """Run the API with uvicorn until stopped (``medgate seg serve``)."""
    serve_app(SegSettings(), create_app, host, port)
