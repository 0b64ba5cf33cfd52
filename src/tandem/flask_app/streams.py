"""Streams on the WSGI door: sync generators fed by the core through the portal.

Each open stream holds one gunicorn thread for its whole life, so a worker
hands out at most ``TANDEM_WSGI_STREAM_SLOTS`` of them and keeps the other
threads for ordinary requests. When the slots are taken, a new stream gets a
503 at once (never a hang); polls and publishes are not limited.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

from flask import Response, request

from tandem.bridge import CorePortal
from tandem.core import gate
from tandem.core.errors import Unavailable
from tandem.core.runtime import Runtime
from tandem.core.stream import Event, Stream
from tandem.endpoints import Subscribe
from tandem.protocol.encode import MIMETYPES, STREAM_HEADERS, Format, encode_batch, skipped_topics

RETRY_AFTER = 5
CLIENT_GONE = "client gone"


class StreamSlots:
    """A counting limit on the streams one worker process holds at once."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._in_use = 0
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self._in_use

    def acquire(self) -> None:
        """Take a slot, or raise :class:`Unavailable` (a 503 with Retry-After)."""
        with self._lock:
            if self.total == 0:
                raise Unavailable(
                    "this worker has no stream slots (too few threads, or "
                    "TANDEM_WSGI_STREAM_SLOTS=0): poll with poll=1, or subscribe "
                    "through the ASGI door",
                    retry_after=RETRY_AFTER,
                )
            if self._in_use >= self.total:
                raise Unavailable(
                    f"all {self.total} stream slots of this worker are busy: retry shortly, "
                    "poll with poll=1, or subscribe through the ASGI door",
                    retry_after=RETRY_AFTER,
                )
            self._in_use += 1

    def release(self) -> None:
        with self._lock:
            self._in_use -= 1


def stream_response(core: CorePortal, slots: StreamSlots, live: Subscribe) -> Response:
    """A stream held in one slot until the client goes away."""
    slots.acquire()
    client = request.environ.get("gunicorn.socket")
    try:
        grant, subscription = core.call(lambda rt: _open(rt, live, client))
    except BaseException:
        slots.release()
        raise
    response = Response(_chunks(core, subscription.stream, live.fmt), mimetype=MIMETYPES[live.fmt])
    response.headers.update(STREAM_HEADERS)
    response.headers.update(skipped_topics(grant.forbidden))
    # Runs however the response ends, even if its body was never iterated.
    response.call_on_close(lambda: _finish(core, slots, subscription))
    return response


async def _open(
    rt: Runtime, live: Subscribe, client: socket.socket | None
) -> tuple[gate.Grant, gate.Subscription]:
    grant = await gate.grant(rt, live.caller, live.topics)
    subscription = await gate.subscribe(rt, grant, live.request.since, live.request.filter)
    if client is not None:
        _watch_hang_up(client, subscription)
    return grant, subscription


def _watch_hang_up(client: socket.socket, subscription: gate.Subscription) -> None:
    """End the stream as soon as the client closes its connection.

    Otherwise the thread and the slot would be held until the next write
    fails, up to a keepalive interval later. The portal's loop watches the
    client socket: readable with nothing to read means the peer hung up.
    Runs on the loop; the watch ends with the subscription.
    """
    loop = asyncio.get_running_loop()
    fd = client.fileno()

    def readable() -> None:
        try:
            hung_up = not client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            hung_up = True
        loop.remove_reader(fd)  # bytes from the client (a pipelined request): stop looking
        if hung_up:
            subscription.stream.end(CLIENT_GONE)

    loop.add_reader(fd, readable)
    subscription.on_close(lambda: loop.remove_reader(fd))


async def _next(stream: Stream) -> list[Event] | None:
    return await stream.next_batch()


def _chunks(core: CorePortal, stream: Stream, fmt: Format) -> Iterator[bytes]:
    # Blocks this thread up to the keepalive interval per turn. A client that
    # went away is noticed when a write fails, at the latest on the next keepalive.
    while (batch := core.call(lambda _rt: _next(stream))) is not None:
        yield encode_batch(batch, fmt)


def _finish(core: CorePortal, slots: StreamSlots, subscription: gate.Subscription) -> None:
    slots.release()
    core.run_soon(lambda _rt: subscription.close())
