"""Stream messages written straight to the client's socket, under hypercorn.

A message sent through ASGI goes, for every subscriber, through a task
wake-up, Quart's response loop, hypercorn's stream, h11 or wsproto and a
locked drain: 46 to 59 µs of CPU each, so fanning one message out to 10,000
subscribers took half a second. Yet the bytes on the wire are the same for
every subscriber of a format. So, once a stream is live, the hub writes them
itself (:data:`tandem.core.hub.Sink`), framed once per message by
:func:`tandem.protocol.encode.wire_message`; keepalives and the final event
still go through ASGI.

That takes the connection's transport, which ASGI does not hand out. Under
hypercorn's asyncio and uvloop workers, for HTTP/1.1 and WebSockets upgraded
from it, the ASGI ``send`` callable is a method of hypercorn's stream object,
whose chain of ``send`` methods ends at the TCP server that owns the asyncio
writer. :func:`connection_sink` follows that chain and checks the type of every
link; anything else (HTTP/2, HTTP/1.0, trio, another server, a test client, a
hypercorn whose insides changed) gets ``None`` and keeps to plain ASGI, which
is slower and otherwise the same. ``tests/test_e2e_direct_writes.py`` checks
that the hypercorn this project installs takes the direct path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, cast

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from tandem.core.hub import Envelope, Sink
from tandem.protocol.encode import Format, wire_message

# Where keep_send() leaves the connection's ASGI send callable in the scope.
SEND_KEY = "tandem.send"

ASGIApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Coroutine[Any, Any, None]]


def keep_send(asgi_app: ASGIApp) -> ASGIApp:
    """Wrap Quart's ``asgi_app`` so that a stream can find its connection's ``send``."""

    async def app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        cast(dict[str, Any], scope)[SEND_KEY] = send
        await asgi_app(scope, receive, send)

    return app


class SocketSink:
    """Writes framed messages to one connection, and says when it falls behind.

    A connection is behind when more than ``limit`` messages were written
    while its write buffer never emptied: at most that many wait in memory,
    as with the hub's queue (``TANDEM_SUBSCRIBER_QUEUE``).
    """

    __slots__ = ("_fmt", "_limit", "_open", "_transport", "_unsent")

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        fmt: Format,
        limit: int,
        is_open: Callable[[], bool],
    ) -> None:
        self._transport = transport
        self._fmt = fmt
        self._limit = limit
        self._open = is_open
        self._unsent = 0

    def __call__(self, envelope: Envelope) -> bool:
        transport = self._transport
        if transport.is_closing() or not self._open():
            return True  # gone or ending: the ASGI side ends the stream
        if transport.get_write_buffer_size():
            self._unsent += 1
            if self._unsent > self._limit:
                return False
        else:
            self._unsent = 0
        transport.write(wire_message(envelope, self._fmt))
        return True


def connection_sink(scope: Mapping[str, object], fmt: Format, limit: int) -> Sink | None:
    """A sink for the connection of ``scope``, or ``None`` where only ASGI will do.

    Call it once the response (or the WebSocket) has started: the sink writes
    body bytes, framed as chunks of an HTTP/1.1 response or WebSocket frames.
    """
    stream = getattr(scope.get(SEND_KEY), "__self__", None)
    if isinstance(stream, HTTPStream) and fmt != "ws":

        def is_open() -> bool:
            return stream.state is ASGIHTTPState.RESPONSE

    elif isinstance(stream, WSStream) and fmt == "ws":

        def is_open() -> bool:
            return stream.state is ASGIWebsocketState.CONNECTED and not stream.closed

    else:
        return None
    protocol = getattr(stream.send, "__self__", None)
    if not isinstance(protocol, H11Protocol):  # HTTP/2 multiplexes one socket
        return None
    # h11's connection until an upgrade; HTTP/1.0 has no chunked framing (the body ends
    # at the close), and the version of a WebSocket's handshake does not matter.
    if fmt != "ws" and getattr(protocol.connection, "their_http_version", None) != b"1.1":
        return None
    server = getattr(protocol.send, "__self__", None)
    if not isinstance(server, TCPServer):
        return None
    return SocketSink(server.writer.transport, fmt, limit, is_open)
