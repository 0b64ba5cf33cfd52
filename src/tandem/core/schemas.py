"""Plain data objects that cross every boundary: portal, protocol and views.

The core never hands out ORM instances; it hands out these frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SinceKind = Literal["all", "latest", "none", "time", "seq"]


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message as a client asked to publish it, already validated."""

    topic: str
    message: str
    title: str | None = None
    priority: int | None = None
    tags: tuple[str, ...] = ()
    click: str | None = None
    cache: bool = True


@dataclass(frozen=True, slots=True)
class Message:
    """A published message. ``seq`` orders it; ``id`` is its opaque public cursor."""

    id: str
    seq: int
    time: int
    expires: int
    topic: str
    message: str
    title: str | None = None
    priority: int | None = None
    tags: tuple[str, ...] = ()
    click: str | None = None


@dataclass(frozen=True, slots=True)
class Since:
    """Where a subscription or poll starts.

    ``time`` keeps messages published at or after ``value`` (unix seconds);
    ``seq`` keeps messages after the sequence number ``value``.
    """

    kind: SinceKind
    value: int = 0


SINCE_ALL = Since("all")
SINCE_NONE = Since("none")
SINCE_LATEST = Since("latest")


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """ntfy's subscription filters. An empty filter matches everything.

    ``priorities`` matches the effective priority (3 when none was given),
    ``tags`` must all be present, ``title`` and ``message`` match exactly.
    """

    priorities: frozenset[int] = frozenset()
    tags: frozenset[str] = frozenset()
    title: str | None = None
    message: str | None = None

    def matches(self, msg: Message) -> bool:
        if self.priorities and (msg.priority or 3) not in self.priorities:
            return False
        if self.tags and not self.tags.issubset(msg.tags):
            return False
        if self.title is not None and msg.title != self.title:
            return False
        return self.message is None or msg.message == self.message


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Stored messages of ``topics`` from ``since`` on, oldest first."""

    topics: tuple[str, ...]
    since: Since = SINCE_ALL
    filter: MessageFilter = field(default_factory=MessageFilter)
    limit: int | None = None
    # Also return live-only (X-Cache: no) messages after this sequence number:
    # a stream catching up reads what it would otherwise have received live.
    live_after: int | None = None


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of a topic's history; ``next_cursor`` is ``None`` on the last page."""

    messages: list[Message]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class TopicStat:
    """A topic that has stored messages."""

    name: str
    messages: int
    last_time: int | None
