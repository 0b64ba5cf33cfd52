"""Relays across runtimes: two or more Runtimes on one database stand in for processes.

Every test here waits on conditions (all messages received, a flag set) under an
overall timeout; none sleeps and hopes, and none asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import shutil
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import asyncpg
import pytest
from harness.net import free_port
from harness.waiting import eventually_async
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.engine import make_url

from tandem.core import migrate, store
from tandem.core.hub import SHUTTING_DOWN
from tandem.core.relay import PG_CHANNEL
from tandem.core.runtime import Runtime
from tandem.core.schemas import SINCE_NONE, Message, MessageFilter, NewMessage
from tandem.core.settings import Settings
from tandem.core.stream import Stream

SHARED_REDIS = "redis://127.0.0.1:6379/0"
WAIT = 20.0  # a condition that should hold within milliseconds
LONG_WAIT = 60.0  # the concurrent bursts
# So long that only a watcher's wake-up (not the safety poll) can deliver in time.
NO_SAFETY_POLL = 600.0

SettingsFactory = Callable[..., Settings]


def _prefix() -> str:
    """A Redis key prefix of this test's own: the shared server has other users."""
    return f"tandem-test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def sqlite_db(make_settings: SettingsFactory) -> SettingsFactory:
    """Settings on one migrated SQLite file; overrides per runtime."""
    migrate.upgrade(make_settings())
    return make_settings


@pytest.fixture
def pg_db(pg_url: str, make_settings: SettingsFactory) -> SettingsFactory:
    """Settings on one fresh, migrated PostgreSQL database; overrides per runtime."""
    migrate.upgrade(make_settings(database_url=pg_url))

    def factory(**overrides: object) -> Settings:
        return make_settings(database_url=pg_url, **overrides)

    return factory


@contextlib.asynccontextmanager
async def started(*all_settings: Settings) -> AsyncIterator[list[Runtime]]:
    """Start one Runtime per settings (one "process" each) and stop them all after."""
    runtimes: list[Runtime] = []
    try:
        for settings in all_settings:
            rt = Runtime(settings)
            runtimes.append(rt)
            await rt.start()
        yield runtimes
    finally:
        for rt in runtimes:
            await rt.stop()


async def _subscribe(rt: Runtime, topics: Sequence[str]) -> Stream:
    """A since=none stream, registered with its hub when this returns."""
    stream = rt.open_stream(topics, SINCE_NONE, MessageFilter())
    async with asyncio.timeout(WAIT):
        first = await stream.next_batch()
    assert first is not None
    assert [event.kind for event in first] == ["open"]
    return stream


async def _receive(
    stream: Stream, into: list[Message], until: Callable[[list[Message]], bool]
) -> None:
    """Read ``stream`` into ``into`` until ``until(into)``; only keepalives may come between."""
    while not until(into):
        batch = await stream.next_batch()
        assert batch is not None, "the stream ended"
        for event in batch:
            if event.envelope is not None:
                into.append(event.envelope.message)
            else:
                assert event.kind == "keepalive", f"unexpected {event.kind}: {event.detail}"


async def _receive_all(stream: Stream, into: list[Message], count: int) -> None:
    async with asyncio.timeout(WAIT):
        await _receive(stream, into, lambda got: len(got) >= count)


async def _wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    await eventually_async(condition, timeout, interval=0.01, what=what)


def _assert_in_order_once(received: list[Message], published: list[Message]) -> None:
    seqs = [msg.seq for msg in received]
    assert len(received) == len(published)
    assert all(a < b for a, b in itertools.pairwise(seqs)), "not strictly ascending"
    assert received == sorted(published, key=lambda msg: msg.seq)


# --- one wake-up path each -----------------------------------------------------------------


async def _ping_pong(a: Runtime, b: Runtime) -> None:
    """Streams on both runtimes; messages published on either reach both, in seq order."""
    on_a, on_b = await _subscribe(a, ["t"]), await _subscribe(b, ["t"])
    try:
        published: list[Message] = []
        got_a: list[Message] = []
        got_b: list[Message] = []
        for round_, rt in enumerate((a, b, a, a, b)):
            published.append(await rt.publish(NewMessage(topic="t", message=f"m{round_}")))
            # Each must arrive before the next is published: no later wake-up helps it.
            await _receive_all(on_a, got_a, len(published))
            await _receive_all(on_b, got_b, len(published))
        _assert_in_order_once(got_a, published)
        _assert_in_order_once(got_b, published)
    finally:
        on_a.close()
        on_b.close()


async def test_sqlite_data_version_watcher_carries_messages(sqlite_db: SettingsFactory) -> None:
    settings = sqlite_db(relay_safety_interval=NO_SAFETY_POLL)
    async with started(settings, settings) as (a, b):
        await _ping_pong(a, b)


@pytest.mark.postgres
async def test_postgres_listen_notify_carries_messages(pg_db: SettingsFactory) -> None:
    settings = pg_db(relay_safety_interval=NO_SAFETY_POLL)
    assert settings.redis_url is None
    async with started(settings, settings) as (a, b):
        await _ping_pong(a, b)


@pytest.mark.postgres
async def test_postgres_with_redis_wakeups(pg_db: SettingsFactory) -> None:
    settings = pg_db(
        redis_url=SHARED_REDIS, redis_prefix=_prefix(), relay_safety_interval=NO_SAFETY_POLL
    )
    probe = Redis.from_url(SHARED_REDIS)
    pubsub = probe.pubsub(ignore_subscribe_messages=True)
    try:
        async with started(settings, settings) as (a, b):
            await _wait_for(lambda: a.redis_connected and b.redis_connected, "both watch Redis")
            await pubsub.subscribe(a.wake_channel)
            await _ping_pong(a, b)

            # The wake-up really goes over Redis: one per commit, carrying its seq.
            msg = await a.publish(NewMessage(topic="t", message="seen on the channel"))
            async with asyncio.timeout(WAIT):
                while True:
                    wakeup = await pubsub.get_message(timeout=1.0)
                    if wakeup is not None and wakeup["data"] == str(msg.seq).encode():
                        break
            # With Redis, PostgreSQL NOTIFY is not used at all.
            heard = await _notifications_during(
                settings, lambda: a.publish(NewMessage(topic="t", message="no notify"))
            )
            assert heard == []
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await probe.aclose()


@pytest.mark.postgres
async def test_a_one_shot_publisher_wakes_servers_through_redis(pg_db: SettingsFactory) -> None:
    # `tandem publish` runs a runtime that does not follow; servers with Redis
    # listen on Redis, so that is where its wake-up must go.
    settings = pg_db(
        redis_url=SHARED_REDIS, redis_prefix=_prefix(), relay_safety_interval=NO_SAFETY_POLL
    )
    async with started(settings) as (server,):
        await _wait_for(lambda: server.redis_connected, "the server watches Redis")
        stream = await _subscribe(server, ["cli"])
        one_shot = Runtime(settings)
        await one_shot.start(follow=False)
        try:
            msg = await one_shot.publish(NewMessage(topic="cli", message="from a script"))
        finally:
            await one_shot.stop()
        got: list[Message] = []
        await _receive_all(stream, got, 1)
        assert got == [msg]
        stream.close()


async def _notifications_during(
    settings: Settings, action: Callable[[], Awaitable[object]]
) -> list[str]:
    """The payloads NOTIFY'd on the relay channel while ``action`` ran."""
    dsn = make_url(settings.database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    heard: list[str] = []
    control = asyncio.Event()

    def listener(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == "control":
            control.set()
        else:
            heard.append(payload)

    try:
        await conn.add_listener(PG_CHANNEL, listener)
        await action()
        # Notifications arrive in commit order: once a later one is here, any
        # sent by ``action`` would be here too.
        await conn.execute(f"NOTIFY {PG_CHANNEL}, 'control'")
        async with asyncio.timeout(WAIT):
            await control.wait()
    finally:
        await conn.close()
    return heard


# --- the ordering proof --------------------------------------------------------------------


async def _burst(rt: Runtime, name: str, count: int, *, direct: int = 0) -> list[Message]:
    """Publish ``count`` messages from ten concurrent workers on ``rt``.

    ``direct`` of them skip the runtime's batch writer and go straight to the store,
    each in a transaction and on a connection of its own, so that many write
    transactions contend for sequence numbers at once.
    """
    published: list[Message] = []
    notify = PG_CHANNEL if rt.engines.dialect == "postgresql" else None

    async def worker(items: list[int]) -> None:
        for i in items:
            new = NewMessage(topic=f"t{i % 3}", message=f"{name}-{i}")
            if i < direct:
                stored = await store.insert_messages(
                    engines=rt.engines,
                    batch=[new],
                    now=rt.now(),
                    cache_duration=rt.settings.cache_duration,
                    notify_channel=notify,
                )
                published.extend(stored)
            else:
                published.append(await rt.publish(new))
            if random.random() < 0.5:  # vary the interleaving between runs
                await asyncio.sleep(0)

    batched = list(range(direct, count))
    await asyncio.gather(
        *(worker([i]) for i in range(direct)), *(worker(batched[w::10]) for w in range(10))
    )
    return published


SENTINEL = "the last one"


def _has_sentinel(got: list[Message]) -> bool:
    return bool(got) and got[-1].message == SENTINEL


async def _ordering_proof(
    publishers: list[Runtime], subscribers: list[Runtime], *, each: int, direct: int
) -> None:
    topics = ["t0", "t1", "t2"]
    # since=none streams, registered before anything is published.
    streams = [await _subscribe(rt, topics) for rt in subscribers]
    received: list[list[Message]] = [[] for _ in streams]
    readers = [
        asyncio.create_task(_receive(stream, got, _has_sentinel))
        for stream, got in zip(streams, received, strict=True)
    ]
    try:
        async with asyncio.timeout(LONG_WAIT):
            bursts = await asyncio.gather(
                *(
                    _burst(rt, f"p{index}", each, direct=direct)
                    for index, rt in enumerate(publishers)
                )
            )
            # Published after every burst returned, so it has the highest seq: a reader
            # that has it has been handed everything it will ever get before it.
            sentinel = await publishers[0].publish(NewMessage(topic="t0", message=SENTINEL))
            await asyncio.gather(*readers)
    finally:
        for task in readers:
            task.cancel()
        for stream in streams:
            stream.close()

    published = [msg for burst in bursts for msg in burst]
    assert len(published) == each * len(publishers)
    assert len({msg.seq for msg in published}) == len(published), "two publishes got one seq"
    for got in received:
        assert got[-1] == sentinel
        _assert_in_order_once(got[:-1], published)


@pytest.mark.postgres
async def test_ordering_proof_on_postgres(pg_db: SettingsFactory) -> None:
    # Four publishing and two subscribing "processes", each with a pool of its own:
    # up to four connections each (so 16 write transactions at once), which keeps the
    # shared server's connection limit far away.
    settings = pg_db(db_pool_size=2)
    async with started(*[settings] * 6) as runtimes:
        await _ordering_proof(runtimes[:4], runtimes[4:], each=100, direct=40)


async def test_ordering_proof_on_sqlite(sqlite_db: SettingsFactory) -> None:
    # Three "processes" that each publish and each subscribe.
    settings = sqlite_db(db_pool_size=5)
    async with started(settings, settings, settings) as runtimes:
        await _ordering_proof(runtimes, runtimes, each=100, direct=20)


# --- Redis goes away and comes back --------------------------------------------------------


class RedisServer:
    """A redis-server of this test's own, on a fixed port, that can be stopped and restarted."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        process, client = self.process, Redis.from_url(self.url)

        async def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}")
            return bool(await client.ping())

        try:
            await eventually_async(
                answers,
                WAIT,
                what=f"redis-server to answer on port {self.port}",
                ignoring=(OSError, RedisConnectionError),
            )
        finally:
            await client.aclose()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    async def subscribers(self, channel: str) -> int:
        client = Redis.from_url(self.url)
        try:
            counts = await client.pubsub_numsub(channel)
            return int(counts[0][1])
        finally:
            await client.aclose()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.postgres
async def test_redis_restart_loses_nothing(
    pg_db: SettingsFactory, redis_server: RedisServer
) -> None:
    await redis_server.start()
    settings = pg_db(redis_url=redis_server.url, redis_prefix=_prefix(), relay_safety_interval=0.3)
    async with started(settings, settings) as (a, b):
        channel = a.wake_channel
        await _wait_for(lambda: a.redis_connected and b.redis_connected, "both watch Redis")
        stream = await _subscribe(b, ["t"])
        published: list[Message] = []
        received: list[Message] = []
        try:
            published.append(await a.publish(NewMessage(topic="t", message="before")))
            await _receive_all(stream, received, len(published))

            redis_server.stop()
            # Publishing does not depend on the broker: the wake-up is best effort.
            for i in range(5):
                published.append(await a.publish(NewMessage(topic="t", message=f"down{i}")))
            # B's safety poll reads them from the database.
            await _receive_all(stream, received, len(published))
            await _wait_for(lambda: not b.redis_connected, "B notices that Redis is gone")

            await redis_server.start()
            await _wait_for(lambda: b.redis_connected, "B reconnects to Redis")
            await _wait_for(lambda: a.redis_connected, "A reconnects to Redis")

            async def both_subscribed() -> bool:
                return await redis_server.subscribers(channel) >= 2

            await eventually_async(both_subscribed, WAIT, what="A and B to subscribe again")
            for i in range(5):
                published.append(await a.publish(NewMessage(topic="t", message=f"up{i}")))
            await _receive_all(stream, received, len(published))
        finally:
            stream.close()
        _assert_in_order_once(received, published)
        assert [msg.message for msg in received] == ["before"] + [
            f"{state}{i}" for state in ("down", "up") for i in range(5)
        ]


# --- stopping ------------------------------------------------------------------------------


def _run_and_close_loop(scenario: Callable[[], Any]) -> list[str]:
    """Run ``scenario`` on a loop of its own, close the loop, then wait for the threads
    that the scenario started. Return the exceptions any thread raised meanwhile."""
    errors: list[str] = []
    before = set(threading.enumerate())
    hook = threading.excepthook

    def record(args: threading.ExceptHookArgs) -> None:
        errors.append(f"{args.thread.name if args.thread else '?'}: {args.exc_value!r}")

    threading.excepthook = record
    try:
        asyncio.run(scenario())  # the loop is closed when this returns
        for thread in set(threading.enumerate()) - before:
            thread.join(10)
            if thread.is_alive():
                errors.append(f"{thread.name} still running after the loop closed")
    finally:
        threading.excepthook = hook
    return errors


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres+redis", marks=pytest.mark.postgres)]
)
def test_stop_leaves_no_tasks_and_no_threads(
    backend: str, request: pytest.FixtureRequest, make_settings: SettingsFactory
) -> None:
    if backend == "sqlite":
        settings = make_settings()
    else:
        settings = make_settings(
            database_url=request.getfixturevalue("pg_url"),
            redis_url=SHARED_REDIS,
            redis_prefix=_prefix(),
        )
    migrate.upgrade(settings)
    leftovers: list[str] = []

    async def scenario() -> None:
        a, b = Runtime(settings), Runtime(settings)
        await a.start()
        await b.start()
        stream = await _subscribe(b, ["t"])
        msg = await a.publish(NewMessage(topic="t", message="m"))
        got: list[Message] = []
        await _receive_all(stream, got, 1)
        assert got == [msg]
        # Stopped while a stream waits and publishes are in flight.
        waiting = asyncio.create_task(stream.next_batch())
        publishing = [
            asyncio.create_task(a.publish(NewMessage(topic="t", message=str(i)))) for i in range(20)
        ]
        await asyncio.sleep(0)
        await b.stop()
        await a.stop()
        # Stop finished the writes that were pending before it closed the engines.
        written = await asyncio.gather(*publishing)
        assert [msg.message for msg in written] == [str(i) for i in range(20)]
        batch = await waiting
        assert batch is not None
        assert [(event.kind, event.detail) for event in batch] == [("close", SHUTTING_DOWN)]
        stream.close()
        current = asyncio.current_task()
        leftovers.extend(
            f"{task.get_name()}: {task.get_coro()!r}"
            for task in asyncio.all_tasks()
            if task is not current
        )

    errors = _run_and_close_loop(scenario)
    assert leftovers == [], "tasks still running after stop"
    assert errors == []
