"""Access to the core from Quart views, and the response helpers they share."""

from __future__ import annotations

from quart import Response, current_app, has_request_context, request, session, websocket

from tandem.core.gate import Caller
from tandem.core.runtime import Runtime
from tandem.core.settings import Settings
from tandem.protocol.caller import caller as read_caller


def runtime() -> Runtime:
    """The current app's :class:`Runtime`, started by the serving lifespan."""
    value: Runtime = current_app.extensions["tandem"]
    return value


def settings() -> Settings:
    value: Settings = current_app.config["TANDEM_SETTINGS"]
    return value


def caller() -> Caller:
    """Who the current request or WebSocket says it is; the core checks it."""
    conn = request if has_request_context() else websocket
    return read_caller(conn.headers, conn.args, session, conn.remote_addr, settings())


async def body() -> bytes:
    """The request body; over ``MAX_CONTENT_LENGTH`` it raises a 413."""
    return await request.get_data(cache=True, as_text=False, parse_form_data=False)


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="application/json")


def ndjson_response(body: bytes) -> Response:
    return Response(body, mimetype="application/x-ndjson")
