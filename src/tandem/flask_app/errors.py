"""Flask's error handlers: every error becomes the JSON error of ``protocol.errors``."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from tandem.core.errors import TandemError
from tandem.protocol.errors import ErrorResponse, framework_error, from_exception, internal_error

log = logging.getLogger(__name__)


# How much of a refused body is read and dropped so that the answer arrives (nginx's
# client_max_body_size in deploy/nginx.conf is 1m).
DRAIN_LIMIT = 1 << 20


def register(app: Flask, *, max_body: int) -> None:
    def http_error(exc: HTTPException) -> Response:
        if exc.code == 413:
            _drain_body()
        return _respond(framework_error(exc.code or 500, exc.get_headers(), max_body=max_body))

    app.register_error_handler(TandemError, _tandem_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, _unexpected_error)


def _drain_body() -> None:
    """Read the rest of a body refused as too large, up to :data:`DRAIN_LIMIT`.

    Werkzeug refuses it unread. gunicorn then closes the connection with the body
    still in the socket's receive buffer, and the kernel answers that with a reset:
    a proxy still sending the body (nginx) gets the reset instead of the 413, and
    answers its client 502. Reading the rest first lets the 413 arrive.
    """
    remaining = request.content_length
    stream = request.environ.get("wsgi.input")
    if remaining is None or stream is None or remaining > DRAIN_LIMIT:
        return
    while remaining > 0 and (chunk := stream.read(min(remaining, 64 * 1024))):
        remaining -= len(chunk)


def _respond(error: ErrorResponse) -> Response:
    return Response(error.body, error.status, error.headers, mimetype="application/json")


def _tandem_error(exc: TandemError) -> Response:
    return _respond(from_exception(exc))


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return _respond(internal_error())
