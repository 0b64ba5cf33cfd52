"""Encode messages for the wire: JSON, NDJSON lines, SSE frames and raw lines.

The message JSON is ntfy's: ``{"id", "time", "expires", "event", "topic",
"message"}`` plus ``title``, ``priority``, ``tags`` and ``click`` when set.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from tandem.core.schemas import Message

SSE_RETRY_MS = 3000


def message_dict(msg: Message) -> dict[str, Any]:
    """Return the public JSON object of ``msg``; unset options are left out."""
    data: dict[str, Any] = {
        "id": msg.id,
        "time": msg.time,
        "expires": msg.expires,
        "event": "message",
        "topic": msg.topic,
        "message": msg.message,
    }
    if msg.title is not None:
        data["title"] = msg.title
    if msg.priority is not None:
        data["priority"] = msg.priority
    if msg.tags:
        data["tags"] = list(msg.tags)
    if msg.click is not None:
        data["click"] = msg.click
    return data


def message_json(msg: Message) -> bytes:
    return orjson.dumps(message_dict(msg))


def ndjson(messages: Iterable[Message]) -> bytes:
    """Encode ``messages`` as newline-delimited JSON, one object per line."""
    return b"".join(orjson.dumps(message_dict(msg)) + b"\n" for msg in messages)


def sse_frame(msg: Message) -> bytes:
    """An SSE frame for ``msg``, with ``id:`` so that EventSource can resume."""
    data = orjson.dumps(message_dict(msg))
    return b"id: %s\nretry: %d\ndata: %s\n\n" % (msg.id.encode(), SSE_RETRY_MS, data)


def raw_line(msg: Message) -> bytes:
    """The message text on one line: line breaks inside it become spaces."""
    return msg.message.replace("\r", " ").replace("\n", " ").encode() + b"\n"
