"""The core runtime of one process: engines, hub, relay and services behind one facade.

The Quart app starts it in its serving lifespan; the Flask app starts it on
the bridge's loop thread. Every method is a coroutine for that loop, and every
result is a plain schema that may cross threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from redis.asyncio import Redis

from tandem.core import store
from tandem.core.batching import BatchWriter
from tandem.core.db import Engines, create_engines, database_errors
from tandem.core.hub import SHUTTING_DOWN, Hub
from tandem.core.identity import Access, IdentityService, Tokens, Users
from tandem.core.limits import Limits
from tandem.core.relay import (
    PG_CHANNEL,
    PostgresWatcher,
    RedisWatcher,
    Relay,
    SqliteWatcher,
    Watcher,
    publish_wakeup,
)
from tandem.core.schemas import (
    Action,
    Credentials,
    HistoryQuery,
    Identity,
    Message,
    MessageFilter,
    MessagePage,
    NewMessage,
    Since,
    Stats,
    TopicStat,
)
from tandem.core.settings import Settings
from tandem.core.stream import Stream

log = logging.getLogger(__name__)


# ntfy's messages_rate: messages per second over the last minute. The count reads at most
# STATS_ROWS of the newest rows, so past STATS_ROWS a minute it reads as that many.
STATS_WINDOW = 60
STATS_ROWS = 100_000


class Runtime:
    """Everything one process needs to serve Tandem, bound to one event loop."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._engines: Engines | None = None
        self._writer = BatchWriter[NewMessage, Message](self._insert)
        self.hub = Hub(settings.subscriber_queue)
        self._relay: Relay | None = None
        self._redis: Redis | None = None
        self.redis_connected = False
        self._limits: Limits | None = None
        self.identity = IdentityService(settings, engines=lambda: self.engines, clock=self.now)
        # Administration: rt.users.add(...), rt.tokens.list(...), rt.access.grant(...).
        self.users = Users(self.identity)
        self.tokens = Tokens(self.identity)
        self.access = Access(self.identity)

    @property
    def engines(self) -> Engines:
        if self._engines is None:
            raise RuntimeError("the runtime is not started")
        return self._engines

    @property
    def limits(self) -> Limits:
        """The abuse limits (kept after :meth:`stop`, where they let go of their leases)."""
        if self._limits is None:
            raise RuntimeError("the runtime is not started")
        return self._limits

    @property
    def wake_channel(self) -> str:
        return f"{self.settings.redis_prefix}messages"

    async def start(self, *, follow: bool = True) -> None:
        """Create the engines on the running loop and start following new messages.

        ``follow=False`` (one-shot commands) skips the relay and its watchers; a
        Redis client is still made, for the wake-up that servers listen for.
        """
        self._engines = create_engines(self.settings)
        if self.settings.redis_url:
            # Even a one-shot publisher sends the wake-up the servers listen for.
            # Timeouts bound how long a Redis that hangs holds up a batch (5 s);
            # the wake-up is best effort and the relays' safety poll covers for it.
            self._redis = Redis.from_url(
                self.settings.redis_url, socket_connect_timeout=2, socket_timeout=5
            )
        self._limits = Limits(self.settings, redis=self._redis, clock=self._clock)
        if not follow:
            return
        self._relay = Relay(
            engines=self._engines,
            hub=self.hub,
            safety_interval=self.settings.relay_safety_interval,
        )
        async with database_errors():
            await self._relay.start(self._watchers())
        log.info("runtime started", extra={"database": self.engines.dialect})

    def _watchers(self) -> list[Watcher]:
        watchers: list[Watcher] = []
        if self.settings.is_sqlite:
            watchers.append(
                SqliteWatcher(self.settings.database_url, self.settings.sqlite_poll_interval)
            )
        if self._redis is not None:
            watchers.append(
                RedisWatcher(self._redis, self.wake_channel, on_state=self._set_redis_state)
            )
        elif not self.settings.is_sqlite:
            watchers.append(PostgresWatcher(self.settings.database_url))
        return watchers

    def _set_redis_state(self, connected: bool) -> None:
        self.redis_connected = connected

    def begin_shutdown(self) -> None:
        """End every live subscription with a reason, so clients resume elsewhere."""
        self.hub.close_all(SHUTTING_DOWN)

    async def stop(self) -> None:
        """Finish pending writes, end subscriptions and close every connection."""
        self.begin_shutdown()
        await self._writer.close()
        if self._relay is not None:
            await self._relay.stop()
            self._relay = None
        if self._limits is not None:
            await self._limits.close()
        await self.identity.flush()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        if self._engines is not None:
            await self._engines.dispose()
            self._engines = None

    def now(self) -> int:
        return int(self._clock())

    async def publish(self, new: NewMessage) -> Message:
        """Store ``new`` and return the published message; subscribers everywhere get it."""
        async with database_errors():
            return await self._writer.submit(new)

    async def _insert(self, batch: Sequence[NewMessage]) -> list[Message]:
        notify = PG_CHANNEL if self._redis is None and not self.settings.is_sqlite else None
        stored = await store.insert_messages(
            engines=self.engines,
            batch=batch,
            now=self.now(),
            cache_duration=self.settings.cache_duration,
            notify_channel=notify,
        )
        self._hand_over(stored)
        if self._redis is not None:
            await publish_wakeup(self._redis, self.wake_channel, stored[-1].seq)
        return stored

    def _hand_over(self, stored: list[Message]) -> None:
        """Give this process's own batch to the hub, or have the relay read it.

        A batch that starts right after the hub's last sequence number can go
        straight to the hub: sequence numbers become visible in commit order,
        so no other process can hold one in between. Otherwise another
        process's messages came first, and the relay reads them all in order.
        """
        if self._relay is None:  # not following: nobody here to deliver to
            return
        if stored[0].seq == self.hub.last_seq + 1:
            self.hub.deliver(stored)
        else:
            self._relay.wake()

    async def history(self, query: HistoryQuery) -> list[Message]:
        """Stored messages for a poll or the start of a subscription."""
        async with database_errors():
            return await store.history(engines=self.engines, query=query, now=self.now())

    async def has_gap(self, topics: Sequence[str], since: Since) -> bool:
        async with database_errors():
            return await store.has_gap(
                engines=self.engines, topics=topics, since=since, now=self.now()
            )

    async def committed_seq(self) -> int:
        """The newest sequence number committed to the database (by any process)."""
        async with database_errors():
            return await store.last_seq(engines=self.engines)

    def open_stream(
        self,
        topics: Sequence[str],
        since: Since,
        filter: MessageFilter,
        *,
        notice: str | None = None,
    ) -> Stream:
        """Register a live subscription. Call :meth:`Stream.close` when it ends.

        ``notice`` is said in the ``open`` event (the topics skipped, say).
        """
        return Stream(
            hub=self.hub,
            topics=topics,
            since=since,
            filter=filter,
            keepalive=self.settings.keepalive_interval,
            history=self.history,
            has_gap=self.has_gap,
            clock=self.now,
            committed_seq=self.committed_seq,
            notice=notice,
        )

    async def page(self, topic: str, *, after_seq: int, limit: int) -> MessagePage:
        """One page of ``topic``'s history after the cursor."""
        async with database_errors():
            return await store.page(
                engines=self.engines, topic=topic, after_seq=after_seq, limit=limit, now=self.now()
            )

    async def newest(self, topic: str, limit: int) -> list[Message]:
        """``topic``'s newest ``limit`` stored messages, newest first (the topic page)."""
        async with database_errors():
            return await store.newest(
                engines=self.engines, topic=topic, limit=limit, now=self.now()
            )

    async def topics(self) -> list[TopicStat]:
        async with database_errors():
            return await store.topic_stats(engines=self.engines, now=self.now())

    async def stats(self) -> Stats:
        """Every message published so far, and the rate over the last minute (per second)."""
        now = self.now()
        async with database_errors():
            total = await store.last_seq(engines=self.engines)
            recent = await store.published_since(
                engines=self.engines, cutoff=now - STATS_WINDOW, window=STATS_ROWS
            )
        return Stats(messages=total, messages_rate=round(recent / STATS_WINDOW, 3))

    async def prune(self) -> int:
        """Delete expired messages; return how many."""
        async with database_errors():
            return await store.prune(engines=self.engines, now=self.now())

    async def check_health(self) -> None:
        """Raise :class:`Unavailable` unless the database answers."""
        async with database_errors():
            await store.ping(engines=self.engines)

    # --- identity and access (the decisions live in core.identity) ----------------------

    async def authenticate(self, creds: Credentials | None) -> Identity:
        """The identity that ``creds`` prove: anonymous for ``None``.

        Raise :class:`Unauthorized` for wrong, unknown or expired credentials.
        """
        return await self.identity.authenticate(creds)

    async def identity_for_session(self, username: str, session_version: str) -> Identity:
        """The user of a web session cookie, or anonymous once the user or version changed."""
        return await self.identity.identity_for_session(username, session_version)

    async def login(self, username: str, password: str) -> Identity:
        """Check the web form's user name and password; raise :class:`Unauthorized` if wrong."""
        return await self.identity.login(username, password)

    async def authorize(self, identity: Identity, topic: str, action: Action) -> None:
        """Raise :class:`Unauthorized` (anonymous) or :class:`Forbidden` unless allowed."""
        await self.identity.authorize(identity, topic, action)

    async def readable(
        self, identity: Identity, topics: Sequence[str]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Split ``topics`` into (readable, forbidden); raise when none is readable."""
        return await self.identity.readable(identity, topics)
