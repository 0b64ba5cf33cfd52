"""End to end under faults: killed servers, a restarted Redis, full stream slots,
slow consumers and SIGTERM, with real servers and real clients on 127.0.0.1.

Each test starts the servers it breaks. Clients that lose their stream resume by
cursor (``tests.streamclients.Follower``), as EventSource does, and the checks
are that every client ends with every message exactly once, in order.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from harness.databases import migrate, wait_redis_subscribers
from harness.net import free_port
from harness.serverprocess import ServerProcess
from harness.servers import ServerPool, assert_no_tracebacks, gunicorn, hypercorn
from harness.streams import (
    Follower,
    Subscription,
    http_client,
    json_error,
    poll,
    publish,
    publish_many,
    stream_usage_until,
    subscribe,
)
from harness.waiting import eventually
from harness.wire import HTTP_KINDS

from tandem.core.hub import SHUTTING_DOWN, SLOW_CONSUMER
from tandem.core.runtime import Runtime
from tandem.core.schemas import Message, NewMessage
from tandem.core.settings import Settings

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
SHARED_REDIS = "redis://127.0.0.1:6379/0"  # shared with other tests: a prefix of our own


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _ids(messages: Sequence[dict[str, Any]]) -> list[str]:
    return [message["id"] for message in messages]


def _rss(server: ServerProcess) -> int:
    """Resident memory of the server process, in bytes (``VmRSS``)."""
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {server}")


# --- kill -9 during a publish run -------------------------------------------------------

PUBLISHED = 2000
KILL_AFTER = 400  # messages that A's SSE client has read when A is killed


@pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres+redis", marks=pytest.mark.postgres)]
)
async def test_kill_9_of_a_hypercorn_during_a_publish_run(
    server_pool: ServerPool, request: pytest.FixtureRequest, store: str
) -> None:
    """Two hypercorns (A, B) and a gunicorn on one database. Subscribers on A and B;
    2,000 publishes through gunicorn; A is SIGKILLed midway and its clients resume on
    B with their last id. Every client ends with every message once, in order."""
    if store == "sqlite":
        db: str = request.getfixturevalue("migrated_sqlite_url")
        env: dict[str, str] = {}
    else:
        db = request.getfixturevalue("pg_url")
        migrate(db)
        prefix = f"tandem-e2e-{uuid.uuid4().hex[:10]}:"
        env = {"TANDEM_REDIS_URL": SHARED_REDIS, "TANDEM_REDIS_PREFIX": prefix}
    a, b, wsgi = server_pool.start(
        hypercorn(db, env=env, name="hypercorn-a"),
        hypercorn(db, env=env, name="hypercorn-b"),
        gunicorn(db, workers=2, threads=8, env=env),
    )
    topic = _topic("kill")
    on_a = [Follower("sse", [a.url, b.url], topic), Follower("ws", [a.url, b.url], topic)]
    on_b = [Follower("json", [b.url], topic), Follower("ws", [b.url], topic)]
    followers = [*on_a, *on_b]

    async def kill_a_midway() -> None:
        await on_a[0].wait_messages(KILL_AFTER, timeout=60)
        a.send_signal(signal.SIGKILL, group=True)

    killer: asyncio.Task[None] | None = None
    try:
        await asyncio.gather(*(follower.start() for follower in followers))
        killer = asyncio.create_task(kill_a_midway())
        async with http_client(connections=8) as http:
            texts = [f"message {n:04d}" for n in range(PUBLISHED)]
            # publish_many raises on any answer but 200: every publish must succeed.
            sent = await publish_many(http, wsgi.url, topic, texts, concurrency=8)
            async with asyncio.timeout(60):
                await killer
            stored = [event.id for event in await poll(http, wsgi.url, topic)]
        assert len(stored) == PUBLISHED
        assert set(stored) == set(_ids(sent))
        await asyncio.gather(*(f.wait_messages(PUBLISHED, timeout=90) for f in followers))
        for follower in followers:
            assert follower.message_ids == stored, follower
        for follower in on_a:
            # Cut when A died, then resumed on B.
            assert follower.connects >= 2, follower
            assert follower.ends[0].startswith(a.url), follower
    finally:
        if killer is not None:
            killer.cancel()
        await asyncio.gather(*(follower.aclose() for follower in followers))
    assert a.stop() == -signal.SIGKILL
    assert_no_tracebacks(b, wsgi)


# --- Redis restarted mid-stream ---------------------------------------------------------


class RedisServer:
    """A redis-server of this test's own on ``port``: stopped and restarted at will."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.log_path = log_dir / f"redis-{port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        proc, client = self._proc, redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            # Up, or gone: a redis-server that exits has failed to start.
            eventually(
                lambda: proc.poll() is not None or client.ping(),
                10,
                what=f"redis-server to answer on port {self.port}",
                ignoring=(redis.ConnectionError,),
            )
        finally:
            client.close()
        if proc.poll() is not None:
            raise AssertionError(f"redis-server did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    async def wait_subscribers(self, channel: str, count: int, timeout: float = 30) -> None:
        """Wait until ``count`` clients listen on ``channel``."""
        await wait_redis_subscribers(channel, count, url=self.url, timeout=timeout)


@pytest.mark.postgres
async def test_redis_restarted_mid_stream(
    server_pool: ServerPool, pg_url: str, tmp_path: Path
) -> None:
    """Two hypercorns on PostgreSQL with a Redis of our own. Streams on one, publishes
    on the other; Redis stops: publishes still succeed and still arrive (the relay's
    safety poll); Redis comes back on the same port: delivery goes on. Exactly once."""
    bus = RedisServer(free_port(), tmp_path)
    bus.start()
    try:
        prefix = f"tandem-e2e-{uuid.uuid4().hex[:10]}:"
        env = {
            "TANDEM_REDIS_URL": bus.url,
            "TANDEM_REDIS_PREFIX": prefix,
            "TANDEM_RELAY_SAFETY_INTERVAL": "0.5",
        }
        migrate(pg_url)
        streams, publisher = server_pool.start(
            hypercorn(pg_url, env=env, name="hypercorn-streams"),
            hypercorn(pg_url, env=env, name="hypercorn-publish"),
        )
        channel = f"{prefix}messages"
        await bus.wait_subscribers(channel, 2)
        topic = _topic("redis")
        followers = [Follower(kind, [streams.url], topic) for kind in ("sse", "ws", "json")]
        sent: list[dict[str, Any]] = []
        try:
            await asyncio.gather(*(follower.start() for follower in followers))
            async with http_client() as http:

                async def publish_round(label: str) -> None:
                    for n in range(10):
                        sent.append(await publish(http, publisher.url, topic, f"{label} {n}"))
                    await asyncio.gather(*(f.wait_messages(len(sent)) for f in followers))

                await publish_round("before")
                # In a thread: the streams are read on this loop meanwhile.
                await asyncio.to_thread(bus.stop)
                await publish_round("while redis is down")
                await asyncio.to_thread(bus.start)
                # Both watchers are back on the channel: wake-ups flow through Redis again.
                await bus.wait_subscribers(channel, 2)
                await publish_round("after the restart")
            for follower in followers:
                assert follower.message_ids == _ids(sent), follower
                assert follower.connects == 1, follower  # the streams never noticed
            # Redis really was away for both: wake-ups were lost, watchers reconnected.
            assert "redis wake-up not sent" in publisher.log_text(), publisher.log_tail()
            assert "redis watcher disconnected" in streams.log_text(), streams.log_tail()
        finally:
            await asyncio.gather(*(follower.aclose() for follower in followers))
    finally:
        bus.stop()


# --- WSGI stream slots ------------------------------------------------------------------


async def test_wsgi_stream_slots_run_out_with_503_and_recover(
    server_pool: ServerPool, migrated_sqlite_url: str
) -> None:
    """One worker, 4 threads, 2 stream slots: a third stream is refused at once with
    503 and Retry-After; publishes, polls and health still answer; a slot comes back
    once a client goes away (noticed at the next keepalive)."""
    env = {"TANDEM_WSGI_STREAM_SLOTS": "2", "TANDEM_KEEPALIVE_INTERVAL": "1s"}
    (wsgi,) = server_pool.start(gunicorn(migrated_sqlite_url, workers=1, threads=4, env=env))
    topic = _topic("slots")
    # A short timeout: a refused stream must be answered, never left hanging.
    async with http_client(wsgi.url, timeout=10) as http:
        first = Subscription("sse", wsgi.url, topic)
        second = Subscription("json", wsgi.url, topic)
        try:
            await first.start()
            await second.start()
            usage = (await http.get("/api/v1/streams")).json()
            assert usage == {
                "door": "wsgi",
                "pid": usage["pid"],
                "in_use": 2,
                "slots": 2,
                "direct": 0,
            }

            for kind in HTTP_KINDS:
                refused = await http.get(f"/{topic}/{kind}")
                json_error(refused, 503)
                assert int(refused.headers["Retry-After"]) > 0, refused.headers

            sent = await publish(http, wsgi.url, topic, "slots are full, publishing is not")
            polled = await http.get(f"/{topic}/json", params={"poll": "1"})
            assert polled.status_code == 200, polled.text
            assert [line for line in polled.text.splitlines() if line] != []
            assert (await http.get("/api/v1/health")).status_code == 200
            for sub in (first, second):
                await sub.wait_messages(1)
                assert sub.message_ids == [sent["id"]]

            await first.aclose()
            await stream_usage_until(http, lambda usage: usage["in_use"] == 1)
            async with subscribe("raw", wsgi.url, topic) as third:
                again = await publish(http, wsgi.url, topic, "a slot again")
                await third.wait_messages(1)
                assert [event.text for event in third.messages] == [again["message"]]
        finally:
            await first.aclose()
            await second.aclose()
    assert_no_tracebacks(wsgi)


# --- Slow consumers ---------------------------------------------------------------------

FLOOD = 20_000
FLOOD_TEXT = "x" * 4000
# Per batch of publishes: fewer than the subscriber queue (50), so that a client
# that keeps reading is never behind, however the relay groups its reads.
FLOOD_BATCH = 40
# Queued for the slow clients, 20,000 messages of 4 KB and their SSE encoding would
# take about 160 MiB; bounded queues keep the growth to a few MiB.
RSS_BOUND = 100 * MiB


async def test_slow_consumers_are_cut_and_memory_stays_bounded(
    server_pool: ServerPool, migrated_sqlite_url: str
) -> None:
    """A WebSocket and an SSE client that stop reading (small receive buffers) while
    20,000 messages of 4 KB are published: the server cuts them (1013 / ``close``),
    its RSS stays bounded, and a subscriber that keeps reading gets everything.

    The publisher is Tandem's core in this process (as ``tandem publish`` does),
    writing to the same SQLite file in batches: HTTP publishing on this machine is
    too slow for 20,000 messages in a test. The server's relay carries them over.
    """
    env = {"TANDEM_SUBSCRIBER_QUEUE": "50", "TANDEM_SQLITE_POLL_INTERVAL": "0.005"}
    (asgi,) = server_pool.start(hypercorn(migrated_sqlite_url, env=env))
    topic = _topic("slow")
    core = Runtime(Settings(_env_file=None, env="testing", database_url=migrated_sqlite_url))
    await core.start(follow=False)
    # A receive buffer set before connecting is not autotuned: the server's writes
    # back up after a few hundred KiB instead of many MiB.
    stalled_ws = Subscription("ws", asgi.url, topic, rcvbuf=64 * 1024)
    stalled_sse = Subscription("sse", asgi.url, topic, rcvbuf=64 * 1024)
    reader = Follower("sse", [asgi.url], topic)
    sent: list[Message] = []
    try:
        for sub in (stalled_ws, stalled_sse):
            await sub.start()
            sub.pause()
        await reader.start()
        baseline = peak = _rss(asgi)
        for start in range(0, FLOOD, FLOOD_BATCH):
            batch = range(start, min(FLOOD, start + FLOOD_BATCH))
            sent += await asyncio.gather(
                *(core.publish(NewMessage(topic, f"{n:05d} {FLOOD_TEXT}")) for n in batch)
            )
            await reader.wait_messages(len(sent), timeout=60)
            peak = max(peak, _rss(asgi))
        assert peak - baseline < RSS_BOUND, f"RSS grew by {(peak - baseline) / MiB:.0f} MiB"
        assert reader.message_ids == [message.id for message in sent], reader
        assert reader.connects == 1, reader  # never cut: it kept up

        for sub in (stalled_ws, stalled_sse):
            sub.resume()
            await sub.wait_ended(timeout=60)
            # What got through before the cut: a prefix of the messages, in order.
            assert sub.message_ids == [m.id for m in sent[: len(sub.messages)]], sub
            assert len(sub.messages) < FLOOD, sub
        assert stalled_ws.close_code == 1013, stalled_ws
        assert stalled_ws.close_reason == SLOW_CONSUMER, stalled_ws
        last = stalled_sse.events[-1]
        cut = stalled_sse.error is not None
        assert cut or (last.kind, last.text) == ("close", SLOW_CONSUMER), stalled_sse
    finally:
        for sub in (stalled_ws, stalled_sse):
            await sub.aclose()
        await reader.aclose()
        await core.stop()
    assert_no_tracebacks(asgi)


# --- SIGTERM ----------------------------------------------------------------------------


async def test_sigterm_closes_streams_and_exits_zero(
    server_pool: ServerPool, migrated_sqlite_url: str
) -> None:
    """SIGTERM to each server (``kill PID``): every stream gets its final ``close``
    event (WebSocket: code 1001) well before graceful_timeout, and both exit 0."""
    wsgi, asgi = server_pool.start(
        gunicorn(migrated_sqlite_url, workers=2, threads=8), hypercorn(migrated_sqlite_url)
    )
    topic = _topic("term")
    subs = [
        Subscription("sse", wsgi.url, topic),
        Subscription("json", wsgi.url, topic),
        Subscription("sse", asgi.url, topic),
        Subscription("ws", asgi.url, topic),
        Subscription("json", asgi.url, topic),
    ]
    try:
        await asyncio.gather(*(sub.start() for sub in subs))
        for server in (wsgi, asgi):
            server.begin_stop(signal.SIGTERM, group=False)
        # Less than either server's graceful_timeout: a stream merely cut when the
        # server gives up on it would fail here, and it would have no close event.
        await asyncio.gather(*(sub.wait_ended(timeout=8) for sub in subs))
    finally:
        await asyncio.gather(*(sub.aclose() for sub in subs))
    for sub in subs:
        assert sub.error is None, sub
        last = sub.events[-1]
        assert (last.kind, last.text) == ("close", SHUTTING_DOWN), sub
    ws = subs[3]
    assert (ws.close_code, ws.close_reason) == (1001, SHUTTING_DOWN), ws
    assert wsgi.stop() == 0, wsgi.log_tail()
    assert asgi.stop() == 0, asgi.log_tail()
    assert_no_tracebacks(wsgi, asgi)
