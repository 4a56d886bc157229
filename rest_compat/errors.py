"""The one place where failures become HTTP responses with the JSON error envelope."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import AppError, FieldError
from rest_compat.schemas import ErrorBody, ErrorDetail, ErrorEnvelope

log = logging.getLogger("signalsmith.rest")


class PayloadTooLarge(AppError):
    """The request body is over `SIGNALSMITH_MAX_BODY_BYTES`."""

    code = "payload_too_large"
    http_status = 413


def error_response(
    status: int,
    code: str,
    message: str,
    details: Iterable[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    envelope = ErrorEnvelope(
        error=ErrorBody(
            code=code,
            message=message,
            details=[ErrorDetail(field=d.field, message=d.message) for d in details],
        )
    )
    return JSONResponse(envelope.model_dump(mode="json"), status_code=status, headers=headers)


async def app_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return error_response(exc.http_status, exc.code, exc.message, exc.details)


#: Router failures (no such path, method not allowed), in the same envelope.
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no endpoint {request.method} {request.url.path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"method {request.method} is not allowed here; allowed: {allowed}"
    else:
        message = str(exc.detail)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, message, headers=exc.headers)


EXCEPTION_HANDLERS: Mapping[Any, Any] = {AppError: app_error, HTTPException: http_error}


class UnexpectedErrors:
    """ASGI middleware: an exception nobody expected is logged with its traceback and answered
    with a generic 500 envelope (its text may hold internals, so it never reaches the caller)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception(
                "unexpected error", extra={"method": scope.get("method"), "path": scope.get("path")}
            )
            if started:
                raise
            response = error_response(
                500, "internal_error", "an unexpected error occurred; it has been logged"
            )
            await response(scope, receive, send)
