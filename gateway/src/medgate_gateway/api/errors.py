"""The error tree, translated once for HTTP: RFC 9457 problem+json bodies."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from medgate_common.errors import MedgateError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MedgateError)
    async def _medgate(request: Request, exc: MedgateError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        if exc.http_status >= 500:
            log.error("request failed: %s", exc, extra={"path": request.url.path})
        return JSONResponse(exc.to_problem(), status_code=exc.http_status, media_type=PROBLEM, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = {
            "type": "urn:medgate:error:invalid_input",
            "title": "invalid input",
            "status": 422,
            "detail": "request parameters are not valid",
            "code": "invalid_input",
            "details": {"errors": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]},
        }
        return JSONResponse(body, status_code=422, media_type=PROBLEM)
