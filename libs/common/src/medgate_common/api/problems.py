"""Every error of a service API as an RFC 9457 problem+json body with a stable ``code``.

MedgateErrors carry their own code and status. Errors raised by the framework (an unknown
path, a malformed multipart body, a bug) are given one here, so that a client never has to
parse two shapes of error.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from medgate_common.errors import MedgateError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"

_HTTP_CODES = {
    400: "invalid_input",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def problem(status: int, code: str, detail: str, **details: object) -> dict[str, object]:
    body: dict[str, object] = {
        "type": f"urn:medgate:error:{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def request_id_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def install_error_handlers(app: FastAPI, service: str) -> None:
    """Answer every error of ``app`` as problem+json; ``service`` names it in the 500 text."""

    @app.exception_handler(MedgateError)
    async def _medgate(request: Request, exc: MedgateError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("request failed: %s", exc, extra={"path": request.url.path, "request_id": request_id_of(request)})
        return JSONResponse(exc.to_problem(), status_code=exc.http_status, media_type=PROBLEM)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        body = problem(422, "invalid_input", "request parameters are not valid", errors=errors)
        return JSONResponse(body, status_code=422, media_type=PROBLEM)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        body = problem(exc.status_code, code, str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not the caller's fault: say so without leaking internals, and keep the trace in the log.
        log.exception("unhandled error", extra={"path": request.url.path, "request_id": request_id_of(request)})
        body = problem(500, "internal_error", f"the {service} failed unexpectedly; see its log")
        return JSONResponse(body, status_code=500, media_type=PROBLEM)
