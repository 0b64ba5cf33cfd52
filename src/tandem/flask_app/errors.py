"""Flask's error handlers: every error becomes the JSON error of ``protocol.errors``."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from tandem.core.errors import TandemError
from tandem.protocol.errors import ErrorResponse, framework_error, from_exception, internal_error

log = logging.getLogger(__name__)


def register(app: Flask, *, max_body: int) -> None:
    def http_error(exc: HTTPException) -> Response:
        return _respond(framework_error(exc.code or 500, exc.get_headers(), max_body=max_body))

    app.register_error_handler(TandemError, _tandem_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, _unexpected_error)


def _respond(error: ErrorResponse) -> Response:
    return Response(error.body, error.status, error.headers, mimetype="application/json")


def _tandem_error(exc: TandemError) -> Response:
    return _respond(from_exception(exc))


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return _respond(internal_error())
