"""The gateway's ASGI application: ``create_app(settings)``; uvicorn runs it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from medgate_gateway import __version__
from medgate_gateway.api.errors import install_error_handlers
from medgate_gateway.api.routes import audit, auth, health, jobs, studies, users
from medgate_gateway.context import GatewayContext
from medgate_gateway.dicomweb.router import router as dicomweb_router
from medgate_gateway.listener import DicomListener
from medgate_gateway.listener.workers import WorkerPool
from medgate_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


def create_app(
    settings: GatewaySettings | None = None,
    *,
    context: GatewayContext | None = None,
    with_listener: bool = False,
    with_sweeper: bool = True,
) -> FastAPI:
    """Build the app. Pass ``context`` to share one with a listener or a test."""
    settings = settings or (context.settings if context else GatewaySettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = context or GatewayContext.build(settings)
        app.state.gateway = ctx
        listener = (
            DicomListener(ctx.ingestor, settings, reuse_port=settings.dicom_workers > 1) if with_listener else None
        )
        workers = None
        if listener is not None:
            listener.start()
            if settings.dicom_workers > 1:
                workers = WorkerPool(settings, listener.port)
                workers.start()
        if with_sweeper:
            ctx.start_background()
        try:
            yield
        finally:
            if workers is not None:
                workers.stop()
            if listener is not None:
                listener.stop()
            ctx.stop_background()
            if context is None:
                ctx.close()

    app = FastAPI(
        title="MedGate gateway",
        version=__version__,
        description="PACS ingestion (DICOMweb), study state, users and audit of MedGate.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in (
        health.router,
        auth.router,
        users.router,
        studies.router,
        jobs.router,
        audit.router,
        dicomweb_router,
    ):
        app.include_router(router)
    return app
