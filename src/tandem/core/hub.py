"""In-process fan-out: one hub per process, fed in sequence order.

The relay feeds it what other processes committed; the runtime hands it this
process's own batches directly when they follow on from the last one seen.

The hub encodes each message at most once per wire format (an
:class:`Envelope` caches its encodings) and hands the same bytes to every
subscriber. Each subscriber has a bounded queue; one that falls too far behind
is dropped with a reason, and its client resumes by cursor. Memory stays bounded.

A subscriber whose door can write to its connection directly (a :data:`Sink`)
skips the queue once it is live: the hub writes each message's bytes to it in
the same loop that routes the message, with no task to wake per subscriber.
That is what keeps fan-out to thousands of subscribers on one process fast.

Everything here runs on the runtime's event loop; nothing is thread-safe.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import TypeAlias

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


Sink: TypeAlias = Callable[[Envelope], bool]
"""Writes a message to a subscriber's connection at once; ``False``: too far behind."""


class Subscriber:
    """One live subscription: its topics, filter and bounded queue (or its sink)."""

    __slots__ = (
        "_items",
        "_waiter",
        "closed",
        "filter",
        "floor",
        "limit",
        "paused",
        "sink",
        "topics",
    )

    def __init__(
        self, topics: Iterable[str], filter: MessageFilter, limit: int, *, paused: bool = False
    ) -> None:
        self.topics = frozenset(topics)
        self.filter = filter
        self.limit = limit
        # While paused, live messages are dropped: the stream is still reading them
        # from history (see tandem.core.stream).
        self.paused = paused
        # Messages at or below this sequence number were handed out already, or
        # came before the subscription: not worth a place in the queue.
        self.floor = 0
        self.closed: str | None = None
        self.sink: Sink | None = None
        self._items: deque[Envelope] = deque()
        # The future that take() awaits while the queue is empty (one consumer).
        self._waiter: asyncio.Future[None] | None = None

    def push(self, envelope: Envelope) -> None:
        if self.closed is not None or self.paused or envelope.message.seq <= self.floor:
            return
        if self.sink is not None:
            if self.sink(envelope):
                self.floor = envelope.message.seq
            else:
                self.close(SLOW_CONSUMER)
            return
        if len(self._items) >= self.limit:
            self.close(SLOW_CONSUMER)
            return
        self._items.append(envelope)
        self._wake()

    def write_through(self, sink: Sink, *, after: int) -> bool:
        """From now on hand messages past ``after`` to ``sink`` instead of the queue.

        Only from a live, empty queue (so that nothing queued could be overtaken);
        returns whether it switched. :meth:`take` then waits for the close alone.
        """
        if self._items or self.paused or self.closed is not None:
            return False
        self.floor = max(self.floor, after)
        self.sink = sink
        return True

    def close(self, reason: str) -> None:
        """Stop the subscription; what was queued is dropped, the client resumes by cursor."""
        if self.closed is None:
            self.closed = reason
            self._items.clear()
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            _wake_up(self._waiter)

    async def take(self, max_wait: float) -> list[Envelope] | None:
        """Wait up to ``max_wait`` seconds; return what is queued (``None`` on timeout).

        Returns an empty list when the subscription was closed.
        """
        if not self._items and self.closed is None:
            # A bare future and a timer handle: this runs once per message for every
            # subscriber, and asyncio.Event plus asyncio.timeout cost twice the CPU and
            # more garbage (wait_for would even add a Task per waiting subscriber).
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(max_wait, _wake_up, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                timer.cancel()
            if not self._items and self.closed is None:
                return None
        if self.closed is not None:
            return []
        items = list(self._items)
        self._items.clear()
        return items


def _wake_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Hub:
    """Routes messages to the subscribers of their topic, in sequence order, once."""

    def __init__(self, queue_limit: int) -> None:
        self.queue_limit = queue_limit
        self._by_topic: dict[str, set[Subscriber]] = {}
        self._all: set[Subscriber] = set()
        self.last_seq = 0
        # Counts every subscribe ever made, so that the relay can tell whether
        # anyone subscribed while it was looking away (see Relay.catch_up).
        self.registrations = 0
        self.closing: str | None = None

    @property
    def count(self) -> int:
        """How many subscribers are registered."""
        return len(self._all)

    @property
    def written_through(self) -> int:
        """How many of them are written to directly (see :data:`Sink`)."""
        return sum(1 for subscriber in self._all if subscriber.sink is not None)

    def subscribe(
        self, topics: Iterable[str], filter: MessageFilter, *, paused: bool = False
    ) -> Subscriber:
        subscriber = Subscriber(topics, filter, self.queue_limit, paused=paused)
        self.registrations += 1
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
