"""REST API v1 views."""

from __future__ import annotations

import os

from flask import Response, request

from tandem.core import gate
from tandem.flask_app.api import bp
from tandem.flask_app.core import body, caller, core, json_response, settings, slots
from tandem.protocol.api import health_body, message_body, page_body, streams_body, topics_body
from tandem.protocol.openapi import document_json
from tandem.protocol.publish import parse_json_publish
from tandem.protocol.requests import parse_cursor, parse_limit
from tandem.protocol.topics import validate_topic


@bp.get("/health")
def health() -> Response:
    core().call(lambda rt: rt.check_health())
    return json_response(health_body(database="ok"))


@bp.get("/streams")
def streams() -> Response:
    used = slots()
    body = streams_body(door="wsgi", pid=os.getpid(), in_use=used.in_use, slots=used.total)
    return json_response(body)


@bp.get("/topics")
def topics() -> Response:
    who = caller()
    return json_response(topics_body(core().call(lambda rt: gate.topics(rt, who))))


@bp.get("/topics/<topic>/messages")
def messages(topic: str) -> Response:
    name = validate_topic(topic)
    after, limit = parse_cursor(request.args.get("cursor")), parse_limit(request.args.get("limit"))
    who = caller()
    page = core().call(lambda rt: gate.page(rt, who, name, after_seq=after, limit=limit))
    return json_response(page_body(page))


@bp.post("/topics/<topic>/messages")
def publish(topic: str) -> Response:
    new = parse_json_publish(body(), max_body=settings().max_body, topic=topic)
    who = caller()
    return json_response(message_body(core().call(lambda rt: gate.publish(rt, who, new))), 201)


@bp.get("/openapi.json")
def openapi() -> Response:
    return json_response(document_json())
