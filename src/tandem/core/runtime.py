"""The core runtime of one process: engines and services behind one facade.

The Quart app starts it in its serving lifespan; the Flask app starts it on
the bridge's loop thread. Every method is a coroutine for that loop, and every
result is a plain schema that may cross threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, OperationalError

from tandem.core import store
from tandem.core.batching import BatchWriter
from tandem.core.db import Engines, create_engines
from tandem.core.errors import Unavailable
from tandem.core.schemas import HistoryQuery, Message, MessagePage, NewMessage, TopicStat
from tandem.core.settings import Settings

log = logging.getLogger(__name__)


class Runtime:
    """Everything one process needs to serve Tandem, bound to one event loop."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._engines: Engines | None = None
        self._writer = BatchWriter[NewMessage, Message](self._insert)

    @property
    def engines(self) -> Engines:
        if self._engines is None:
            raise RuntimeError("the runtime is not started")
        return self._engines

    async def start(self) -> None:
        """Create the engines on the running loop. Nothing is connected yet."""
        self._engines = create_engines(self.settings)
        log.info("runtime started", extra={"database": self.engines.dialect})

    async def stop(self) -> None:
        """Finish pending writes and close every connection."""
        await self._writer.close()
        if self._engines is not None:
            await self._engines.dispose()
            self._engines = None

    def now(self) -> int:
        return int(self._clock())

    async def publish(self, new: NewMessage) -> Message:
        """Store ``new`` (unless ``cache`` is off) and return the published message."""
        async with _database_errors():
            return await self._writer.submit(new)

    async def _insert(self, batch: Sequence[NewMessage]) -> list[Message]:
        return await store.insert_messages(
            engines=self.engines,
            batch=batch,
            now=self.now(),
            cache_duration=self.settings.cache_duration,
        )

    async def history(self, query: HistoryQuery) -> list[Message]:
        """Stored messages for a poll or the start of a subscription."""
        async with _database_errors():
            return await store.history(engines=self.engines, query=query, now=self.now())

    async def page(self, topic: str, *, after_seq: int, limit: int) -> MessagePage:
        """One page of ``topic``'s history after the cursor."""
        async with _database_errors():
            return await store.page(
                engines=self.engines, topic=topic, after_seq=after_seq, limit=limit, now=self.now()
            )

    async def topics(self) -> list[TopicStat]:
        async with _database_errors():
            return await store.topic_stats(engines=self.engines, now=self.now())

    async def prune(self) -> int:
        """Delete expired messages; return how many."""
        async with _database_errors():
            return await store.prune(engines=self.engines, now=self.now())

    async def check_health(self) -> None:
        """Raise :class:`Unavailable` unless the database answers."""
        async with _database_errors():
            await store.ping(engines=self.engines)


@asynccontextmanager
async def _database_errors() -> AsyncIterator[None]:
    # A lost or locked database is a 503 to the client, not a 500 with a traceback.
    try:
        yield
    except (OperationalError, DBAPIError, OSError) as exc:
        log.warning("database unavailable: %s", type(exc).__name__)
        raise Unavailable("the database is unavailable, try again shortly", retry_after=5) from exc
