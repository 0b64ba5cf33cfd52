"""ntfy publish and poll, as async views that await the core."""

from __future__ import annotations

from quart import Response, request, websocket

from tandem.core import gate
from tandem.core.errors import InvalidInput
from tandem.protocol.encode import Format, message_json
from tandem.protocol.publish import parse_json_publish, parse_publish
from tandem.protocol.subscribe import parse_subscribe
from tandem.protocol.topics import parse_topics
from tandem.quart_app.core import body, caller, json_response, runtime, settings
from tandem.quart_app.streams import stream_response, websocket_session
from tandem.quart_app.wire import bp


@bp.post("/")
async def publish_json() -> Response:
    new = parse_json_publish(await body(), max_body=settings().max_body)
    return json_response(message_json(await gate.publish(runtime(), caller(), new)))


@bp.route("/<topic>", methods=["PUT", "POST"])
@bp.get("/<topic>/publish")
@bp.get("/<topic>/send")
@bp.get("/<topic>/trigger")
async def publish(topic: str) -> Response:
    data = await body()
    new = parse_publish(topic, request.headers, request.args, data, max_body=settings().max_body)
    return json_response(message_json(await gate.publish(runtime(), caller(), new)))


@bp.get("/<topics>/<any(json, sse, raw):kind>")
async def subscribe(topics: str, kind: Format) -> Response:
    names = parse_topics(topics)
    rt = runtime()
    sub = parse_subscribe(request.headers, request.args, now=rt.now())
    head = request.method == "HEAD"
    return await stream_response(rt, caller(), names, sub, kind, head=head)


@bp.get("/<topics>/ws")
async def subscribe_ws_without_upgrade(topics: str) -> Response:
    raise InvalidInput("this endpoint speaks WebSocket: connect with an Upgrade: websocket request")


@bp.websocket("/<topics>/ws")
async def subscribe_ws(topics: str) -> None:
    names = parse_topics(topics)
    rt = runtime()
    sub = parse_subscribe(websocket.headers, websocket.args, now=rt.now())
    await websocket_session(rt, websocket, caller(), names, sub)
