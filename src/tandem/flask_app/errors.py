"""Flask's error handlers: every error becomes the JSON error of ``protocol.errors``."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from tandem.core.errors import TandemError
from tandem.protocol.errors import ErrorResponse, from_exception, http_error, internal_error

log = logging.getLogger(__name__)


def register(app: Flask, *, max_body: int) -> None:
    def framework_error(exc: HTTPException) -> Response:
        allow = [value for key, value in exc.get_headers() if key == "Allow"]
        error = http_error(
            exc.code or 500, allow=allow[0].split(", ") if allow else None, max_body=max_body
        )
        return _respond(error)

    app.register_error_handler(TandemError, _tandem_error)
    app.register_error_handler(HTTPException, framework_error)
    app.register_error_handler(Exception, _unexpected_error)


def _respond(error: ErrorResponse) -> Response:
    return Response(error.body, error.status, error.headers, mimetype="application/json")


def _tandem_error(exc: TandemError) -> Response:
    return _respond(from_exception(exc))


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return _respond(internal_error())
