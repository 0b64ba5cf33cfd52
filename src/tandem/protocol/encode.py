"""Encode messages for the wire: JSON, NDJSON lines, SSE frames and raw lines.

The message JSON is ntfy's: ``{"id", "time", "expires", "event", "topic",
"message"}`` plus ``title``, ``priority``, ``tags`` and ``click`` when set.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any, Literal

import orjson
from wsproto.frame_protocol import FrameProtocol

from tandem.core.hub import Envelope
from tandem.core.schemas import Message
from tandem.core.stream import Event
from tandem.protocol.actions import action_dict

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
    if msg.icon is not None:
        data["icon"] = msg.icon
    if msg.content_type is not None:
        data["content_type"] = msg.content_type
    if msg.actions:
        data["actions"] = [action_dict(action) for action in msg.actions]
    if msg.encoding is not None:
        data["encoding"] = msg.encoding
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


# --- Stream events -------------------------------------------------------------

Format = Literal["json", "sse", "raw", "ws"]

# Both frameworks add "; charset=utf-8" to text/* types themselves.
MIMETYPES: dict[str, str] = {
    "json": "application/x-ndjson",
    "sse": "text/event-stream",
    "raw": "text/plain",
}
# No caching, and no buffering by nginx (X-Accel-Buffering), or events arrive late.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def skipped_topics(forbidden: Iterable[str]) -> dict[str, str]:
    """The header naming the requested topics that the caller may not read."""
    names = ",".join(forbidden)
    return {"X-Forbidden-Topics": names} if names else {}


_MESSAGE_ENCODERS: dict[str, Callable[[Message], bytes]] = {
    "json": lambda msg: message_json(msg) + b"\n",
    "ws": message_json,
    "sse": sse_frame,
    "raw": raw_line,
}


def event_dict(event: Event) -> dict[str, Any]:
    """The JSON object of a non-message event (``open``, ``keepalive``, ``gap``, ``close``)."""
    data: dict[str, Any] = {
        "id": secrets.token_urlsafe(9),
        "time": event.time,
        "event": event.kind,
        "topic": event.topic,
    }
    if event.detail is not None:
        data["message"] = event.detail
    return data


def encode_event(event: Event, fmt: Format) -> bytes:
    """Encode one stream event for ``fmt``. Message encodings are shared via the envelope."""
    if event.envelope is not None:
        return event.envelope.encoded(fmt, _MESSAGE_ENCODERS[fmt])
    if fmt == "raw":
        # Raw clients read lines of text: keepalives are empty lines, a gap is said in words.
        return f"[{event.kind}] {event.detail}\n".encode() if event.kind == "gap" else b"\n"
    data = orjson.dumps(event_dict(event))
    if fmt == "sse":
        return b"event: %s\ndata: %s\n\n" % (event.kind.encode(), data)
    return data + b"\n" if fmt == "json" else data


def encode_batch(events: Iterable[Event], fmt: Format) -> bytes:
    return b"".join(encode_event(event, fmt) for event in events)


def encode_poll(messages: Iterable[Message], fmt: Format) -> bytes:
    """Stored messages for ``poll=1``, in the stream's own format."""
    encode = _MESSAGE_ENCODERS[fmt]
    return b"".join(encode(msg) for msg in messages)


# --- Bytes for the connection itself --------------------------------------------
# A door that writes to its client's socket directly (tandem.core.hub.Sink) sends a
# message framed for that connection: one HTTP/1.1 chunk, or one WebSocket frame.
# The same bytes suit every subscriber, so each message is framed once per format.


def http_chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked HTTP/1.1 body (RFC 9112, section 7.1).

    Nothing for no data: a chunk of size 0 would end the body.
    """
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


# Stateless between calls as used here: whole messages (fin), no extensions.
_SERVER_FRAMES = FrameProtocol(client=False, extensions=[])


def websocket_text_frame(text: bytes) -> bytes:
    """UTF-8 ``text`` as one unmasked, unfragmented server text frame (RFC 6455)."""
    return bytes(_SERVER_FRAMES.send_data(text.decode(), fin=True))


def _chunked(encode: Callable[[Message], bytes]) -> Callable[[Message], bytes]:
    return lambda msg: http_chunk(encode(msg))


_WIRE_ENCODERS: dict[str, tuple[str, Callable[[Message], bytes]]] = {
    "json": ("json:chunk", _chunked(_MESSAGE_ENCODERS["json"])),
    "sse": ("sse:chunk", _chunked(_MESSAGE_ENCODERS["sse"])),
    "raw": ("raw:chunk", _chunked(_MESSAGE_ENCODERS["raw"])),
    "ws": ("ws:frame", lambda msg: websocket_text_frame(message_json(msg))),
}


def wire_message(envelope: Envelope, fmt: Format) -> bytes:
    """The message of ``envelope`` framed for the connection (see above), made once."""
    key, encode = _WIRE_ENCODERS[fmt]
    return envelope.encoded(key, encode)
