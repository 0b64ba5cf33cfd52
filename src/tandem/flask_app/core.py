"""Access to the core from Flask views, and the response helpers they share."""

from __future__ import annotations

from flask import Response, current_app, request

from tandem.bridge import CorePortal
from tandem.core.settings import Settings


def core() -> CorePortal:
    """The current app's :class:`CorePortal`."""
    portal: CorePortal = current_app.extensions["tandem"]
    return portal


def settings() -> Settings:
    value: Settings = current_app.config["TANDEM_SETTINGS"]
    return value


def body() -> bytes:
    """The request body; over ``MAX_CONTENT_LENGTH`` it raises a 413."""
    return request.get_data()


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="application/json")


def ndjson_response(body: bytes) -> Response:
    return Response(body, mimetype="application/x-ndjson")
