"""Access to the core from Flask views, and the response helpers they share."""

from __future__ import annotations

from flask import Response, current_app, request, session
from werkzeug.exceptions import RequestEntityTooLarge

from tandem.bridge import CorePortal
from tandem.core.gate import Caller
from tandem.core.settings import Settings
from tandem.flask_app.streams import StreamSlots
from tandem.protocol.caller import caller as read_caller


def core() -> CorePortal:
    """The current app's :class:`CorePortal`."""
    portal: CorePortal = current_app.extensions["tandem"]
    return portal


def slots() -> StreamSlots:
    """The stream slots of this worker process."""
    value: StreamSlots = current_app.extensions["tandem_slots"]
    return value


def settings() -> Settings:
    value: Settings = current_app.config["TANDEM_SETTINGS"]
    return value


def caller() -> Caller:
    """Who the current request says it is; the core checks it."""
    return read_caller(request.headers, request.args, session, request.remote_addr, settings())


def body() -> bytes:
    """The request body; over ``MAX_CONTENT_LENGTH`` it raises a 413."""
    data = request.get_data()
    limit = request.max_content_length
    # Without Content-Length (chunked), Werkzeug stops reading at the limit and returns
    # the body cut short, no error. A byte left in the server's own stream means the
    # body was over the limit; it must not be stored truncated.
    cut_short = request.content_length is None and limit is not None and len(data) >= limit
    if cut_short and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return data


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="application/json")


def ndjson_response(body: bytes) -> Response:
    return Response(body, mimetype="application/x-ndjson")
