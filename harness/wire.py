"""What Tandem's streams look like on the wire, for every client in the harness.

One definition, shared by the correctness clients (:mod:`harness.streams`, on httpx and
websockets) and the load clients (:mod:`harness.loadclients`, on bare asyncio
protocols): the stream kinds, their paths and URLs, the events and how a JSON, raw or
WebSocket event reads, how a stream resumes after a cursor, and how a benchmark
message carries its send time. Standard library only: load-client processes import it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["json", "sse", "raw", "ws"]
HTTP_KINDS: tuple[Kind, ...] = ("json", "sse", "raw")
KINDS: tuple[Kind, ...] = (*HTTP_KINDS, "ws")
# The kinds that browsers use, and that the load clients speak.
LoadKind = Literal["sse", "ws"]

# Every event a stream sends, in the order a stream may send them.
OPEN, KEEPALIVE, MESSAGE, GAP, CLOSE = "open", "keepalive", "message", "gap", "close"
EVENTS = (OPEN, KEEPALIVE, MESSAGE, GAP, CLOSE)


class StreamError(AssertionError):
    """A stream ended, failed, or did not reach a condition in time."""


def stream_path(topics: str | Sequence[str], kind: Kind) -> str:
    """``/a,b/sse``: the path of a stream of ``topics``."""
    names = topics if isinstance(topics, str) else ",".join(topics)
    return f"/{names}/{kind}"


def ws_url(base_url: str) -> str:
    return "ws" + base_url.removeprefix("http")


def stream_url(base_url: str, topics: str | Sequence[str], kind: Kind) -> str:
    url = base_url + stream_path(topics, kind)
    return ws_url(url) if kind == "ws" else url


def resume_options(
    kind: Kind, cursor: str | None, params: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Query and headers that resume after ``cursor``: SSE sends ``Last-Event-ID``,
    the others the ``last_event_id`` parameter (EventSource cannot set it)."""
    query, headers = dict(params or {}), {}
    if cursor is not None:
        if kind == "sse":
            headers["Last-Event-ID"] = cursor
        else:
            query["last_event_id"] = cursor
    return query, headers


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of a stream.

    ``kind`` is one of :data:`EVENTS` (or ``error``, an error answer on a WebSocket).
    ``data`` is the event's JSON (``None`` on raw streams, which carry text only). On
    SSE streams ``sse_id`` and ``sse_retry`` are the frame's ``id:`` and ``retry:``
    (the last ``id:`` is kept for frames without one, as EventSource does).
    """

    kind: str
    data: dict[str, Any] | None = None
    text: str = ""
    sse_id: str | None = None
    sse_retry: int | None = None

    @property
    def id(self) -> str | None:
        """The message id of a message event (not known on raw streams)."""
        if self.kind != MESSAGE or self.data is None:
            return None
        value = self.data.get("id")
        return value if isinstance(value, str) else None

    @property
    def message(self) -> str:
        """The message text of a message event."""
        if self.data is not None:
            return str(self.data.get("message", ""))
        return self.text


def event_from_json(text: str) -> StreamEvent:
    """An NDJSON line or a WebSocket text frame."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise StreamError(f"not an event object: {text!r}")
    # An error answer (a bad publish over a WebSocket) is {"error", "message", "code"}.
    kind = data.get("event", "error" if "error" in data else "unknown")
    return StreamEvent(str(kind), data, str(data.get("message", "")))


def event_from_sse_fields(event: str, data: str, sse_id: str, retry: int | None) -> StreamEvent:
    """An SSE frame's fields (an unnamed event is a message, as EventSource has it)."""
    parsed = json.loads(data) if data else None
    text = str(parsed.get("message", "")) if isinstance(parsed, dict) else data
    return StreamEvent(event or MESSAGE, parsed, text, sse_id or None, retry)


def event_from_raw(line: str, *, first: bool) -> StreamEvent:
    """A raw line: the first empty line opens the stream, later ones are keepalives."""
    if not line:
        return StreamEvent(OPEN if first else KEEPALIVE)
    if line.startswith("[gap]"):
        return StreamEvent(GAP, text=line)
    return StreamEvent(MESSAGE, text=line)


# The same events as the load clients meet them, in raw bytes: an SSE frame starts with
# its event field (a message has none), and the JSON of a WebSocket frame is compact.
SSE_EVENT_FIELD = b"event: "
SSE_OPEN, SSE_CLOSE = OPEN.encode(), CLOSE.encode()
JSON_OPEN, JSON_MESSAGE, JSON_CLOSE = (
    b'"event":"%s"' % name.encode() for name in (OPEN, MESSAGE, CLOSE)
)

# A benchmark message carries its index and send time (unix seconds) in its text, so
# that a receiver times its arrival without asking the publisher.
BENCH_PREFIX = "bench"
BENCH_MESSAGE = re.compile(rb'"message":"%s (\d+) (\d+\.\d+)"' % BENCH_PREFIX.encode())


def message_text(index: int, sent: float) -> str:
    """The text of benchmark message ``index``, sent at unix time ``sent``."""
    return f"{BENCH_PREFIX} {index} {sent:.6f}"
