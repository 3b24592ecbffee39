"""Exceptions → JSON `{error, detail}` with the right status; nothing leaks a traceback.

| exception | status |
|---|---|
| NotFound, MediaDisabled, unknown route | 404 |
| wrong method | 405 |
| Conflict, CursorConflict, InvalidTransition | 409 |
| malformed JSON body | 400 (`bad_json`) |
| wrong types / missing fields / store ValidationError | 422 |
| body over the limit | 413 (middleware) |
| StoreUnavailable | 503 |
| anything else | 500 `internal`, logged with its traceback, never sent |
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from liteshift.errors import LiteshiftError
from liteshift.sidecar.responses import error_response
from liteshift.store.errors import (
    Conflict,
    CursorConflict,
    InvalidTransition,
    MediaDisabled,
    NotFound,
    StoreUnavailable,
    ValidationError,
)

log = logging.getLogger("liteshift.sidecar")

_STATUS: tuple[tuple[type[LiteshiftError], int], ...] = (
    (NotFound, 404),
    (MediaDisabled, 404),
    (Conflict, 409),
    (CursorConflict, 409),
    (InvalidTransition, 409),
    (ValidationError, 422),
    (StoreUnavailable, 503),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
}


class RequestError(LiteshiftError):
    """A request the sidecar refuses before it reaches the store (bad JSON, wrong types)."""

    def __init__(self, status: int, code: str, detail: Any) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


def status_of(exc: LiteshiftError) -> int:
    """The HTTP status for a typed error (400 for a LiteshiftError without a mapping)."""
    if isinstance(exc, RequestError):
        return exc.status
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def detail_of(exc: LiteshiftError) -> Any:
    if isinstance(exc, RequestError):
        return exc.detail
    if isinstance(exc, ValidationError):
        return [{"loc": ["body", exc.field], "msg": exc.reason, "type": "value_error"}]
    return str(exc)


async def liteshift_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LiteshiftError)
    status = status_of(exc)
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    return error_response(status, exc.code, detail_of(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    return error_response(
        exc.status_code, code, exc.detail, headers=dict(exc.headers) if exc.headers else None
    )


async def internal_error(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware logs the traceback and re-raises after this response.
    return error_response(500, "internal", "internal error; see the sidecar log")


EXCEPTION_HANDLERS = {
    LiteshiftError: liteshift_error,
    HTTPException: http_error,
    Exception: internal_error,
}
