"""End to end: every stream kind on both doors, with real servers and real clients.

gunicorn (Flask) and hypercorn (Quart) run as real processes on 127.0.0.1; the
clients are httpx, httpx-sse and websockets (``tests/streamclients.py``). Most
tests share one gunicorn and one hypercorn on one SQLite file (module scope),
each with topics of its own; the PostgreSQL and retention tests start their own.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness.databases import REDIS_URL, copy_sqlite, migrate, wait_redis_subscribers
from harness.environment import server_env
from harness.processes import REPO_ROOT, executable
from harness.serverprocess import ServerProcess
from harness.servers import (
    Doors,
    ServerPool,
    assert_no_tracebacks,
    gunicorn,
    hypercorn,
    serve_doors,
)
from harness.streams import Subscription, http_client, json_error, poll, publish, subscribe
from harness.waiting import eventually_async
from harness.wire import KINDS, Kind, StreamEvent, resume_options

from tandem.core.stream import GAP_NOTICE
from tandem.protocol.encode import SSE_RETRY_MS

pytestmark = pytest.mark.e2e

KEEPALIVE = {"TANDEM_KEEPALIVE_INTERVAL": "1s"}
# Enough stream slots that the streams these tests hold at once never take them all,
# even on one worker and with the slots of closed streams not yet given back (a
# worker notices a client has gone when a keepalive write fails).
DOORS_ENV = {**KEEPALIVE, "TANDEM_WSGI_STREAM_SLOTS": "16"}
# Every (door, kind) that streams: WebSocket only on the ASGI door.
CASES = [("gunicorn", kind) for kind in KINDS if kind != "ws"] + [
    ("hypercorn", kind) for kind in KINDS
]


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _ids(messages: Sequence[dict[str, Any]]) -> list[str]:
    return [message["id"] for message in messages]


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Doors]:
    """gunicorn (2 workers) and hypercorn on one SQLite file, keepalive every second."""
    root = tmp_path_factory.mktemp("e2e-streams")
    db = copy_sqlite(sqlite_template, root / "tandem.db")
    with serve_doors(db, root / "servers", env=DOORS_ENV, workers=2, threads=24) as started:
        yield started


def _assert_delivered(sub: Subscription, sent: Sequence[dict[str, Any]]) -> None:
    """``sub`` received exactly ``sent``, in order: the same JSON (text on raw streams)."""
    if sub.kind == "raw":
        assert [event.text for event in sub.messages] == [m["message"] for m in sent], sub
        return
    assert [event.data for event in sub.messages] == list(sent), sub
    if sub.kind == "sse":
        _assert_sse_frames(sub.events)


def _assert_sse_frames(events: Sequence[StreamEvent]) -> None:
    """Message frames carry ``id:`` (the message id) and ``retry:``; the others name
    their event in ``event:``, the same as in their JSON."""
    for event in events:
        assert event.data is not None, event
        assert event.data["event"] == event.kind, event
        if event.kind == "message":
            assert event.sse_id == event.data["id"], event
            assert event.sse_retry == SSE_RETRY_MS, event


@pytest.mark.parametrize(("door_name", "kind"), CASES)
async def test_stream_kind_on_each_door(doors: Doors, door_name: str, kind: Kind) -> None:
    """Open first; messages published through the other door; keepalive when idle;
    two topics on one connection; a filter; then ``poll=1`` on the same kind."""
    door = doors.named(door_name)
    other = doors.other(door)
    topic, second = _topic(kind), _topic(kind)
    async with (
        http_client() as http,
        subscribe(kind, door.url, topic) as single,
        subscribe(kind, door.url, [topic, second]) as both,
        subscribe(kind, door.url, topic, params={"tags": "keep"}) as filtered,
    ):
        for sub in (single, both, filtered):
            assert sub.events[0].kind == "open", sub  # start() waited for the first event
        one = await publish(http, other.url, topic, "one", headers={"Tags": "drop"})
        two = await publish(http, other.url, second, "two")
        three = await publish(
            http, other.url, topic, "three", headers={"Tags": "keep,x", "Title": "t"}
        )
        await single.wait_messages(2)
        await both.wait_messages(3)
        await filtered.wait_messages(1)
        # Messages arrive in order, so the filtered-out "one" would have come first.
        _assert_delivered(single, [one, three])
        _assert_delivered(both, [one, two, three])
        _assert_delivered(filtered, [three])
        if kind != "raw":
            assert [(event.data or {}).get("topic") for event in both.messages] == [
                topic,
                second,
                topic,
            ]

        # Nothing more is published: the stream says it is alive.
        keepalive = await single.wait_event("keepalive")
        assert set(single.kinds()[1:]) == {"message", "keepalive"}, single
        if kind != "raw":
            assert keepalive.data is not None
            assert keepalive.data["topic"] == topic
        if kind == "sse":
            _assert_sse_frames(single.events)

        # poll=1 answers with the stored messages, in the stream's own format, and ends.
        stored = await poll(http, door.url, topic, kind)
        both_stored = await poll(http, door.url, [topic, second], kind)
        filtered_stored = await poll(http, door.url, topic, kind, params={"tags": "keep"})
    if kind == "raw":
        assert [event.text for event in stored] == ["one", "three"]
        assert [event.text for event in both_stored] == ["one", "two", "three"]
        assert [event.text for event in filtered_stored] == ["three"]
    else:
        assert [event.data for event in stored] == [one, three]
        assert [event.data for event in both_stored] == [one, two, three]
        assert [event.data for event in filtered_stored] == [three]
    if kind == "sse":
        _assert_sse_frames(stored)


async def test_each_door_delivers_what_the_other_published_on_every_kind(doors: Doors) -> None:
    """One SQLite file: every stream on either door gets the publishes of both, in order."""
    topic = _topic("both")
    subs = [Subscription(kind, doors.named(door).url, topic) for door, kind in CASES]
    try:
        await asyncio.gather(*(sub.start() for sub in subs))
        async with http_client() as http:
            sent = [
                await publish(http, doors.wsgi.url, topic, "through gunicorn"),
                await publish(http, doors.asgi.url, topic, "through hypercorn"),
                await publish(http, doors.wsgi.url, topic, "gunicorn again"),
            ]
        await asyncio.gather(*(sub.wait_messages(len(sent)) for sub in subs))
        for sub in subs:
            _assert_delivered(sub, sent)
    finally:
        await asyncio.gather(*(sub.aclose() for sub in subs))


async def test_websocket_publishes_over_the_socket(doors: Doors) -> None:
    topic, second = _topic("wspub"), _topic("wspub")
    async with (
        http_client() as http,
        subscribe("ws", doors.asgi.url, topic) as single,
        subscribe("ws", doors.asgi.url, [topic, second]) as both,
        subscribe("sse", doors.wsgi.url, [topic, second]) as listener,
    ):
        await single.send({"message": "over the socket", "title": "ws", "tags": ["a"]})
        [sent] = await single.wait_messages(1)
        assert sent.data is not None
        assert (sent.data["topic"], sent.data["title"], sent.data["tags"]) == (topic, "ws", ["a"])

        # Two topics: a publish must name one; the error is answered on the socket.
        await both.send({"message": "which topic?"})
        error = await both.wait_event("error")
        assert error.data is not None
        assert (error.data["code"], error.data["error"]) == (400, "Bad Request")
        await both.send({"topic": second, "message": "named"})
        messages = await both.wait_messages(2)
        assert [event.message for event in messages] == ["over the socket", "named"]
        assert both.kinds()[:4] == ["open", "message", "error", "message"], both

        # Stored, and delivered through the other door.
        await listener.wait_messages(2)
        assert listener.message_ids == [event.id for event in messages]
        stored = await poll(http, doors.wsgi.url, [topic, second])
        assert [event.data for event in stored] == [event.data for event in messages]


async def test_websocket_on_the_wsgi_door_is_501(doors: Doors) -> None:
    topic = _topic("nows")
    async with http_client() as http:
        body = json_error(await http.get(f"{doors.wsgi.url}/{topic}/ws"), 501)
    assert "WebSocket" in body["message"]
    # A real handshake gets the same answer, not a hang.
    async with subscribe("ws", doors.wsgi.url, topic, wait_open=False) as refused:
        await refused.wait_ended()
    assert refused.status == 501, refused
    error = json.loads(refused.body)
    assert (error["code"], error["error"]) == (501, "Not Implemented"), error
    assert "WebSocket" in error["message"], error


RESUMES = [
    ("sse", "hypercorn", "hypercorn"),
    ("json", "hypercorn", "hypercorn"),
    ("ws", "hypercorn", "hypercorn"),
    ("sse", "gunicorn", "gunicorn"),
    ("sse", "hypercorn", "gunicorn"),
    ("json", "hypercorn", "gunicorn"),
    ("ws", "gunicorn", "hypercorn"),
]


@pytest.mark.parametrize(
    ("kind", "first", "then"), RESUMES, ids=[f"{k}-{a}-to-{b}" for k, a, b in RESUMES]
)
async def test_resume_after_a_disconnect(doors: Doors, kind: Kind, first: str, then: str) -> None:
    """Read some, disconnect, miss some, reconnect with the cursor (SSE: the
    ``Last-Event-ID`` header; others: ``last_event_id``): exactly the missed ones."""
    topic = _topic(f"resume-{kind}")
    # A WebSocket cannot be opened on gunicorn: start on an SSE stream there instead.
    first_kind: Kind = "sse" if kind == "ws" and first == "gunicorn" else kind
    async with http_client() as http:
        async with subscribe(first_kind, doors.named(first).url, topic) as before:
            read = [await publish(http, doors.wsgi.url, topic, f"read {n}") for n in range(3)]
            await before.wait_messages(3)
            assert before.message_ids == _ids(read)
            cursor = before.last_id
        missed = [
            await publish(http, doors.named(door).url, topic, f"missed {n}")
            for n, door in enumerate(["gunicorn", "hypercorn", "gunicorn", "hypercorn"])
        ]
        query, headers = resume_options(kind, cursor)
        async with subscribe(
            kind, doors.named(then).url, topic, params=query, headers=headers
        ) as resumed:
            await resumed.wait_messages(len(missed))
            live = await publish(http, doors.asgi.url, topic, "live")
            await resumed.wait_messages(len(missed) + 1)
            assert resumed.message_ids == [*_ids(missed), live["id"]], resumed
            _assert_delivered(resumed, [*missed, live])


@pytest.mark.postgres
async def test_postgres_and_redis_three_servers(server_pool: ServerPool, pg_url: str) -> None:
    """Two hypercorns and a gunicorn on PostgreSQL with Redis as the bus: a publish
    through any one reaches every stream kind on all three."""
    prefix = f"tandem-e2e-{uuid.uuid4().hex[:10]}:"
    env = {**KEEPALIVE, "TANDEM_REDIS_URL": REDIS_URL, "TANDEM_REDIS_PREFIX": prefix}
    migrate(pg_url)
    h1, h2, wsgi = server_pool.start(
        hypercorn(pg_url, env=env, name="hypercorn-1"),
        hypercorn(pg_url, env=env, name="hypercorn-2"),
        gunicorn(pg_url, workers=2, threads=8, env=env),
    )
    # Both hypercorns listen on the wake-up channel (gunicorn workers start lazily).
    await wait_redis_subscribers(f"{prefix}messages", 2, url=REDIS_URL)
    topic = _topic("pg")
    subs = [
        Subscription(kind, server.url, topic)
        for server in (h1, h2, wsgi)
        for kind in KINDS
        if not (kind == "ws" and server is wsgi)
    ]
    try:
        await asyncio.gather(*(sub.start() for sub in subs))
        async with http_client() as http:
            sent = [
                await publish(http, server.url, topic, f"through {server.name}")
                for server in (h1, wsgi, h2, h1)
            ]
        await asyncio.gather(*(sub.wait_messages(len(sent)) for sub in subs))
        for sub in subs:
            _assert_delivered(sub, sent)
    finally:
        await asyncio.gather(*(sub.aclose() for sub in subs))
    assert_no_tracebacks(h1, h2, wsgi)


async def test_gap_event_after_retention_pruned_the_cursor(
    server_pool: ServerPool, migrated_sqlite_url: str
) -> None:
    """A cursor into what ``tandem prune`` removed: ``open``, then ``gap``, first."""
    env = {"TANDEM_CACHE_DURATION": "1s", "TANDEM_WSGI_STREAM_SLOTS": "8"}
    wsgi, asgi = server_pool.start(
        gunicorn(migrated_sqlite_url, workers=1, threads=12, env=env),
        hypercorn(migrated_sqlite_url, env=env),
    )
    topic = _topic("gap")
    async with http_client() as http:
        old = [await publish(http, asgi.url, topic, f"old {n}") for n in range(3)]
        await _wait_expired(http, wsgi, topic)
        pruned = await asyncio.to_thread(
            subprocess.run,
            [executable("tandem"), "prune"],
            cwd=REPO_ROOT,
            env=server_env({"TANDEM_DATABASE_URL": migrated_sqlite_url, **env}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert pruned.returncode == 0, pruned.stderr
        assert "pruned 3 expired message(s)" in pruned.stdout, pruned.stdout

        doors = Doors(wsgi, asgi)
        since = {"since": old[0]["id"]}
        subs = [Subscription(k, doors.named(d).url, topic, params=since) for d, k in CASES]
        # The control: a cursor at the newest pruned message missed nothing.
        control = Subscription("json", asgi.url, topic, params={"since": old[-1]["id"]})
        try:
            await asyncio.gather(*(sub.start() for sub in [*subs, control]))
            fresh = await publish(http, wsgi.url, topic, "fresh")
            await asyncio.gather(*(sub.wait_messages(1) for sub in [*subs, control]))
        finally:
            await asyncio.gather(*(sub.aclose() for sub in [*subs, control]))
    for sub in subs:
        assert sub.kinds() == ["open", "gap", "message"], sub
        gap = sub.events[1]
        if sub.kind == "raw":
            assert gap.text == f"[gap] {GAP_NOTICE}", sub
        else:
            assert gap.data is not None
            assert (gap.data["event"], gap.data["message"]) == ("gap", GAP_NOTICE), sub
        _assert_delivered(sub, [fresh])
    assert control.kinds() == ["open", "message"], control
    assert_no_tracebacks(wsgi, asgi)


async def _wait_expired(http: httpx.AsyncClient, server: ServerProcess, topic: str) -> None:
    """Wait until the history of ``topic`` shows nothing (its messages expired)."""

    async def expired() -> bool:
        page = await http.get(f"{server.url}/api/v1/topics/{topic}/messages")
        assert page.status_code == 200, page.text
        return not page.json()["messages"]

    await eventually_async(expired, 20, interval=0.2, what=f"the messages of {topic} to expire")
