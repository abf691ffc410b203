"""The skeleton every service API shares: settings and compute slots in ``app.state``,
problem+json errors, request ids and metrics, the routers. The service adds its lifespan
(which loads its model once, at start-up) and its routes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from fastapi import APIRouter, FastAPI
from prometheus_client import Counter, Histogram

from medgate_common.api.compute import ComputeSlots
from medgate_common.api.middleware import RequestMetrics
from medgate_common.api.problems import install_error_handlers
from medgate_common.logging import configure_logging
from medgate_common.settings import ServiceSettings

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def service_app(
    settings: ServiceSettings,
    *,
    title: str,
    version: str,
    description: str,
    what: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    collectors: tuple[Counter, Histogram],
    routers: Sequence[APIRouter],
) -> FastAPI:
    """A FastAPI app for ``settings``; ``what`` names the service in a 500's text."""
    app = FastAPI(title=title, version=version, description=description, lifespan=lifespan)
    app.state.settings = settings
    app.state.slots = ComputeSlots(settings.max_concurrent)
    install_error_handlers(app, what)
    requests, seconds = collectors
    app.add_middleware(
        RequestMetrics, requests=requests, seconds=seconds, logger=f"medgate_{settings.service_name}.access"
    )
    for router in routers:
        app.include_router(router)
    return app


def serve_app(settings: SettingsT, create_app: Callable[[SettingsT], FastAPI], host: str, port: int) -> None:
    """Log as ``settings`` say, then run ``create_app(settings)`` with uvicorn until stopped
    (each service's ``medgate <service> serve``); requests are logged by the app's middleware."""
    import uvicorn

    configure_logging(settings.service_name, level=settings.log_level, json_lines=settings.log_json)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
