"""End to end: a real hypercorn writes live messages straight to the sockets.

``tandem.quart_app.direct`` reaches below ASGI into hypercorn's connection
objects. These tests pin that down against the hypercorn this project
installs: every stream kind switches to direct writes (``/api/v1/streams``
counts them), real clients read what it writes, keepalives and errors still
go through ASGI in between, and a client the direct path cannot serve (HTTP/1.0,
no chunked framing) is served through ASGI instead.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from harness.serverprocess import ServerProcess
from harness.servers import ServerPool, assert_no_tracebacks, hypercorn
from harness.streams import Subscription, http_client, publish, stream_usage_until
from harness.wire import KINDS

pytestmark = pytest.mark.e2e

WAIT = 20.0
# Room for a message above 65,535 bytes: the 64-bit WebSocket length and a long chunk.
ENV = {"TANDEM_KEEPALIVE_INTERVAL": "1s", "TANDEM_MAX_BODY": "100000"}
TEXTS = [
    "short",
    "ünïcödé ✓ and emoji 🎉",
    "several\nlines\r\nof text",
    "x" * 200,  # a 16-bit WebSocket length
    "y" * 70_000,  # a 64-bit one
]


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def asgi(server_pool: ServerPool, migrated_sqlite_url: str) -> ServerProcess:
    (server,) = server_pool.start(hypercorn(migrated_sqlite_url, env=ENV))
    return server


async def test_every_kind_is_written_directly_and_read_back_by_real_clients(
    asgi: ServerProcess,
) -> None:
    topic, second = _topic("direct"), _topic("direct")
    subs = [Subscription(kind, asgi.url, topic) for kind in KINDS]
    subs.append(Subscription("ws", asgi.url, [topic, second]))
    try:
        await asyncio.gather(*(sub.start() for sub in subs))
        async with http_client(asgi.url) as http:
            usage = await stream_usage_until(http, lambda u: u.get("direct") == len(subs))
            assert usage["in_use"] == len(subs), usage
            sent = [await publish(http, asgi.url, topic, text) for text in TEXTS]
            await asyncio.gather(*(sub.wait_messages(len(sent)) for sub in subs))

            # Between messages written directly, keepalives come through ASGI ...
            for sub in subs:
                await sub.wait_event("keepalive")
            # ... and so do the answers to publishes over the socket.
            ws_both = subs[-1]
            await ws_both.send({"message": "which topic?"})
            await ws_both.wait_event("error")
            later = await publish(http, asgi.url, second, "on the second topic")
            end = await publish(http, asgi.url, topic, "end")
            await asyncio.gather(*(sub.wait_messages(len(sent) + 1) for sub in subs[:-1]))
            await ws_both.wait_messages(len(sent) + 2)
    finally:
        await asyncio.gather(*(sub.aclose() for sub in subs))

    for sub in subs[:-1]:
        if sub.kind == "raw":  # one line per message: line breaks become spaces
            flat = [text.replace("\r", " ").replace("\n", " ") for text in TEXTS]
            assert [event.text for event in sub.messages] == [*flat, "end"], sub
        else:
            assert [event.data for event in sub.messages] == [*sent, end], sub
        assert set(sub.kinds()) == {"open", "message", "keepalive"}, sub
    assert [event.data for event in ws_both.messages] == [*sent, later, end], ws_both
    assert ws_both.kinds().count("error") == 1, ws_both

    async with http_client(asgi.url) as http:
        await stream_usage_until(http, lambda u: (u.get("in_use"), u.get("direct")) == (0, 0))
    assert_no_tracebacks(asgi)


async def test_an_http_1_0_client_gets_an_unchunked_stream_through_asgi(
    asgi: ServerProcess,
) -> None:
    """HTTP/1.0 has no chunked bodies: the stream must not switch to chunks written
    directly. curl speaks real HTTP/1.0 here."""
    topic = _topic("http10")
    curl = await asyncio.create_subprocess_exec(
        "curl", "--silent", "--no-buffer", "--http1.0", "--include", f"{asgi.url}/{topic}/raw",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert curl.stdout is not None
    try:
        async with asyncio.timeout(WAIT):
            status = await curl.stdout.readline()
            assert status.split()[1] == b"200", status  # h11 says HTTP/1.1 even so
            head = [status]
            while (line := await curl.stdout.readline()) not in (b"\r\n", b""):
                head.append(line)
            assert not any(h.lower().startswith(b"transfer-encoding") for h in head), head
            assert await curl.stdout.readline() == b"\n"  # the open event, on a raw stream
        async with http_client(asgi.url) as http:
            usage = await stream_usage_until(http, lambda u: u.get("in_use") == 1)
            assert usage["direct"] == 0, usage
            for text in ("one", "two"):
                await publish(http, asgi.url, topic, text)
            lines: list[bytes] = []
            async with asyncio.timeout(WAIT):
                while len(lines) < 2:
                    line = await curl.stdout.readline()
                    assert line, "the stream ended"
                    if line != b"\n":  # keepalives are empty lines
                        lines.append(line)
        assert lines == [b"one\n", b"two\n"]
    finally:
        curl.kill()
        await curl.wait()
    assert_no_tracebacks(asgi)
