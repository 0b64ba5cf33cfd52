"""The subscribe service: one subscription's events, for every transport.

Order of events: ``open``; a ``gap`` notice when the cursor points into what
retention already pruned; the stored messages after the cursor; then live
messages, with a ``keepalive`` whenever nothing happened for a while. A
subscription the hub drops (slow consumer, shutdown) ends with ``close``.

Registering with the hub *before* reading history is what makes it gap-free:
anything committed after the history read reaches the queue, and anything in
both is dropped by sequence number. While a long history is read page by page
the subscription is paused (live messages are dropped, not queued, so catching
up cannot overflow the queue); once a page comes back short it resumes and
reads once more, and from then on the same argument holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from tandem.core.hub import Envelope, Hub, Sink, Subscriber
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
        notice: str | None = None,
    ) -> None:
        self.topics = tuple(topics)
        # Said in the ``open`` event: which requested topics were skipped, say.
        self.notice = notice
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
        self._registered_at = 0
        self._sink: Sink | None = None
        self._phase: Literal["open", "history", "settle", "live", "done"] = "open"

    @property
    def last_seq(self) -> int:
        """The sequence number of the last message handed out."""
        # Messages written through a sink move the subscriber's floor instead.
        floor = self._subscriber.floor if self._subscriber is not None else 0
        return max(self._last_seq, floor)

    def write_through(self, sink: Sink) -> None:
        """Let live messages go straight to ``sink`` once history is behind.

        The stream switches at the first moment its queue is empty in the live
        phase; from then on its batches carry only keepalives and the close.
        """
        self._sink = sink

    def _event(
        self, kind: EventKind, envelope: Envelope | None = None, detail: str | None = None
    ) -> Event:
        return Event(kind, self._clock(), self._label, envelope, detail)

    async def next_batch(self) -> list[Event] | None:
        """The next events, waiting at most the keepalive interval; ``None`` once finished."""
        while True:
            if self._phase == "open":
                events = await self._open()
            elif self._phase in ("history", "settle"):
                events = await self._more_history()
            elif self._phase == "live" and self._subscriber is not None:
                return await self._live(self._subscriber)
            else:
                return None
            if events:  # an empty history page is no news: go on to the next phase
                return events

    async def batches(self) -> AsyncIterator[list[Event]]:
        while (batch := await self.next_batch()) is not None:
            yield batch

    def end(self, reason: str) -> None:
        """Finish a live stream from outside: its next batch is a ``close`` event."""
        if self._subscriber is not None:
            self._subscriber.close(reason)

    def close(self) -> None:
        """Leave the hub. Idempotent; call it however the stream ends."""
        if self._subscriber is not None:
            self._last_seq = self.last_seq
            self._hub.unsubscribe(self._subscriber)
            self._subscriber = None
        self._phase = "done"

    async def _open(self) -> list[Event]:
        # Register first, read history second: see the module docstring.
        reads_history = self.since.kind != "none"
        self._subscriber = self._hub.subscribe(self.topics, self.filter, paused=reads_history)
        self._registered_at = self._hub.last_seq
        # Nothing at or before the starting point is ever handed out.
        self._last_seq = {"none": self._hub.last_seq, "seq": self.since.value}.get(
            self.since.kind, 0
        )
        if self.since.kind == "none" and self._committed_seq is not None:
            # The hub lags the database by one relay read: without this, a message
            # committed before the subscription would still arrive as "new".
            self._last_seq = max(self._last_seq, await self._committed_seq())
            self._subscriber.floor = self._last_seq
        events = [self._event("open", detail=self.notice)]
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
            self._phase = "settle"
        return events + self._messages(first)

    async def _more_history(self) -> list[Event]:
        if self._phase == "settle" and self._subscriber is not None:
            # Caught up with what was committed a moment ago: queue live messages
            # from now on, then read once more (see the module docstring).
            self._subscriber.paused = False
        page = await self._history(
            HistoryQuery(
                self.topics,
                # Until something was handed out, the client's own cursor still applies
                # (a time, "latest"); after that, everything past the last message.
                self._resume_point(),
                self.filter,
                HISTORY_BATCH,
                # Live-only messages dropped while paused are read here instead.
                live_after=self._registered_at,
            )
        )
        if len(page) < HISTORY_BATCH:
            self._phase = "live" if self._phase == "settle" else "settle"
        return self._messages(page)

    async def _live(self, subscriber: Subscriber) -> list[Event]:
        if self._sink is not None and subscriber.write_through(self._sink, after=self._last_seq):
            self._sink = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.keepalive
        while True:
            # One deadline: batches of duplicates must not postpone the keepalive.
            envelopes = await subscriber.take(max(0.0, deadline - loop.time()))
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

    def _resume_point(self) -> Since:
        # After something was handed out: everything past it. Before: the client's
        # own cursor still applies (a time, "all"), except that "latest" found
        # nothing, so what counts is what came after the subscription began.
        if self._last_seq:
            return Since("seq", self._last_seq)
        if self.since.kind == "latest":
            return Since("seq", self._registered_at)
        return self.since

    def _messages(self, messages: list[Message]) -> list[Event]:
        fresh = [msg for msg in messages if msg.seq > self._last_seq]
        if fresh:
            self._last_seq = max(self._last_seq, fresh[-1].seq)
        return [self._event("message", Envelope(msg)) for msg in fresh]
