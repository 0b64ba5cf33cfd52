"""Parse what a subscriber or a poller asks for: ``since=``, ``poll=`` and filters."""

from __future__ import annotations

from dataclasses import dataclass, field

from tandem.core.durations import is_duration, parse_duration
from tandem.core.errors import InvalidInput
from tandem.core.ids import decode_id
from tandem.core.schemas import (
    SINCE_ALL,
    SINCE_LATEST,
    SINCE_NONE,
    MessageFilter,
    Since,
)
from tandem.protocol.headers import Options
from tandem.protocol.publish import parse_bool, parse_priority, parse_tags
from tandem.typing import HeaderMap, QueryMap

_SINCE_WORDS = {"all": SINCE_ALL, "latest": SINCE_LATEST, "none": SINCE_NONE}
_MAX_UNIX_DIGITS = 11


def parse_since(value: str, *, now: int) -> Since:
    """Parse ``since=``: ``all``, ``latest``, ``none``, a duration, a unix time or a message id."""
    text = value.strip()
    # Words and duration units in any case; message ids are case-sensitive.
    lowered = text.lower()
    word = _SINCE_WORDS.get(lowered)
    if word is not None:
        return word
    if is_duration(lowered):
        return Since("time", max(0, now - parse_duration(lowered)))
    if text.isascii() and text.isdigit() and len(text) <= _MAX_UNIX_DIGITS:
        return Since("time", int(text))
    seq = decode_id(text)
    if seq is None:
        raise InvalidInput(
            "invalid since: use all, latest, none, a duration (10m), a unix time or a message id"
        )
    return Since("seq", seq)


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    """A parsed subscription or poll."""

    since: Since
    poll: bool = False
    filter: MessageFilter = field(default_factory=MessageFilter)


def parse_subscribe(headers: HeaderMap, query: QueryMap, *, now: int) -> SubscribeRequest:
    """Parse a subscription's options.

    A resume cursor (the SSE ``Last-Event-ID`` header or ``last_event_id``
    parameter) means ``since=<id>`` and wins over ``since``. A poll starts
    from ``all`` by default, a stream from ``none``.
    """
    options = Options(headers, query)
    poll = parse_bool(options.get("x-poll", "poll", "po"), default=False, name="poll")
    cursor = options.get("last-event-id", "last_event_id")
    since_text = cursor or options.get("x-since", "since", "si")
    if since_text:
        since = parse_since(since_text, now=now)
    else:
        since = SINCE_ALL if poll else SINCE_NONE
    return SubscribeRequest(since=since, poll=poll, filter=parse_filter(options))


def parse_filter(options: Options) -> MessageFilter:
    """Parse the ``priority``, ``tags``, ``title`` and ``message`` filters."""
    priorities = frozenset(
        priority
        for part in (options.get("x-priority", "priority", "prio", "p") or "").split(",")
        if (priority := parse_priority(part)) is not None
    )
    return MessageFilter(
        priorities=priorities,
        tags=frozenset(parse_tags(options.get("x-tags", "tags", "tag", "ta"))),
        title=options.get("x-title", "title", "ti", "t"),
        message=options.get("x-message", "message", "m"),
    )
