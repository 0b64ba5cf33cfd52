"""Storage of messages: the only module that writes SQL for them.

Every function takes its collaborators as keyword arguments and returns plain
schemas, never rows, so that results can cross the portal between threads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, delete, false, func, insert, or_, select, text, true, update
from sqlalchemy.engine import Connection

from tandem.core.db import Engines
from tandem.core.ids import encode_id
from tandem.core.models import counters, messages, prune_marks
from tandem.core.schemas import (
    HistoryQuery,
    Message,
    MessageAction,
    MessagePage,
    NewMessage,
    Since,
    TopicStat,
)

# How long a live-only (X-Cache: no) row stays for relays in other processes.
LIVE_ONLY_GRACE = 60

_COLUMNS = (
    messages.c.id,
    messages.c.seq,
    messages.c.time,
    messages.c.expires,
    messages.c.topic,
    messages.c.message,
    messages.c.title,
    messages.c.priority,
    messages.c.tags,
    messages.c.click,
    messages.c.icon,
    messages.c.content_type,
    messages.c.actions,
    messages.c.encoding,
)


_stored = messages.c.live_only == false()
_live_only = messages.c.live_only == true()


async def insert_messages(
    *,
    engines: Engines,
    batch: Sequence[NewMessage],
    now: int,
    cache_duration: int,
    notify_channel: str | None = None,
) -> list[Message]:
    """Store ``batch`` in one write transaction and return the messages, in order.

    Messages with ``cache=False`` get an id and a sequence number too, so that
    their id is still a valid cursor; their row is only a relay record, which
    history never shows (see :data:`LIVE_ONLY_GRACE`). They expire at once.
    """

    def write(conn: Connection) -> list[Message]:
        first = _reserve_seqs(conn, len(batch))
        stored = [
            Message(
                id=encode_id(first + offset),
                seq=first + offset,
                time=now,
                expires=now + cache_duration if new.cache else now,
                topic=new.topic,
                message=new.message,
                title=new.title,
                priority=new.priority,
                tags=new.tags,
                click=new.click,
                icon=new.icon,
                content_type=new.content_type,
                actions=new.actions,
                encoding=new.encoding,
            )
            for offset, new in enumerate(batch)
        ]
        rows = [
            _to_row(msg, live_only=not new.cache) for msg, new in zip(stored, batch, strict=True)
        ]
        conn.execute(_INSERT, rows)
        if notify_channel is not None:
            # PostgreSQL delivers a NOTIFY only when its transaction commits.
            conn.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": notify_channel, "payload": str(stored[-1].seq)},
            )
        return stored

    return await engines.run_write(write)


# Built once: these run on every publish, and building a statement costs more
# than SQLAlchemy's compiled cache saves when it is rebuilt each time.
_RESERVE = (
    update(counters)
    .where(counters.c.name == "messages")
    .values(value=counters.c.value + bindparam("count"))
    .returning(counters.c.value)
)
_INSERT = insert(messages)


def _reserve_seqs(conn: Connection, count: int) -> int:
    """Take ``count`` sequence numbers; the row lock is held until commit."""
    last = conn.execute(_RESERVE, {"count": count}).scalar_one()
    return int(last) - count + 1


async def history(*, engines: Engines, query: HistoryQuery, now: int) -> list[Message]:
    """Return the stored, unexpired messages that ``query`` asks for, oldest first."""
    since = query.since
    if since.kind == "none" or not query.topics:
        return []
    kept = and_(messages.c.expires > now, _stored)
    if query.live_after is not None:
        kept = or_(kept, and_(_live_only, messages.c.seq > query.live_after))
    stmt = select(*_COLUMNS).where(messages.c.topic.in_(query.topics), kept)
    if since.kind == "time":
        stmt = stmt.where(messages.c.time >= since.value)
    elif since.kind == "seq":
        stmt = stmt.where(messages.c.seq > since.value)
    latest_only = since.kind == "latest"
    stmt = stmt.order_by(messages.c.seq.desc() if latest_only else messages.c.seq)
    unfiltered = query.filter == type(query.filter)()
    if unfiltered and (latest_only or query.limit is not None):
        stmt = stmt.limit(1 if latest_only else query.limit)
    async with engines.read.connect() as conn:
        result = await conn.stream(stmt)
        found: list[Message] = []
        async for row in result:
            msg = _to_message(row)
            if not query.filter.matches(msg):
                continue
            found.append(msg)
            if latest_only or (query.limit is not None and len(found) >= query.limit):
                break
        await result.close()
    return found


async def page(
    *, engines: Engines, topic: str, after_seq: int, limit: int, now: int
) -> MessagePage:
    """Return up to ``limit`` messages of ``topic`` after ``after_seq``, oldest first."""
    stmt = (
        select(*_COLUMNS)
        .where(
            messages.c.topic == topic, messages.c.seq > after_seq, messages.c.expires > now, _stored
        )
        .order_by(messages.c.seq)
        .limit(limit + 1)
    )
    async with engines.read.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    found = [_to_message(row) for row in rows[:limit]]
    more = len(rows) > limit
    return MessagePage(messages=found, next_cursor=found[-1].id if more and found else None)


async def newest(*, engines: Engines, topic: str, limit: int, now: int) -> list[Message]:
    """Return up to ``limit`` of ``topic``'s newest stored messages, newest first."""
    stmt = (
        select(*_COLUMNS)
        .where(messages.c.topic == topic, messages.c.expires > now, _stored)
        .order_by(messages.c.seq.desc())
        .limit(limit)
    )
    async with engines.read.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_to_message(row) for row in rows]


async def topic_stats(*, engines: Engines, now: int) -> list[TopicStat]:
    """Return every topic with unexpired messages, by name."""
    stmt = (
        select(messages.c.topic, func.count(), func.max(messages.c.time))
        .where(messages.c.expires > now, _stored)
        .group_by(messages.c.topic)
        .order_by(messages.c.topic)
    )
    async with engines.read.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [TopicStat(name=row[0], messages=int(row[1]), last_time=row[2]) for row in rows]


async def prune(*, engines: Engines, now: int) -> int:
    """Delete expired messages and return how many went.

    Before deleting, it records per topic the newest sequence number and time
    it prunes, so that a stream can tell a client whose cursor points into the
    pruned range that it missed messages (the ``gap`` event).
    """
    expired = and_(messages.c.expires <= now, _stored)
    relayed = and_(_live_only, messages.c.time <= now - LIVE_ONLY_GRACE)

    def write(conn: Connection) -> int:
        newest = conn.execute(
            select(messages.c.topic, func.max(messages.c.seq), func.max(messages.c.time))
            .where(expired)
            .group_by(messages.c.topic)
        )
        for topic, seq, time in newest.all():
            _raise_mark(conn, topic, int(seq), int(time))
        return int(conn.execute(delete(messages).where(or_(expired, relayed))).rowcount)

    return await engines.run_write(write)


def _raise_mark(conn: Connection, topic: str, seq: int, time: int) -> None:
    # The write transaction serialises prunes, so read-then-write is safe here
    # and needs no dialect-specific upsert.
    current = conn.execute(
        select(prune_marks.c.pruned_seq, prune_marks.c.pruned_time).where(
            prune_marks.c.topic == topic
        )
    ).first()
    if current is None:
        conn.execute(insert(prune_marks).values(topic=topic, pruned_seq=seq, pruned_time=time))
    else:
        conn.execute(
            update(prune_marks)
            .where(prune_marks.c.topic == topic)
            .values(pruned_seq=max(seq, current[0]), pruned_time=max(time, current[1]))
        )


async def read_after(*, engines: Engines, after_seq: int, limit: int) -> list[Message]:
    """Every row after ``after_seq``, live-only ones included, oldest first: the relay's read."""
    stmt = select(*_COLUMNS).where(messages.c.seq > after_seq).order_by(messages.c.seq).limit(limit)
    async with engines.read.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_to_message(row) for row in rows]


async def published_since(*, engines: Engines, cutoff: int, window: int) -> int:
    """How many of the newest ``window`` messages were published at or after ``cutoff``.

    A range of the primary key, so the count costs at most ``window`` rows whatever the
    table holds; ``time`` has no index of its own.
    """
    floor = select(func.max(counters.c.value) - window).where(counters.c.name == "messages")
    stmt = select(func.count()).where(
        messages.c.seq > floor.scalar_subquery(), messages.c.time >= cutoff
    )
    async with engines.read.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def last_seq(*, engines: Engines) -> int:
    """The newest committed sequence number."""
    stmt = select(counters.c.value).where(counters.c.name == "messages")
    async with engines.read.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def has_gap(*, engines: Engines, topics: Sequence[str], since: Since, now: int) -> bool:
    """Tell whether messages that ``since`` asks for on ``topics`` are already gone.

    Only explicit cursors (a message id or a time) can have a gap; ``all`` means
    "whatever is kept".
    """
    if since.kind == "seq":
        mark_after = prune_marks.c.pruned_seq > since.value
        message_after = messages.c.seq > since.value
    elif since.kind == "time":
        mark_after = prune_marks.c.pruned_time >= since.value
        message_after = messages.c.time >= since.value
    else:
        return False
    pruned = select(prune_marks.c.topic).where(prune_marks.c.topic.in_(topics), mark_after)
    expired = select(messages.c.seq).where(
        messages.c.topic.in_(topics), message_after, messages.c.expires <= now, _stored
    )
    async with engines.read.connect() as conn:
        for stmt in (pruned.limit(1), expired.limit(1)):
            if (await conn.execute(stmt)).first() is not None:
                return True
    return False


async def ping(*, engines: Engines) -> None:
    """Raise if the database does not answer a trivial query."""
    async with engines.read.connect() as conn:
        await conn.execute(text("SELECT 1"))


def _to_row(msg: Message, *, live_only: bool) -> dict[str, Any]:
    return {
        "live_only": live_only,
        "seq": msg.seq,
        "id": msg.id,
        "topic": msg.topic,
        "time": msg.time,
        "expires": msg.expires,
        "message": msg.message,
        "title": msg.title,
        "priority": msg.priority,
        "tags": ",".join(msg.tags) if msg.tags else None,
        "click": msg.click,
        "icon": msg.icon,
        "content_type": msg.content_type,
        "actions": _actions_json(msg.actions),
        "encoding": msg.encoding,
    }


def _to_message(row: Any) -> Message:
    return Message(
        id=row.id,
        seq=row.seq,
        time=row.time,
        expires=row.expires,
        topic=row.topic,
        message=row.message,
        title=row.title,
        priority=row.priority,
        tags=_split_tags(row.tags),
        click=row.click,
        icon=row.icon,
        content_type=row.content_type,
        actions=_actions_from_json(row.actions),
        encoding=row.encoding,
    )


def _split_tags(value: str | None) -> tuple[str, ...]:
    return tuple(value.split(",")) if value else ()


def _actions_json(actions: Sequence[MessageAction]) -> str | None:
    if not actions:
        return None
    return orjson.dumps([dataclasses.asdict(action) for action in actions]).decode()


def _actions_from_json(value: str | None) -> tuple[MessageAction, ...]:
    if not value:
        return ()
    return tuple(
        MessageAction(
            **{
                **fields,
                "headers": tuple(map(tuple, fields.get("headers") or ())),
                "extras": tuple(map(tuple, fields.get("extras") or ())),
            }
        )
        for fields in orjson.loads(value)
    )
