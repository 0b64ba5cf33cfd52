"""The subscribe service: one subscription's events, for every transport.

Order of events: ``open``; a ``gap`` notice when the cursor points into what
retention already pruned; the stored messages after the cursor; then live
messages, with a ``keepalive`` whenever nothing happened for a while. A
subscription the hub drops (slow consumer, shutdown) ends with ``close``.

Registering with the hub *before* reading history is what makes it gap-free:
anything committed after the history read reaches the queue, and anything in
both is dropped by sequence number.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from tandem.core.hub import Envelope, Hub, Subscriber
from tandem.core.schemas import HistoryQuery, Message, MessageFilter, Since

EventKind = Literal["open", "keepalive", "message", "gap", "close"]
HISTORY_BATCH = 500

GAP_NOTICE = "some messages after your cursor were pruned by retention; reload the topic"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing to tell a subscriber. ``envelope`` is set for messages only."""

    kind: EventKind
    time: int
    topic: str
    envelope: Envelope | None = None
    detail: str | None = None


class Stream:
    """A subscription, pulled one batch of events at a time.

    Pull-based so that both doors can drive it: Quart iterates it on the
    server's loop, Flask calls :meth:`next_batch` through the portal.
    """

    def __init__(
        self,
        *,
        hub: Hub,
        topics: Sequence[str],
        since: Since,
        filter: MessageFilter,
        keepalive: float,
        history: Callable[[HistoryQuery], Awaitable[list[Message]]],
        has_gap: Callable[[Sequence[str], Since], Awaitable[bool]],
        clock: Callable[[], int],
        committed_seq: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.topics = tuple(topics)
        self.since = since
        self.filter = filter
        self.keepalive = keepalive
        self._hub = hub
        self._history = history
        self._has_gap = has_gap
        self._clock = clock
        self._committed_seq = committed_seq
        self._label = ",".join(self.topics)
        self._subscriber: Subscriber | None = None
        self._last_seq = 0
        self._phase: Literal["open", "history", "live", "done"] = "open"

    @property
    def last_seq(self) -> int:
        """The sequence number of the last message handed out."""
        return self._last_seq

    def _event(
        self, kind: EventKind, envelope: Envelope | None = None, detail: str | None = None
    ) -> Event:
        return Event(kind, self._clock(), self._label, envelope, detail)

    async def next_batch(self) -> list[Event] | None:
        """The next events, waiting at most the keepalive interval; ``None`` once finished."""
        if self._phase == "open":
            return await self._open()
        if self._phase == "history":
            return await self._more_history()
        if self._phase == "live" and self._subscriber is not None:
            return await self._live(self._subscriber)
        return None

    async def batches(self) -> AsyncIterator[list[Event]]:
        while (batch := await self.next_batch()) is not None:
            yield batch

    def close(self) -> None:
        """Leave the hub. Idempotent; call it however the stream ends."""
        if self._subscriber is not None:
            self._hub.unsubscribe(self._subscriber)
            self._subscriber = None
        self._phase = "done"

    async def _open(self) -> list[Event]:
        # Register first, read history second: see the module docstring.
        self._subscriber = self._hub.subscribe(self.topics, self.filter)
        # Nothing at or before the starting point is ever handed out.
        self._last_seq = {"none": self._hub.last_seq, "seq": self.since.value}.get(
            self.since.kind, 0
        )
        if self.since.kind == "none" and self._committed_seq is not None:
            # The hub lags the database by one relay read: without this, a message
            # committed before the subscription would still arrive as "new".
            self._last_seq = max(self._last_seq, await self._committed_seq())
        events = [self._event("open")]
        if await self._has_gap(self.topics, self.since):
            events.append(self._event("gap", detail=GAP_NOTICE))
        self._phase = "history"
        if self.since.kind == "none":
            self._phase = "live"
            return events
        first = await self._history(
            HistoryQuery(self.topics, self.since, self.filter, limit=HISTORY_BATCH)
        )
        if self.since.kind == "latest" or len(first) < HISTORY_BATCH:
            self._phase = "live"
        return events + self._messages(first)

    async def _more_history(self) -> list[Event]:
        page = await self._history(
            HistoryQuery(self.topics, Since("seq", self._last_seq), self.filter, HISTORY_BATCH)
        )
        if len(page) < HISTORY_BATCH:
            self._phase = "live"
        return self._messages(page)

    async def _live(self, subscriber: Subscriber) -> list[Event]:
        while True:
            envelopes = await subscriber.take(self.keepalive)
            if envelopes is None:
                return [self._event("keepalive")]
            if subscriber.closed is not None:
                reason = subscriber.closed
                self.close()
                return [self._event("close", detail=reason)]
            fresh = [env for env in envelopes if env.message.seq > self._last_seq]
            if fresh:
                self._last_seq = fresh[-1].message.seq
                return [self._event("message", env) for env in fresh]

    def _messages(self, messages: list[Message]) -> list[Event]:
        fresh = [msg for msg in messages if msg.seq > self._last_seq]
        if fresh:
            self._last_seq = max(self._last_seq, fresh[-1].seq)
        return [self._event("message", Envelope(msg)) for msg in fresh]
