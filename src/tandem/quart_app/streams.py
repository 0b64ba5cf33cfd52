"""Streaming responses and WebSocket sessions for the Quart door."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from types import FrameType
from typing import Any

from quart import Response, Websocket

from tandem.core import gate
from tandem.core.errors import TandemError
from tandem.core.gate import Caller
from tandem.core.hub import SHUTTING_DOWN, SLOW_CONSUMER
from tandem.core.runtime import Runtime
from tandem.endpoints import Subscribe
from tandem.protocol.encode import (
    MIMETYPES,
    STREAM_HEADERS,
    Format,
    encode_batch,
    encode_event,
    message_json,
    skipped_topics,
)
from tandem.protocol.errors import from_exception
from tandem.protocol.publish import parse_ws_publish
from tandem.protocol.subscribe import SubscribeRequest
from tandem.quart_app.direct import connection_sink

log = logging.getLogger(__name__)

# RFC 6455 close codes for the reasons a hub ends a subscription.
CLOSE_CODES = {SLOW_CONSUMER: 1013, SHUTTING_DOWN: 1001}


async def stream_response(rt: Runtime, live: Subscribe, scope: Mapping[str, object]) -> Response:
    """A stream that lasts until the client or the server ends it."""
    grant = await gate.grant(rt, live.caller, live.topics)
    subscription = await gate.subscribe(rt, grant, live.request.since, live.request.filter)
    response = Response(
        _chunks(subscription, live.fmt, scope, rt.settings.subscriber_queue),
        mimetype=MIMETYPES[live.fmt],
        headers=STREAM_HEADERS | skipped_topics(grant.forbidden),
    )
    # Quart cuts responses after RESPONSE_TIMEOUT; a stream lives as long as its client.
    response.timeout = None
    return response


async def _chunks(
    subscription: gate.Subscription, fmt: Format, scope: Mapping[str, object], limit: int
) -> AsyncIterator[bytes]:
    # Quart cancels this generator when the client goes away; finally leaves the hub.
    try:
        # The stream switches once it is live: after this response's head and first events.
        _write_through(subscription, scope, fmt, limit)
        async for batch in subscription.stream.batches():
            yield encode_batch(batch, fmt)
    finally:
        subscription.close()


def _write_through(
    subscription: gate.Subscription, scope: Mapping[str, object], fmt: Format, limit: int
) -> None:
    """Let the hub write live messages to the socket itself, where the server allows."""
    sink = connection_sink(scope, fmt, limit)
    if sink is not None:
        subscription.stream.write_through(sink)


async def websocket_session(
    rt: Runtime, ws: Websocket, caller: Caller, topics: tuple[str, ...], sub: SubscribeRequest
) -> None:
    """Send the subscription's events as text frames; accept publishes from the client.

    Access is checked before the handshake is accepted: a refused caller gets
    the JSON error as the HTTP answer to its upgrade request.
    """
    grant = await gate.grant(rt, caller, topics)
    if sub.poll:
        # As on the HTTP kinds: the stored messages, then the end of the conversation.
        messages = await gate.poll(rt, grant, sub.since, sub.filter)
        await ws.accept(headers=skipped_topics(grant.forbidden))
        for msg in messages:
            await ws.send(message_json(msg).decode())
        await ws.close(1000)
        return
    subscription = await gate.subscribe(rt, grant, sub.since, sub.filter)
    receiver: asyncio.Task[None] | None = None
    try:
        await ws.accept(headers=skipped_topics(grant.forbidden))
        receiver = asyncio.create_task(_receive_publishes(rt, ws, grant.visitor, topics))
        _write_through(subscription, ws.scope, "ws", rt.settings.subscriber_queue)
        async for batch in subscription.stream.batches():
            for event in batch:
                await ws.send(encode_event(event, "ws").decode())
            if batch and batch[-1].kind == "close":
                reason = batch[-1].detail or ""
                await ws.close(CLOSE_CODES.get(reason, 1011), reason)
                return
    finally:
        if receiver is not None:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
        subscription.close()


async def _receive_publishes(
    rt: Runtime, ws: Websocket, visitor: gate.Visitor, topics: tuple[str, ...]
) -> None:
    max_body = rt.settings.max_body
    while True:
        data = await ws.receive()
        try:
            new = parse_ws_publish(data, topics=topics, max_body=max_body)
            await gate.publish_as(rt, visitor, new)
        except TandemError as exc:
            # A bad or refused publish is answered on the socket; the subscription goes on.
            await ws.send(from_exception(exc).body.decode())


async def close_streams_on_signal(rt: Runtime) -> Callable[[], None]:
    """End streams as soon as SIGTERM or SIGINT arrives; return a function that undoes it.

    hypercorn waits for open connections before it runs the lifespan shutdown,
    and a stream never ends by itself: without this, every stream would be cut
    at ``graceful_timeout`` instead of being told to resume elsewhere.

    The hook is a Python-level handler beside the server's own: the event loop
    learns of the signal through its wakeup fd either way, so hypercorn's
    handler still runs. Where the handler is the default (a child of
    ``hypercorn -w N``, whose parent decides when it stops), nothing is added.
    """
    loop = asyncio.get_running_loop()
    restore: list[tuple[int, Any]] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue

        def on_signal(sig: int, frame: FrameType | None, previous: Any = previous) -> None:
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                loop.call_soon_threadsafe(rt.begin_shutdown)
            previous(sig, frame)

        try:
            signal.signal(signum, on_signal)
        except ValueError:  # not the main thread: leave signals to whoever owns them
            continue
        restore.append((signum, previous))

    def undo() -> None:
        for signum, previous in restore:
            with contextlib.suppress(ValueError):
                signal.signal(signum, previous)

    return undo
