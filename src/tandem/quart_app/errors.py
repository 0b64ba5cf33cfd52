"""Quart's error handlers: every error becomes the JSON error of ``protocol.errors``."""

from __future__ import annotations

import logging

from quart import Quart, Response
from werkzeug.exceptions import HTTPException

from tandem.core.errors import TandemError
from tandem.protocol.errors import ErrorResponse, from_exception, http_error, internal_error
from tandem.quart_app.core import settings

log = logging.getLogger(__name__)


def register(app: Quart) -> None:
    app.register_error_handler(TandemError, _tandem_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


def _respond(error: ErrorResponse) -> Response:
    return Response(error.body, error.status, error.headers, mimetype="application/json")


async def _tandem_error(exc: TandemError) -> Response:
    return _respond(from_exception(exc))


async def _http_error(exc: HTTPException) -> Response:
    allow = [value for key, value in exc.get_headers() if key == "Allow"]
    return _respond(
        http_error(
            exc.code or 500,
            allow=allow[0].split(", ") if allow else None,
            max_body=settings().max_body,
        )
    )


async def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return _respond(internal_error())
