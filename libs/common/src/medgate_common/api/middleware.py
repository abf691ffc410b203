"""Per-request bookkeeping as plain ASGI: a request id, Prometheus counts and one log line.

Plain ASGI rather than ``BaseHTTPMiddleware`` so that the upload stream passes through
untouched and an error still gets counted with the status that was sent. Each service
passes its own collectors (``medgate_<service>_requests_total`` and friends).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is a plain token, else a fresh one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _CLIENT_ID.fullmatch(text):
                return text
    return uuid.uuid4().hex


def request_collectors(service: str) -> tuple[Counter, Histogram]:
    """The two collectors :class:`RequestMetrics` fills, named after ``service``.

    Call once per process (module level in the service's ``metrics``): prometheus_client
    refuses a second collector of the same name on its default registry.
    """
    requests = Counter(
        f"medgate_{service}_requests_total",
        "HTTP requests answered, by route template, method and status",
        ["route", "method", "status"],
    )
    seconds = Histogram(
        f"medgate_{service}_request_seconds",
        "Time to answer an HTTP request, upload included",
        ["route"],
        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    )
    return requests, seconds


class RequestMetrics:
    def __init__(self, app: ASGIApp, *, requests: Counter, seconds: Histogram, logger: str) -> None:
        self.app = app
        self.requests = requests
        self.seconds = seconds
        self.log = logging.getLogger(logger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            found = scope.get("route")
            route = str(getattr(found, "path", "unmatched"))
            self.requests.labels(route, scope["method"], str(status)).inc()
            self.seconds.labels(route).observe(elapsed)
            if route.startswith("/v1/"):
                self.log.info(
                    "request",
                    extra={
                        "request_id": rid,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 1),
                    },
                )
