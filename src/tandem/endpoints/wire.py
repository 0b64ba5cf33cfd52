"""ntfy's wire protocol: publish, poll and subscribe."""

from __future__ import annotations

from tandem.core import gate
from tandem.core.errors import InvalidInput
from tandem.core.runtime import Runtime
from tandem.core.schemas import Message
from tandem.endpoints.exchange import (
    Call,
    Outcome,
    Redirect,
    Reply,
    Request,
    Subscribe,
    json_reply,
)
from tandem.protocol.api import NTFY_HEALTHY, SUCCESS, UNIFIEDPUSH, stats_body
from tandem.protocol.encode import (
    MIMETYPES,
    STREAM_HEADERS,
    Format,
    encode_poll,
    message_json,
    skipped_topics,
)
from tandem.protocol.headers import Options
from tandem.protocol.publish import parse_bool, parse_json_publish, parse_publish
from tandem.protocol.subscribe import SubscribeRequest, parse_subscribe
from tandem.protocol.topics import parse_topics, validate_topic


def _published(msg: Message) -> Reply:
    return json_reply(message_json(msg))


def publish(req: Request) -> Outcome:
    """``PUT``/``POST /<topic>`` and ``GET /<topic>/publish|send|trigger``."""
    max_body = req.settings.max_body
    new = parse_publish(req.args["topic"], req.headers, req.query, req.body, max_body=max_body)
    who = req.caller
    return Call(lambda rt: gate.publish(rt, who, new), _published)


def publish_json(req: Request) -> Outcome:
    """``POST /`` with the topic in a JSON body."""
    new = parse_json_publish(req.body, max_body=req.settings.max_body)
    who = req.caller
    return Call(lambda rt: gate.publish(rt, who, new), _published)


def subscribe(req: Request) -> Outcome:
    """``GET /<topics>/json|sse|raw``: a poll answer, or a live stream the door holds open.

    ``HEAD`` gets the stream's headers once access is granted: nothing is subscribed.
    """
    topics, fmt = parse_topics(req.args["topics"]), _format(req.args["kind"])
    sub = parse_subscribe(req.headers, req.query, now=req.door.now())
    who = req.caller
    if sub.poll:
        return Call(lambda rt: _poll(rt, who, topics, sub), lambda found: _polled(found, fmt))
    if req.method == "HEAD":
        return Call(
            lambda rt: gate.grant(rt, who, topics),
            lambda grant: Reply(b"", 200, MIMETYPES[fmt], STREAM_HEADERS | _skipped(grant)),
        )
    return Subscribe(who, topics, sub, fmt)


def topic(req: Request) -> Outcome:
    """``GET /<topic>``: UnifiedPush's discovery with ``up=1``, else the topic's page."""
    name = validate_topic(req.args["topic"])
    up = Options(req.headers, req.query).get("x-unifiedpush", "unifiedpush", "up")
    if parse_bool(up, default=False, name="up"):
        return json_reply(UNIFIEDPUSH)
    return Redirect(req.url_for("main.topic", topic=name))


def auth(req: Request) -> Outcome:
    """``GET /<topics>/auth``: may the caller read every one of them (ntfy's apps ask)."""
    topics, who = parse_topics(req.args["topics"]), req.caller
    return Call(lambda rt: gate.check_read(rt, who, topics), lambda _: json_reply(SUCCESS))


def health(req: Request) -> Outcome:
    """``GET /v1/health``: ntfy's liveness answer (``/api/v1/health`` also asks the database)."""
    return json_reply(NTFY_HEALTHY)


def stats(req: Request) -> Outcome:
    """``GET /v1/stats``: ntfy's public figures."""
    return Call(lambda rt: rt.stats(), lambda found: json_reply(stats_body(found)))


def websocket_only(req: Request) -> Outcome:
    """``GET /<topics>/ws`` without an upgrade: the WebSocket rule takes real handshakes."""
    raise InvalidInput("this endpoint speaks WebSocket: connect with an Upgrade: websocket request")


async def _poll(
    rt: Runtime, who: gate.Caller, topics: tuple[str, ...], sub: SubscribeRequest
) -> tuple[gate.Grant, list[Message]]:
    grant = await gate.grant(rt, who, topics)
    return grant, await gate.poll(rt, grant, sub.since, sub.filter)


def _polled(found: tuple[gate.Grant, list[Message]], fmt: Format) -> Reply:
    grant, messages = found
    return Reply(encode_poll(messages, fmt), 200, MIMETYPES[fmt], _skipped(grant))


def _skipped(grant: gate.Grant) -> dict[str, str]:
    return skipped_topics(grant.forbidden)


_FORMATS: dict[str, Format] = {"json": "json", "sse": "sse", "raw": "raw"}


def _format(kind: str) -> Format:
    if kind in _FORMATS:
        return _FORMATS[kind]
    raise InvalidInput(f"unknown stream kind {kind!r}: use json, sse, raw or ws")
