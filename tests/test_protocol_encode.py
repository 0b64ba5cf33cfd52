"""Wire encodings, the error table and the OpenAPI document."""

from __future__ import annotations

import inspect
from http import HTTPStatus
from typing import Any

import h11
import orjson
import pytest
from tests.conftest import make_message
from wsproto.frame_protocol import FrameProtocol, Opcode

from tandem.core import errors as core_errors
from tandem.core.errors import (
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    TandemError,
    Unavailable,
    Unsupported,
)
from tandem.core.hub import Envelope
from tandem.core.schemas import MessagePage, TopicStat
from tandem.core.stream import Event
from tandem.protocol.api import health_body, message_body, page_body, topics_body
from tandem.protocol.encode import (
    SSE_RETRY_MS,
    Format,
    encode_event,
    http_chunk,
    message_dict,
    message_json,
    ndjson,
    raw_line,
    sse_frame,
    websocket_text_frame,
    wire_message,
)
from tandem.protocol.errors import (
    STATUS_FOR,
    error_response,
    from_exception,
    http_error,
    internal_error,
)

BASE_KEYS = {"id", "time", "expires", "event", "topic", "message"}


FULL: dict[str, Any] = {
    "title": "Backup",
    "priority": 4,
    "tags": ("a", "b"),
    "click": "https://e.com",
}


# --- message JSON --------------------------------------------------------------------------


def test_message_dict_omits_unset_options() -> None:
    msg = make_message()
    assert message_dict(msg) == {
        "id": msg.id,
        "time": 1_700_000_000,
        "expires": 1_700_043_200,
        "event": "message",
        "topic": "alerts",
        "message": "hello",
    }


def test_message_dict_includes_set_options() -> None:
    data = message_dict(make_message(**FULL))
    assert set(data) == BASE_KEYS | {"title", "priority", "tags", "click"}
    assert (data["title"], data["priority"], data["tags"], data["click"]) == (
        "Backup",
        4,
        ["a", "b"],
        "https://e.com",
    )


@pytest.mark.parametrize("option", sorted(FULL))
def test_message_dict_includes_each_option_alone(option: str) -> None:
    data = message_dict(make_message(**{option: FULL[option]}))
    assert set(data) == BASE_KEYS | {option}


def test_message_dict_keeps_an_empty_title_but_not_empty_tags() -> None:
    # None means unset; an empty tuple of tags means no tags.
    data = message_dict(make_message(title="", tags=()))
    assert data["title"] == ""
    assert "tags" not in data


def test_message_json_and_message_body_are_the_dict() -> None:
    msg = make_message(**FULL)
    assert orjson.loads(message_json(msg)) == orjson.loads(orjson.dumps(message_dict(msg)))
    assert orjson.loads(message_body(msg)) == orjson.loads(message_json(msg))


def test_ndjson_is_one_object_per_line() -> None:
    msgs = [
        make_message(1, "one"),
        make_message(2, "two\nlines"),
        make_message(3, "three", title="t"),
    ]
    body = ndjson(msgs)
    assert body.endswith(b"\n")
    lines = body.split(b"\n")
    assert lines[-1] == b""
    assert [orjson.loads(line) for line in lines[:-1]] == [message_dict(m) for m in msgs]


def test_ndjson_of_nothing_is_empty() -> None:
    assert ndjson([]) == b""


def test_sse_frame_has_id_retry_and_data() -> None:
    msg = make_message(42, "multi\nline\r\ntext")
    frame = sse_frame(msg)
    assert frame.endswith(b"\n\n")
    fields = frame[:-2].decode().split("\n")
    assert fields == [
        f"id: {msg.id}",
        f"retry: {SSE_RETRY_MS}",
        "data: " + message_json(msg).decode(),
    ]
    assert orjson.loads(fields[2].removeprefix("data: ")) == message_dict(msg)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", b"plain\n"),
        ("two\nlines", b"two lines\n"),
        ("crlf\r\nend", b"crlf  end\n"),
        ("cr\ronly", b"cr only\n"),
        ("\N{SNOWMAN}", "\N{SNOWMAN}\n".encode()),
    ],
)
def test_raw_line_flattens_line_breaks(text: str, expected: bytes) -> None:
    line = raw_line(make_message(text=text))
    assert line == expected
    assert line.count(b"\n") == 1
    assert b"\r" not in line


# --- bytes for the connection (written to the socket directly) ---------------------------


def _read_chunked_body(*chunks: bytes) -> bytes:
    """What h11, as a client, reads from a chunked response carrying ``chunks``."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/t/sse", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    client.receive_data(head + b"".join(chunks) + b"0\r\n\r\n")
    body = b""
    while not isinstance(event := client.next_event(), h11.EndOfMessage):
        assert not isinstance(event, h11.PAUSED | h11.NEED_DATA), event
        if isinstance(event, h11.Data):
            body += event.data
    return body


@pytest.mark.parametrize("size", [0, 1, 15, 16, 255, 4096, 70_000])
def test_http_chunk_is_read_back_by_h11(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert _read_chunked_body(http_chunk(data), http_chunk(b"next")) == data + b"next"


def _read_server_frame(frame: bytes) -> tuple[Opcode, str]:
    """A server frame as wsproto, on the client's side, reads it."""
    client = FrameProtocol(client=True, extensions=[])
    client.receive_bytes(frame)
    (received,) = list(client.received_frames())
    assert received.frame_finished
    assert received.message_finished
    assert isinstance(received.payload, str)
    return received.opcode, received.payload


# Each side of the three length encodings of RFC 6455 (7, 16 and 64 bits), in bytes.
@pytest.mark.parametrize("length", [0, 125, 126, 65_535, 65_536, 200_000])
def test_websocket_text_frame_is_read_back_by_wsproto(length: int) -> None:
    text = "x" * length
    assert _read_server_frame(websocket_text_frame(text.encode())) == (Opcode.TEXT, text)


def test_websocket_text_frame_carries_utf8() -> None:
    text = '{"message":"héllo wörld ✓ 🎉"}'
    assert _read_server_frame(websocket_text_frame(text.encode())) == (Opcode.TEXT, text)


@pytest.mark.parametrize("fmt", ["json", "sse", "raw", "ws"])
def test_wire_message_is_the_stream_encoding_framed_once(fmt: Format) -> None:
    envelope = Envelope(make_message(text="héllo\nwörld", **FULL))
    wire = wire_message(envelope, fmt)
    assert wire_message(envelope, fmt) is wire  # made once, shared by every subscriber
    unframed = encode_event(Event("message", 0, "alerts", envelope), fmt)
    if fmt == "ws":
        assert _read_server_frame(wire) == (Opcode.TEXT, unframed.decode())
    else:
        assert _read_chunked_body(wire) == unframed


# --- REST bodies ---------------------------------------------------------------------------


def test_page_body() -> None:
    msgs = [make_message(1), make_message(2)]
    data = orjson.loads(page_body(MessagePage(messages=msgs, next_cursor=msgs[-1].id)))
    assert data == {"messages": [message_dict(m) for m in msgs], "next_cursor": msgs[-1].id}
    last = orjson.loads(page_body(MessagePage(messages=[], next_cursor=None)))
    assert last == {"messages": [], "next_cursor": None}


def test_topics_and_health_bodies() -> None:
    stats = [TopicStat("a", 2, 10), TopicStat("b", 0, None)]
    assert orjson.loads(topics_body(stats)) == {
        "topics": [
            {"name": "a", "messages": 2, "last_time": 10},
            {"name": "b", "messages": 0, "last_time": None},
        ]
    }
    assert orjson.loads(health_body(database="sqlite")) == {"healthy": True, "database": "sqlite"}


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 403, 404, 405, 413, 429, 500, 503])
def test_error_response_body(status: int) -> None:
    answer = error_response(status, "what went wrong")
    assert answer.status == status
    assert orjson.loads(answer.body) == {
        "error": HTTPStatus(status).phrase,
        "message": "what went wrong",
        "code": status,
    }
    assert answer.headers == {}


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (InvalidInput("bad topic"), 400),
        (NotFound("no such user"), 404),
        (PayloadTooLarge("too big"), 413),
        (Unsupported("no websockets on this door"), 501),
        (Unavailable("database down"), 503),
        (TandemError("generic"), 500),
    ],
)
def test_from_exception_maps_every_core_error(exc: TandemError, status: int) -> None:
    answer = from_exception(exc)
    assert answer.status == status
    assert orjson.loads(answer.body) == {
        "error": HTTPStatus(status).phrase,
        "message": exc.message,
        "code": status,
    }


def test_every_core_error_class_has_a_status() -> None:
    # A new error class in core/errors.py must get a row in the table, not a 500.
    classes = [
        cls
        for _, cls in inspect.getmembers(core_errors, inspect.isclass)
        if issubclass(cls, TandemError) and cls is not TandemError
    ]
    assert {InvalidInput, NotFound, PayloadTooLarge, Unavailable} <= set(classes)
    for cls in classes:
        assert cls in STATUS_FOR, f"{cls.__name__} has no HTTP status"
        assert 400 <= STATUS_FOR[cls] < 600


def test_subclass_uses_its_nearest_mapped_parent() -> None:
    class TopicTooLong(InvalidInput):
        pass

    assert from_exception(TopicTooLong("long")).status == 400


def test_unavailable_carries_retry_after() -> None:
    answer = from_exception(Unavailable("busy", retry_after=5))
    assert answer.status == 503
    assert answer.headers == {"Retry-After": "5"}
    assert from_exception(Unavailable("busy")).headers == {}


def test_other_errors_carry_no_headers() -> None:
    assert from_exception(InvalidInput("x")).headers == {}


def test_http_error_for_framework_errors() -> None:
    not_found = http_error(404, max_body=10)
    assert not_found.status == 404
    assert "openapi" in orjson.loads(not_found.body)["message"]
    not_allowed = http_error(405, allow=["GET", "POST"], max_body=10)
    assert not_allowed.headers == {"Allow": "GET, POST"}
    assert orjson.loads(not_allowed.body)["code"] == 405
    too_large = http_error(413, max_body=4096)
    assert "4096" in orjson.loads(too_large.body)["message"]
    assert orjson.loads(internal_error().body)["code"] == 500


@pytest.mark.parametrize("fmt", ["json", "sse", "ws"])
def test_icon_and_markdown_travel_on_every_json_transport(fmt: Format) -> None:
    msg = make_message(icon="https://example.com/i.png", content_type="text/markdown")
    encoded = encode_event(Event("message", 0, "alerts", Envelope(msg)), fmt).decode()
    payload = encoded.split("data: ", 1)[-1] if fmt == "sse" else encoded
    data = orjson.loads(payload.strip())
    assert (data["icon"], data["content_type"]) == ("https://example.com/i.png", "text/markdown")


def test_plain_messages_carry_neither() -> None:
    assert {"icon", "content_type"}.isdisjoint(message_dict(make_message()))
