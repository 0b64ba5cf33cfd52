"""Async clients for Tandem's streams, for end-to-end tests and benchmarks.

A :class:`Subscription` reads one stream in a background task into a list of
:class:`StreamEvent` and lets the caller wait, with a timeout, for a condition:

    async with subscribe("sse", server.url, "alerts") as sub:   # returns after "open"
        async with http_client() as http:
            sent = await publish(http, other.url, "alerts", "hi")
        [event] = await sub.wait_messages(1)
        assert event.id == sent["id"]

Kinds: ``sse`` (httpx-sse), ``json`` (NDJSON lines), ``raw`` (text lines), ``ws``
(the ``websockets`` library); :mod:`harness.wire` defines them, their URLs and
their events for these clients and the load clients alike. :class:`Follower`
reconnects by cursor, the way EventSource does, and keeps the messages of all its
connections.
Everything talks to loopback directly: no proxy from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Self

import httpx
from httpx_sse import EventSource, ServerSentEvent
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from harness.waiting import describe, eventually_async
from harness.wire import (
    HTTP_KINDS,
    KINDS,
    Kind,
    StreamError,
    StreamEvent,
    event_from_json,
    event_from_raw,
    event_from_sse_fields,
    resume_options,
    stream_url,
    ws_url,
)

__all__ = [
    "HTTP_KINDS",
    "KINDS",
    "TIMEOUT",
    "Follower",
    "Kind",
    "StreamError",
    "StreamEvent",
    "Subscription",
    "answered",
    "event_from_json",
    "event_from_raw",
    "event_from_sse",
    "http_client",
    "json_error",
    "parse_body",
    "parse_sse_text",
    "poll",
    "publish",
    "publish_many",
    "resume_options",
    "stream_url",
    "stream_usage_until",
    "subscribe",
    "ws_url",
]

TIMEOUT = 20.0
# Connect and write timeouts; reads wait as long as the stream lives (callers time out).
_HTTP_TIMEOUT = httpx.Timeout(10.0, read=None)


def event_from_sse(sse: ServerSentEvent) -> StreamEvent:
    return event_from_sse_fields(sse.event, sse.data, sse.id, sse.retry)


def parse_sse_text(text: str) -> list[StreamEvent]:
    """Every event of a complete SSE body (a ``poll=1`` answer, for example)."""
    body = httpx.Response(200, headers={"content-type": "text/event-stream"}, text=text)
    # EventSource dispatches no event without data.
    return [event_from_sse(sse) for sse in EventSource(body).iter_sse() if sse.data]


def parse_body(kind: Kind, text: str) -> list[StreamEvent]:
    """The events of a complete body of ``kind``; raw lines are all messages here."""
    if kind == "sse":
        return parse_sse_text(text)
    if kind == "raw":
        return [StreamEvent("message", text=line) for line in text.splitlines()]
    return [event_from_json(line) for line in text.splitlines() if line]


def http_client(
    base_url: str = "", *, timeout: float = 30.0, connections: int = 100
) -> httpx.AsyncClient:
    """An httpx client that never goes through a proxy from the environment."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=timeout, limits=limits)


def _small_buffer_socket(rcvbuf: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Set before connecting, so the kernel neither autotunes it nor offers a large window.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    return sock


class _Received:
    """What a client has received so far, and the cursor to resume from. The client
    reads in a background task, from :meth:`start` until :meth:`aclose` (or the end of
    its ``async with`` block)."""

    messages: list[StreamEvent]
    _task: asyncio.Task[None] | None

    async def start(self) -> Self:
        raise NotImplementedError

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def last_id(self) -> str | None:
        """The id of the last message received: the cursor to resume from."""
        return self.messages[-1].id if self.messages else None

    @property
    def message_ids(self) -> list[str | None]:
        return [event.id for event in self.messages]


class Subscription(_Received):
    """One stream, read in a background task into :attr:`events`.

    ``rcvbuf`` shrinks the client's receive buffer; with :meth:`pause` that makes a
    client that stops reading and lets the server's writes back up. After the end
    of the stream, ``error`` holds what cut it (``None`` for a clean end),
    ``close_code`` the WebSocket close code, and for an answer that was not a
    stream, ``status``, ``headers`` and ``body`` hold it.
    """

    def __init__(
        self,
        kind: Kind,
        base_url: str,
        topics: str | Sequence[str],
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        rcvbuf: int | None = None,
        on_event: Callable[[StreamEvent], None] | None = None,
    ) -> None:
        self.kind = kind
        self.url = stream_url(base_url, topics, kind)
        self.params = dict(params or {})
        self.headers = dict(headers or {})
        self.rcvbuf = rcvbuf
        self.on_event = on_event
        self.events: list[StreamEvent] = []
        self.messages: list[StreamEvent] = []
        self.status: int | None = None
        self.response_headers: httpx.Headers | None = None
        self.body = b""
        self.close_code: int | None = None
        self.close_reason = ""
        self.error: BaseException | None = None
        self.ended = False
        self._changed = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None

    def __repr__(self) -> str:
        kinds = [event.kind for event in self.events[-5:]]
        state = f"ended ({self.error!r}, close code {self.close_code})" if self.ended else "open"
        return (
            f"<Subscription {self.kind} {self.url} {self.params} status={self.status} {state}, "
            f"{len(self.events)} events, {len(self.messages)} messages, last {kinds}>"
        )

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]

    async def start(self, *, wait_open: bool = True, timeout: float = TIMEOUT) -> Self:
        """Connect and start reading; by default, return once the ``open`` event arrived."""
        self._task = asyncio.create_task(self._run(), name=f"stream {self.url}")
        if wait_open:
            await self.wait_for(lambda events: bool(events), timeout, "the first event")
            if self.events[0].kind != "open":
                raise StreamError(f"the first event is not open: {self!r}")
        return self

    async def aclose(self) -> None:
        """Disconnect, as a client that goes away does."""
        self._running.set()
        await super().aclose()

    def pause(self) -> None:
        """Stop reading; what the server sends backs up in the socket buffers."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    async def send(self, payload: Mapping[str, Any] | str) -> None:
        """Send a text frame on a WebSocket stream (a publish, for example)."""
        if self._ws is None:
            raise StreamError(f"not a connected WebSocket: {self!r}")
        await self._ws.send(payload if isinstance(payload, str) else json.dumps(payload))

    async def wait_for(
        self,
        predicate: Callable[[list[StreamEvent]], bool],
        timeout: float = TIMEOUT,
        what: str = "a condition",
    ) -> list[StreamEvent]:
        """Wait until ``predicate(events)`` holds; fail if the stream ends first."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self.events):
                    if self.ended:
                        raise StreamError(f"the stream ended before {what}: {self!r}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise StreamError(f"no {what} within {timeout} s: {self!r}") from None
        return self.events

    async def wait_messages(self, count: int, timeout: float = TIMEOUT) -> list[StreamEvent]:
        """Wait until at least ``count`` messages arrived; return all messages so far."""
        await self.wait_for(lambda _: len(self.messages) >= count, timeout, f"{count} messages")
        return self.messages

    async def wait_event(self, kind: str, timeout: float = TIMEOUT) -> StreamEvent:
        """Wait for the first event of ``kind`` and return it."""
        found: list[StreamEvent] = []

        def seen(events: list[StreamEvent]) -> bool:
            found[:] = [event for event in events if event.kind == kind][:1]
            return bool(found)

        await self.wait_for(seen, timeout, f"a {kind!r} event")
        return found[0]

    async def wait_ended(self, timeout: float | None = TIMEOUT) -> Self:
        """Wait until the server ends the stream (or the connection is cut)."""
        try:
            async with asyncio.timeout(timeout):
                while not self.ended:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise StreamError(f"the stream did not end within {timeout} s: {self!r}") from None
        return self

    def _notify(self) -> None:
        self._changed.set()

    async def _run(self) -> None:
        try:
            async for event in self._read():
                await self._running.wait()
                self.events.append(event)
                if event.kind == "message":
                    self.messages.append(event)
                if self.on_event is not None:
                    self.on_event(event)
                self._notify()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection was cut: keep it for the test to see
            self.error = exc
        finally:
            self.ended = True
            self._notify()

    def _read(self) -> AsyncIterator[StreamEvent]:
        return self._read_ws() if self.kind == "ws" else self._read_http()

    async def _read_http(self) -> AsyncIterator[StreamEvent]:
        options = [(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)] if self.rcvbuf else None
        headers = dict(self.headers)
        if self.kind == "sse":  # what EventSource sends
            headers.setdefault("Accept", "text/event-stream")
            headers.setdefault("Cache-Control", "no-store")
        transport = httpx.AsyncHTTPTransport(trust_env=False, socket_options=options)
        async with (
            httpx.AsyncClient(transport=transport, trust_env=False, timeout=_HTTP_TIMEOUT) as c,
            c.stream("GET", self.url, params=self.params, headers=headers) as response,
        ):
            self.status, self.response_headers = response.status_code, response.headers
            if response.status_code != 200:
                self.body = await response.aread()
                return
            if self.kind == "sse":
                async for sse in EventSource(response).aiter_sse():
                    if sse.data:  # EventSource dispatches no event without data
                        yield event_from_sse(sse)
            elif self.kind == "json":
                async for line in response.aiter_lines():
                    if line:
                        yield event_from_json(line)
            else:
                first = True
                async for line in response.aiter_lines():
                    yield event_from_raw(line, first=first)
                    first = False

    async def _read_ws(self) -> AsyncIterator[StreamEvent]:
        url = str(httpx.URL(self.url, params=self.params))
        extra: dict[str, Any] = {}
        if self.rcvbuf:
            sock = _small_buffer_socket(self.rcvbuf)
            host, port = httpx.URL(self.url).host, httpx.URL(self.url).port
            await asyncio.get_running_loop().sock_connect(sock, (host, port or 80))
            # A small queue too, or the library keeps reading into memory for us.
            extra = {"sock": sock, "max_queue": 1}
        try:
            async with connect(
                url,
                proxy=None,
                additional_headers=self.headers,
                open_timeout=10,
                close_timeout=2,
                ping_interval=None,
                max_size=None,
                compression=None,
                **extra,
            ) as ws:
                self._ws, self.status = ws, 101
                try:
                    async for frame in ws:
                        yield event_from_json(frame if isinstance(frame, str) else frame.decode())
                except ConnectionClosed:
                    pass  # the code is below; an abnormal close also sets error
                self.close_code, self.close_reason = ws.close_code, ws.close_reason or ""
                if self.close_code not in (1000, 1001):
                    self.error = StreamError(f"WebSocket closed with {self.close_code}")
        except InvalidStatus as exc:
            self.status = exc.response.status_code
            self.response_headers = httpx.Headers(dict(exc.response.headers.raw_items()))
            self.body = bytes(exc.response.body or b"")
        finally:
            self._ws = None


@contextlib.asynccontextmanager
async def subscribe(
    kind: Kind,
    base_url: str,
    topics: str | Sequence[str],
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    wait_open: bool = True,
    rcvbuf: int | None = None,
    timeout: float = TIMEOUT,
) -> AsyncIterator[Subscription]:
    """Open a :class:`Subscription` for the ``with`` block; leaving it disconnects."""
    sub = Subscription(kind, base_url, topics, params=params, headers=headers, rcvbuf=rcvbuf)
    try:
        yield await sub.start(wait_open=wait_open, timeout=timeout)
    finally:
        await sub.aclose()


@contextlib.asynccontextmanager
async def answered(
    kind: Kind,
    base_url: str,
    topics: str | Sequence[str],
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[Subscription]:
    """:func:`subscribe`, once the server answered: the first event, or an answer that
    is not a stream (then ``status``, ``response_headers`` and ``body`` hold it)."""
    async with subscribe(
        kind, base_url, topics, params=params, headers=headers, wait_open=False
    ) as sub:
        await sub.wait_for(lambda events: bool(events) or sub.ended, what="an answer")
        yield sub


class Follower(_Received):
    """A subscriber that reconnects by cursor whenever its stream ends or is cut.

    Connection ``n`` goes to ``urls[min(n, len(urls) - 1)]``, so ``[a, b]`` means
    "start on a, fail over to b". Only messages are kept, from every connection,
    in the order received; ``ends`` says how each connection ended.
    """

    def __init__(
        self,
        kind: Kind,
        urls: Sequence[str],
        topics: str | Sequence[str],
        *,
        params: Mapping[str, str] | None = None,
        max_connects: int = 50,
        retry_delay: float = 0.1,
    ) -> None:
        if not urls:
            raise ValueError("give at least one server URL")
        self.kind = kind
        self.urls = list(urls)
        self.topics = topics
        self.params = dict(params or {})
        self.max_connects = max_connects
        self.retry_delay = retry_delay
        self.messages: list[StreamEvent] = []
        self.ends: list[str] = []
        self.connects = 0
        self.opened = 0
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (
            f"<Follower {self.kind} {self.urls} {len(self.messages)} messages, "
            f"{self.connects} connects, ends {self.ends[-5:]}, error {self.error!r}>"
        )

    async def start(self, timeout: float = TIMEOUT) -> Self:
        """Connect and return once the first stream is open."""
        self._task = asyncio.create_task(self._run(), name=f"follower {self.kind}")
        await self._wait(lambda: self.opened > 0, timeout, "the first open event")
        return self

    async def wait_messages(self, count: int, timeout: float = TIMEOUT) -> list[StreamEvent]:
        await self._wait(lambda: len(self.messages) >= count, timeout, f"{count} messages")
        return self.messages

    async def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    if self._task is not None and self._task.done():
                        raise StreamError(f"the follower gave up before {what}: {self!r}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise StreamError(f"no {what} within {timeout} s: {self!r}") from None

    async def _run(self) -> None:
        try:
            while self.connects < self.max_connects:
                url = self.urls[min(self.connects, len(self.urls) - 1)]
                self.connects += 1
                await self._follow_once(url)
                await asyncio.sleep(self.retry_delay)  # a reconnect backoff, as EventSource's
            raise StreamError(f"gave up after {self.max_connects} connections")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error = exc
        finally:
            self._changed.set()

    async def _follow_once(self, url: str) -> None:
        query, headers = resume_options(self.kind, self.last_id, self.params)
        sub = Subscription(
            self.kind, url, self.topics, params=query, headers=headers, on_event=self._on_event
        )
        try:
            await sub.start(wait_open=False)
            await sub.wait_ended(timeout=None)
            closing = [event.text for event in sub.events[-1:] if event.kind == "close"]
            self.ends.append(
                f"{url}: status {sub.status}, close {closing or sub.close_code}, {sub.error!r}"
            )
        finally:
            await sub.aclose()

    def _on_event(self, event: StreamEvent) -> None:
        if event.kind == "open":
            self.opened += 1
        elif event.kind == "message":
            self.messages.append(event)
        self._changed.set()


async def publish(
    client: httpx.AsyncClient,
    base_url: str,
    topic: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Publish through ``POST /<topic>`` and return the stored message; raise unless 200."""
    response = await client.post(
        f"{base_url}/{topic}", content=message.encode(), headers=dict(headers or {})
    )
    if response.status_code != 200:
        raise StreamError(f"publish to {base_url} answered {response.status_code}: {response.text}")
    sent: dict[str, Any] = response.json()
    return sent


async def stream_usage_until(
    client: httpx.AsyncClient,
    done: Callable[[dict[str, Any]], bool],
    *,
    base_url: str = "",
    timeout: float = TIMEOUT,
) -> dict[str, Any]:
    """Poll ``GET /api/v1/streams`` until ``done(answer)``; return that answer."""

    async def usage() -> dict[str, Any] | None:
        answer: dict[str, Any] = (await client.get(f"{base_url}/api/v1/streams")).json()
        return answer if done(answer) else None

    return await eventually_async(
        usage, timeout, what=f"GET /api/v1/streams to satisfy {describe(done)}"
    )


async def publish_many(
    client: httpx.AsyncClient,
    base_url: str,
    topic: str,
    texts: Iterable[str],
    *,
    concurrency: int = 8,
    on_published: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Publish ``texts`` with ``concurrency`` requests in flight; return the stored
    messages in the order of ``texts``. ``on_published(count)`` follows progress."""
    work = list(enumerate(texts))
    results: list[dict[str, Any] | None] = [None] * len(work)
    queue = iter(work)
    done = 0

    async def worker() -> None:
        nonlocal done
        for index, text in queue:
            results[index] = await publish(client, base_url, topic, text)
            done += 1
            if on_published is not None:
                on_published(done)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return [result for result in results if result is not None]


async def poll(
    client: httpx.AsyncClient,
    base_url: str,
    topics: str | Sequence[str],
    kind: Kind = "json",
    *,
    params: Mapping[str, str] | None = None,
) -> list[StreamEvent]:
    """The stored messages of ``topics`` (``poll=1``); raise unless 200.

    On ``ws`` the server sends the stored messages and closes the socket.
    """
    if kind == "ws":
        query = {"poll": "1", **(params or {})}
        async with subscribe(kind, base_url, topics, params=query, wait_open=False) as sub:
            await sub.wait_ended()
        if sub.status != 101 or sub.error is not None:
            raise StreamError(f"ws poll failed: {sub!r}")
        return sub.events
    url = stream_url(base_url, topics, kind)
    response = await client.get(url, params={"poll": "1", **(params or {})})
    if response.status_code != 200:
        raise StreamError(f"poll {url} answered {response.status_code}: {response.text}")
    return parse_body(kind, response.text)


def json_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """Check that ``response`` is Tandem's JSON error with ``status``; return its body."""
    context = f"{response.request.method} {response.url}: {response.status_code} {response.text}"
    if response.status_code != status:
        raise StreamError(f"expected {status}, got {context}")
    if not response.headers.get("content-type", "").startswith("application/json"):
        raise StreamError(f"not a JSON error: {context}")
    body: dict[str, Any] = response.json()
    if set(body) != {"error", "message", "code"} or body["code"] != status:
        raise StreamError(f"not Tandem's JSON error: {context}")
    if body["error"] != HTTPStatus(status).phrase or not body["message"]:
        raise StreamError(f"not Tandem's JSON error: {context}")
    return body
