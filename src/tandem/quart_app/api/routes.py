"""REST API v1 views."""

from __future__ import annotations

import os

from quart import Response, request

from tandem.core import gate
from tandem.protocol.api import health_body, message_body, page_body, streams_body, topics_body
from tandem.protocol.openapi import document_json
from tandem.protocol.publish import parse_json_publish
from tandem.protocol.requests import parse_cursor, parse_limit
from tandem.protocol.topics import validate_topic
from tandem.quart_app.api import bp
from tandem.quart_app.core import body, caller, json_response, runtime, settings


@bp.get("/health")
async def health() -> Response:
    await runtime().check_health()
    return json_response(health_body(database="ok"))


@bp.get("/streams")
async def streams() -> Response:
    hub = runtime().hub
    body = streams_body(
        door="asgi", pid=os.getpid(), in_use=hub.count, slots=None, direct=hub.written_through
    )
    return json_response(body)


@bp.get("/topics")
async def topics() -> Response:
    return json_response(topics_body(await gate.topics(runtime(), caller())))


@bp.get("/topics/<topic>/messages")
async def messages(topic: str) -> Response:
    name = validate_topic(topic)
    after, limit = parse_cursor(request.args.get("cursor")), parse_limit(request.args.get("limit"))
    page = await gate.page(runtime(), caller(), name, after_seq=after, limit=limit)
    return json_response(page_body(page))


@bp.post("/topics/<topic>/messages")
async def publish(topic: str) -> Response:
    new = parse_json_publish(await body(), max_body=settings().max_body, topic=topic)
    return json_response(message_body(await gate.publish(runtime(), caller(), new)), 201)


@bp.get("/openapi.json")
async def openapi() -> Response:
    return json_response(document_json())
