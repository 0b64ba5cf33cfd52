"""ntfy publish and poll, as sync views over the portal."""

from __future__ import annotations

from flask import Response, request

from tandem.core import gate
from tandem.core.errors import Unsupported
from tandem.flask_app.core import body, caller, core, json_response, settings, slots
from tandem.flask_app.streams import stream_response
from tandem.flask_app.wire import bp
from tandem.protocol.encode import Format, message_json
from tandem.protocol.publish import parse_json_publish, parse_publish
from tandem.protocol.subscribe import parse_subscribe
from tandem.protocol.topics import parse_topics


@bp.post("/")
def publish_json() -> Response:
    new = parse_json_publish(body(), max_body=settings().max_body)
    who = caller()
    msg = core().call(lambda rt: gate.publish(rt, who, new))
    return json_response(message_json(msg))


@bp.route("/<topic>", methods=["PUT", "POST"])
@bp.get("/<topic>/publish")
@bp.get("/<topic>/send")
@bp.get("/<topic>/trigger")
def publish(topic: str) -> Response:
    new = parse_publish(topic, request.headers, request.args, body(), max_body=settings().max_body)
    who = caller()
    msg = core().call(lambda rt: gate.publish(rt, who, new))
    return json_response(message_json(msg))


@bp.get("/<topics>/<any(json, sse, raw):kind>")
def subscribe(topics: str, kind: Format) -> Response:
    names = parse_topics(topics)
    sub = parse_subscribe(request.headers, request.args, now=core().now())
    return stream_response(core(), slots(), caller(), names, sub, kind)


@bp.get("/<topics>/ws")
# A real handshake (Upgrade: websocket) matches only a WebSocket rule; without this
# one Werkzeug answers it 400 "bad request syntax" instead of this 501.
@bp.get("/<topics>/ws", websocket=True)
def subscribe_ws(topics: str) -> Response:
    raise Unsupported(
        "WebSocket needs the ASGI door (hypercorn asgi:app); "
        "on this door subscribe with /sse, /json or /raw"
    )
