"""The REST API v1 (``/api/v1/...``): health, streams, topics, history and publishing."""

from __future__ import annotations

import os

from tandem.core import gate
from tandem.endpoints.exchange import Call, Outcome, Request, json_reply
from tandem.protocol.api import health_body, message_body, page_body, streams_body, topics_body
from tandem.protocol.publish import parse_json_publish
from tandem.protocol.requests import parse_cursor, parse_limit
from tandem.protocol.topics import validate_topic


def health(req: Request) -> Outcome:
    return Call(lambda rt: rt.check_health(), lambda _: json_reply(health_body(database="ok")))


def streams(req: Request) -> Outcome:
    usage = req.door.stream_usage()
    body = streams_body(
        door=req.door.name,
        pid=os.getpid(),
        in_use=usage.in_use,
        slots=usage.slots,
        direct=usage.direct,
    )
    return json_reply(body)


def topics(req: Request) -> Outcome:
    who = req.caller
    return Call(lambda rt: gate.topics(rt, who), lambda found: json_reply(topics_body(found)))


def messages(req: Request) -> Outcome:
    name = validate_topic(req.args["topic"])
    after = parse_cursor(req.query.get("cursor"))
    limit = parse_limit(req.query.get("limit"))
    who = req.caller
    return Call(
        lambda rt: gate.page(rt, who, name, after_seq=after, limit=limit),
        lambda page: json_reply(page_body(page)),
    )


def publish(req: Request) -> Outcome:
    topic = req.args["topic"]
    new = parse_json_publish(req.body, max_body=req.settings.max_body, topic=topic)
    who = req.caller
    return Call(
        lambda rt: gate.publish(rt, who, new), lambda msg: json_reply(message_body(msg), 201)
    )
