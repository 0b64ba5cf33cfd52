"""The Quart door's direct writes (``tandem.quart_app.direct``) on real loopback sockets.

Each test runs on asyncio's own loop and on uvloop's (what hypercorn runs with
``worker_class = "uvloop"``): their transports differ, the sink must work on both.
The whole path under a real hypercorn is in ``test_e2e_direct_writes.py``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest
import uvloop
from harness.waiting import eventually_async
from tests.conftest import make_message

from tandem.core.hub import Envelope
from tandem.protocol.encode import wire_message
from tandem.quart_app.direct import SEND_KEY, SocketSink, connection_sink

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
WAIT = 20.0


def _envelope(seq: int, text: str = "hello") -> Envelope:
    return Envelope(make_message(seq, text))


Connected = Callable[[asyncio.WriteTransport, socket.socket], Awaitable[None]]


def _run_connected(loop_name: str, test: Connected) -> None:
    """Run ``test`` with the server side's transport of a real loopback TCP connection,
    and the client's blocking socket, whose small receive buffer fills up quickly."""

    async def main() -> None:
        accepted: asyncio.Future[asyncio.WriteTransport] = (
            asyncio.get_running_loop().create_future()
        )

        async def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(writer.transport)

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
        try:
            await asyncio.to_thread(client.connect, ("127.0.0.1", port))
            async with asyncio.timeout(WAIT):
                transport = await accepted
            await test(transport, client)
            transport.close()
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        runner.run(main())


def _receive(client: socket.socket, size: int) -> bytes:
    client.settimeout(WAIT)
    data = b""
    while len(data) < size:
        more = client.recv(size - len(data))
        assert more, "the server closed the connection"
        data += more
    return data


@pytest.mark.parametrize("loop_name", LOOPS)
def test_the_sink_writes_each_message_framed_for_the_connection(loop_name: str) -> None:
    async def test(transport: asyncio.WriteTransport, client: socket.socket) -> None:
        sink = SocketSink(transport, "sse", limit=10, is_open=lambda: True)
        envelopes = [_envelope(seq, f"message {seq} ✓") for seq in range(1, 4)]
        assert all(sink(envelope) for envelope in envelopes)
        expected = b"".join(wire_message(envelope, "sse") for envelope in envelopes)
        assert await asyncio.to_thread(_receive, client, len(expected)) == expected

    _run_connected(loop_name, test)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_client_that_stops_reading_is_behind_after_limit_messages(loop_name: str) -> None:
    limit = 5

    async def test(transport: asyncio.WriteTransport, client: socket.socket) -> None:
        sink = SocketSink(transport, "json", limit=limit, is_open=lambda: True)
        big = [_envelope(seq, "x" * 4000) for seq in range(1, 2001)]
        frame = len(wire_message(big[0], "json"))
        # The client reads nothing: the kernel's buffers fill, then the transport's.
        accepted = 0
        for envelope in big:
            if not sink(envelope):
                break
            accepted += 1
        else:
            pytest.fail("the sink never said the client was behind")
        buffered = transport.get_write_buffer_size()
        # At most `limit` messages were written since the buffer last held nothing.
        assert 0 < buffered <= (limit + 1) * frame, (buffered, frame)
        # Once the client catches up the buffer empties, and the sink takes more.
        await asyncio.to_thread(_receive, client, accepted * frame)
        await eventually_async(
            lambda: transport.get_write_buffer_size() == 0,
            WAIT,
            interval=0.01,
            what="the write buffer to empty",
        )
        assert sink(big[accepted])
        assert await asyncio.to_thread(_receive, client, frame) == wire_message(
            big[accepted], "json"
        )

    _run_connected(loop_name, test)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_connection_that_is_ending_gets_nothing_more(loop_name: str) -> None:
    async def test(transport: asyncio.WriteTransport, client: socket.socket) -> None:
        stream_open = True
        sink = SocketSink(transport, "raw", limit=10, is_open=lambda: stream_open)
        assert sink(_envelope(1, "one"))
        stream_open = False  # the server has ended the response: not a slow consumer
        assert sink(_envelope(2, "two"))
        transport.close()
        assert sink(_envelope(3, "three"))  # closing: nothing is written, nothing raises
        client.settimeout(WAIT)
        received = b""
        while more := await asyncio.to_thread(client.recv, 4096):
            received += more
        assert received == wire_message(_envelope(1, "one"), "raw")

    _run_connected(loop_name, test)


@pytest.mark.parametrize(
    "scope",
    [
        {},  # never wrapped by keep_send
        {SEND_KEY: None},
        {SEND_KEY: print},  # a builtin: has __self__, but not a hypercorn stream
        {SEND_KEY: lambda message: None},  # a test client's or another server's send
    ],
)
def test_without_hypercorn_streams_keep_to_asgi(scope: dict[str, object]) -> None:
    for fmt in ("json", "sse", "raw", "ws"):
        assert connection_sink(scope, fmt, 10) is None
