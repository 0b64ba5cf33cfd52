"""Flask's error handlers: every error becomes the JSON error of ``protocol.errors``."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from tandem.core.errors import TandemError
from tandem.flask_app.core import settings
from tandem.protocol.errors import ErrorResponse, from_exception, http_error, internal_error

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    app.register_error_handler(TandemError, _tandem_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


def _respond(error: ErrorResponse) -> Response:
    return Response(error.body, error.status, error.headers, mimetype="application/json")


def _tandem_error(exc: TandemError) -> Response:
    return _respond(from_exception(exc))


def _http_error(exc: HTTPException) -> Response:
    allow = exc.get_headers()
    methods = [value for key, value in allow if key == "Allow"]
    return _respond(
        http_error(
            exc.code or 500,
            allow=methods[0].split(", ") if methods else None,
            max_body=settings().max_body,
        )
    )


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return _respond(internal_error())
