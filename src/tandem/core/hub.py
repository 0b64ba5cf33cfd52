"""In-process fan-out: one hub per process, fed in sequence order.

The relay feeds it what other processes committed; the runtime hands it this
process's own batches directly when they follow on from the last one seen.

The hub encodes each message at most once per wire format (an
:class:`Envelope` caches its encodings) and hands the same bytes to every
subscriber. Each subscriber has a bounded queue; one that falls too far behind
is dropped with a reason, and its client resumes by cursor. Memory stays bounded.

Everything here runs on the runtime's event loop; nothing is thread-safe.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

from tandem.core.schemas import Message, MessageFilter

SLOW_CONSUMER = "slow consumer: too many undelivered messages"
SHUTTING_DOWN = "server shutting down"


class Envelope:
    """A message with its wire encodings, made on first use and shared."""

    __slots__ = ("_encoded", "message")

    def __init__(self, message: Message) -> None:
        self.message = message
        self._encoded: dict[str, bytes] = {}

    def encoded(self, fmt: str, encode: Callable[[Message], bytes]) -> bytes:
        data = self._encoded.get(fmt)
        if data is None:
            data = self._encoded[fmt] = encode(self.message)
        return data


class Subscriber:
    """One live subscription: its topics, filter and bounded queue."""

    __slots__ = ("_items", "_ready", "closed", "filter", "limit", "paused", "topics")

    def __init__(
        self, topics: Iterable[str], filter: MessageFilter, limit: int, *, paused: bool = False
    ) -> None:
        self.topics = frozenset(topics)
        self.filter = filter
        self.limit = limit
        # While paused, live messages are dropped: the stream is still reading them
        # from history (see tandem.core.stream).
        self.paused = paused
        self.closed: str | None = None
        self._items: deque[Envelope] = deque()
        self._ready = asyncio.Event()

    def push(self, envelope: Envelope) -> None:
        if self.closed is not None or self.paused:
            return
        if len(self._items) >= self.limit:
            self.close(SLOW_CONSUMER)
            return
        self._items.append(envelope)
        self._ready.set()

    def close(self, reason: str) -> None:
        """Stop the subscription; what was queued is dropped, the client resumes by cursor."""
        if self.closed is None:
            self.closed = reason
            self._items.clear()
            self._ready.set()

    async def take(self, max_wait: float) -> list[Envelope] | None:
        """Wait up to ``max_wait`` seconds; return what is queued (``None`` on timeout).

        Returns an empty list when the subscription was closed.
        """
        if not self._items and self.closed is None:
            # asyncio.timeout, not wait_for: wait_for wraps the wait in a Task of its
            # own, and with ten thousand idle subscribers those tasks add up.
            try:
                async with asyncio.timeout(max_wait):
                    await self._ready.wait()
            except TimeoutError:
                return None
        self._ready.clear()
        if self.closed is not None:
            return []
        items = list(self._items)
        self._items.clear()
        return items


class Hub:
    """Routes messages to the subscribers of their topic, in sequence order, once."""

    def __init__(self, queue_limit: int) -> None:
        self.queue_limit = queue_limit
        self._by_topic: dict[str, set[Subscriber]] = {}
        self._all: set[Subscriber] = set()
        self.last_seq = 0
        self.closing: str | None = None

    @property
    def count(self) -> int:
        """How many subscribers are registered."""
        return len(self._all)

    def subscribe(
        self, topics: Iterable[str], filter: MessageFilter, *, paused: bool = False
    ) -> Subscriber:
        subscriber = Subscriber(topics, filter, self.queue_limit, paused=paused)
        if self.closing is not None:
            subscriber.close(self.closing)
        for topic in subscriber.topics:
            self._by_topic.setdefault(topic, set()).add(subscriber)
        self._all.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget ``subscriber``; calling it twice is harmless."""
        self._all.discard(subscriber)
        for topic in subscriber.topics:
            group = self._by_topic.get(topic)
            if group is not None:
                group.discard(subscriber)
                if not group:
                    del self._by_topic[topic]

    def deliver(self, messages: Iterable[Message]) -> None:
        """Hand ``messages`` (ascending ``seq``) to their subscribers; skip any seen before."""
        for msg in messages:
            if msg.seq <= self.last_seq:
                continue
            self.last_seq = msg.seq
            group = self._by_topic.get(msg.topic)
            if not group:
                continue
            envelope = Envelope(msg)
            for subscriber in tuple(group):
                if subscriber.filter.matches(msg):
                    subscriber.push(envelope)

    def close_all(self, reason: str) -> None:
        """End every subscription, and any made from now on, with ``reason``."""
        self.closing = reason
        for subscriber in self._all:
            subscriber.close(reason)
