"""Relays: carry committed messages from the database into this process's hub.

The database is the source of truth and its sequence numbers the order. The
relay reads ``seq > last`` in short transactions and hands what it finds to
the hub, so every subscriber in every process sees one order, with no gap and
no duplicate. Watchers only decide *when* to read:

- SQLite: ``PRAGMA data_version`` on a dedicated connection, which changes
  whenever another connection (in any process) commits. Cheap enough to poll.
- Redis: a wake-up published after each commit. Pub/sub is at-most-once, so
  a slower safety poll still runs and the cursor closes any gap.
- PostgreSQL without Redis: ``LISTEN``/``NOTIFY``; the notification is sent
  inside the publishing transaction and so arrives only after commit.

Sequence numbers become visible in order on both databases because the
publishing transaction takes them from one counter row under a lock held
until commit (see :mod:`tandem.core.store`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiosqlite
import asyncpg
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from tandem.core import store
from tandem.core.db import Engines
from tandem.core.hub import Hub

log = logging.getLogger(__name__)

READ_BATCH = 500
PG_CHANNEL = "tandem_messages"


class Relay:
    """Reads new rows in sequence order and delivers them to the hub."""

    def __init__(self, *, engines: Engines, hub: Hub, safety_interval: float) -> None:
        self.engines = engines
        self.hub = hub
        self.safety_interval = safety_interval
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._skipped_since: float | None = None
        self.read_errors = 0

    async def start(self, watchers: list[Watcher]) -> None:
        """Start from the newest committed message, then follow."""
        self.hub.last_seq = await store.last_seq(engines=self.engines)
        self._stopped.clear()
        self._tasks.append(asyncio.create_task(self._follow(), name="tandem-relay"))
        for watcher in watchers:
            task = asyncio.create_task(watcher.run(self.wake, self._stopped), name=watcher.name)
            self._tasks.append(task)

    async def stop(self) -> None:
        """Stop following. Tasks finish by themselves rather than being cancelled:
        a cancelled aiosqlite call leaves its worker thread calling a closed loop."""
        self._stopped.set()
        self._wake.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=5)
            for task in late:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()

    def wake(self) -> None:
        """Ask for a read as soon as possible (safe to call from a callback)."""
        self._wake.set()

    async def _follow(self) -> None:
        while True:
            await _wait(self._wake, self.safety_interval)
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                await self.catch_up()
            except Exception:  # the database may be briefly away; the next wake retries
                self.read_errors += 1
                log.warning("relay read failed; retrying", exc_info=True)
                await _wait(self._stopped, min(5.0, 0.1 * self.read_errors))
            else:
                self.read_errors = 0

    async def catch_up(self) -> None:
        """Deliver every committed message newer than the hub has seen.

        With nobody subscribed in this process there is nothing to deliver, and
        reading rows back is most of a busy publisher's work: the relay then only
        moves the hub's cursor to the newest committed message, at most once per
        safety interval. It does so only if nobody subscribed while it asked, so
        that it cannot skip a message someone is waiting for.
        """
        async with self._lock:
            if self.hub.count == 0:
                await self._skip_ahead()
                return
            self._skipped_since = None
            while True:
                batch = await store.read_after(
                    engines=self.engines, after_seq=self.hub.last_seq, limit=READ_BATCH
                )
                self.hub.deliver(batch)
                if len(batch) < READ_BATCH:
                    return

    async def _skip_ahead(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._skipped_since is not None and now - self._skipped_since < self.safety_interval:
            return
        self._skipped_since = now
        registrations = self.hub.registrations
        committed = await store.last_seq(engines=self.engines)
        if self.hub.registrations == registrations and self.hub.count == 0:
            self.hub.last_seq = max(self.hub.last_seq, committed)


class Watcher:
    """Calls ``wake`` when the messages table may have changed."""

    name = "tandem-watcher"

    async def run(self, wake: Callable[[], None], stopped: asyncio.Event) -> None:
        """Watch until ``stopped`` is set."""
        raise NotImplementedError


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set, or ``seconds`` at most."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


class SqliteWatcher(Watcher):
    """Polls ``PRAGMA data_version`` on a connection of its own."""

    name = "tandem-sqlite-watcher"

    def __init__(self, database_url: str, interval: float) -> None:
        self.path = make_url(database_url).database or ":memory:"
        self.interval = interval

    async def run(self, wake: Callable[[], None], stopped: asyncio.Event) -> None:
        while not stopped.is_set():
            try:
                async with aiosqlite.connect(self.path, isolation_level=None) as conn:
                    last = None
                    while not stopped.is_set():
                        async with conn.execute("PRAGMA data_version") as cursor:
                            row = await cursor.fetchone()
                        version = row[0] if row else None
                        if version != last:
                            last = version
                            wake()
                        await _wait(stopped, self.interval)
            except (OSError, aiosqlite.Error):
                log.warning("sqlite watcher lost its connection; reconnecting", exc_info=True)
                await _wait(stopped, 1.0)


class RedisWatcher(Watcher):
    """Subscribes to the wake-up channel; reconnects with backoff when Redis goes away."""

    name = "tandem-redis-watcher"

    def __init__(self, redis: Redis, channel: str, *, on_state: Callable[[bool], None]) -> None:
        self.redis = redis
        self.channel = channel
        self.on_state = on_state

    async def run(self, wake: Callable[[], None], stopped: asyncio.Event) -> None:
        backoff = 0.1
        while not stopped.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.on_state(True)
                # Anything published while we were away is in the database: read it.
                wake()
                backoff = 0.1
                while not stopped.is_set():
                    if await pubsub.get_message(timeout=0.5) is not None:
                        wake()
            except Exception as exc:  # any Redis failure: back off and reconnect
                self.on_state(False)
                log.warning("redis watcher disconnected (%s); retrying", type(exc).__name__)
                await _wait(stopped, backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]


class PostgresWatcher(Watcher):
    """``LISTEN`` on a dedicated asyncpg connection; reconnects when it drops."""

    name = "tandem-postgres-watcher"

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)

    async def run(self, wake: Callable[[], None], stopped: asyncio.Event) -> None:
        while not stopped.is_set():
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError):
                log.warning("postgres watcher cannot connect; retrying", exc_info=True)
                await _wait(stopped, 1.0)
                continue
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(PG_CHANNEL, lambda *_args: wake())
                wake()
                ends = [asyncio.ensure_future(lost.wait()), asyncio.ensure_future(stopped.wait())]
                _, pending = await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
                for future in pending:
                    future.cancel()
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()


async def publish_wakeup(redis: Redis, channel: str, seq: int) -> None:
    """Tell the other processes that messages up to ``seq`` are committed."""
    try:
        await redis.publish(channel, str(seq))
    except Exception as exc:  # their safety poll will find the messages
        log.warning("redis wake-up not sent (%s)", type(exc).__name__)
