"""The error table: core errors to HTTP statuses, and the JSON error body.

Both front doors answer every error with ``{"error", "message", "code"}``
built here, so a client sees the same error whichever door it talks to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus

import orjson

from tandem.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    TandemError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    Unsupported,
)

# What a 401 asks for: Basic (user:pass, or an empty user and a token) or Bearer.
WWW_AUTHENTICATE = 'Basic realm="tandem", Bearer realm="tandem"'

STATUS_FOR: dict[type[TandemError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    TooManyRequests: 429,
    Unsupported: 501,
    Unavailable: 503,
}


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> ErrorResponse:
    """Build the JSON error for ``status``."""
    body = {"error": HTTPStatus(status).phrase, "message": message, "code": status}
    return ErrorResponse(status, orjson.dumps(body), headers or {})


def from_exception(exc: TandemError) -> ErrorResponse:
    """Translate a core error; its most specific class in :data:`STATUS_FOR` decides."""
    status = next((STATUS_FOR[cls] for cls in type(exc).__mro__ if cls in STATUS_FOR), 500)
    headers = {}
    if isinstance(exc, Unavailable | TooManyRequests) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return error_response(status, exc.message, headers)


def framework_error(
    status: int, headers: Iterable[tuple[str, str]], *, max_body: int
) -> ErrorResponse:
    """Translate an HTTP error raised by the framework itself (werkzeug's ``HTTPException``:
    its ``code`` and ``get_headers()``), keeping the ``Allow`` of a 405."""
    allow = [value for key, value in headers if key == "Allow"]
    return http_error(status, allow=allow[0].split(", ") if allow else None, max_body=max_body)


def http_error(status: int, *, allow: list[str] | None = None, max_body: int) -> ErrorResponse:
    """Translate an HTTP error raised by the framework (routing, body size) itself."""
    if status == 404:
        return error_response(404, "no such endpoint; see /api/v1/openapi.json")
    if status == 405:
        methods = ", ".join(allow or [])
        return error_response(405, f"method not allowed here; use {methods}", {"Allow": methods})
    if status == 413:
        return error_response(413, f"request body too large: the limit is {max_body} bytes")
    return error_response(status, HTTPStatus(status).description or HTTPStatus(status).phrase)


def internal_error() -> ErrorResponse:
    return error_response(500, "internal error; the request id identifies it in the logs")
