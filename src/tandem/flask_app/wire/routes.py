"""ntfy publish and poll, as sync views over the portal."""

from __future__ import annotations

from flask import Response, request

from tandem.core.schemas import HistoryQuery
from tandem.flask_app.core import body, core, json_response, ndjson_response, settings
from tandem.flask_app.wire import bp
from tandem.protocol.encode import message_json, ndjson
from tandem.protocol.publish import parse_json_publish, parse_publish
from tandem.protocol.subscribe import parse_subscribe
from tandem.protocol.topics import parse_topics


@bp.post("/")
def publish_json() -> Response:
    new = parse_json_publish(body(), max_body=settings().max_body)
    msg = core().call(lambda rt: rt.publish(new))
    return json_response(message_json(msg))


@bp.route("/<topic>", methods=["PUT", "POST"])
@bp.get("/<topic>/publish")
@bp.get("/<topic>/send")
@bp.get("/<topic>/trigger")
def publish(topic: str) -> Response:
    new = parse_publish(topic, request.headers, request.args, body(), max_body=settings().max_body)
    msg = core().call(lambda rt: rt.publish(new))
    return json_response(message_json(msg))


@bp.get("/<topics>/json")
def subscribe_json(topics: str) -> Response:
    names = parse_topics(topics)
    sub = parse_subscribe(request.headers, request.args, now=core().now())
    query = HistoryQuery(topics=names, since=sub.since, filter=sub.filter)
    return ndjson_response(ndjson(core().call(lambda rt: rt.history(query))))
