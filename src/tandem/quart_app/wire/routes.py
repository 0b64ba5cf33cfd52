"""ntfy publish and poll, as async views that await the core."""

from __future__ import annotations

from quart import Response, request

from tandem.core.schemas import HistoryQuery
from tandem.protocol.encode import message_json, ndjson
from tandem.protocol.publish import parse_json_publish, parse_publish
from tandem.protocol.subscribe import parse_subscribe
from tandem.protocol.topics import parse_topics
from tandem.quart_app.core import body, json_response, ndjson_response, runtime, settings
from tandem.quart_app.wire import bp


@bp.post("/")
async def publish_json() -> Response:
    new = parse_json_publish(await body(), max_body=settings().max_body)
    return json_response(message_json(await runtime().publish(new)))


@bp.route("/<topic>", methods=["PUT", "POST"])
@bp.get("/<topic>/publish")
@bp.get("/<topic>/send")
@bp.get("/<topic>/trigger")
async def publish(topic: str) -> Response:
    data = await body()
    new = parse_publish(topic, request.headers, request.args, data, max_body=settings().max_body)
    return json_response(message_json(await runtime().publish(new)))


@bp.get("/<topics>/json")
async def subscribe_json(topics: str) -> Response:
    names = parse_topics(topics)
    sub = parse_subscribe(request.headers, request.args, now=runtime().now())
    query = HistoryQuery(topics=names, since=sub.since, filter=sub.filter)
    return ndjson_response(ndjson(await runtime().history(query)))
