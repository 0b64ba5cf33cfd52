"""Storage of messages: the only module that writes SQL for them.

Every function takes its collaborators as keyword arguments and returns plain
schemas, never rows, so that results can cross the portal between threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tandem.core.db import Engines
from tandem.core.ids import encode_id
from tandem.core.models import counters, messages
from tandem.core.schemas import HistoryQuery, Message, MessagePage, NewMessage, TopicStat

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
)


async def insert_messages(
    *, engines: Engines, batch: Sequence[NewMessage], now: int, cache_duration: int
) -> list[Message]:
    """Store ``batch`` in one write transaction and return the messages, in order.

    Messages with ``cache=False`` get an id and a sequence number (so that their
    id is still a valid cursor) but no row.
    """
    async with engines.write.begin() as conn:
        first = await _reserve_seqs(conn, len(batch))
        stored = [
            Message(
                id=encode_id(first + offset),
                seq=first + offset,
                time=now,
                expires=now + cache_duration,
                topic=new.topic,
                message=new.message,
                title=new.title,
                priority=new.priority,
                tags=new.tags,
                click=new.click,
            )
            for offset, new in enumerate(batch)
        ]
        rows = [_to_row(msg) for msg, new in zip(stored, batch, strict=True) if new.cache]
        if rows:
            await conn.execute(insert(messages), rows)
    return stored


async def _reserve_seqs(conn: AsyncConnection, count: int) -> int:
    """Take ``count`` sequence numbers; the row lock is held until commit."""
    stmt = (
        update(counters)
        .where(counters.c.name == "messages")
        .values(value=counters.c.value + count)
        .returning(counters.c.value)
    )
    last = (await conn.execute(stmt)).scalar_one()
    return int(last) - count + 1


async def history(*, engines: Engines, query: HistoryQuery, now: int) -> list[Message]:
    """Return the stored, unexpired messages that ``query`` asks for, oldest first."""
    since = query.since
    if since.kind == "none" or not query.topics:
        return []
    stmt = select(*_COLUMNS).where(messages.c.topic.in_(query.topics), messages.c.expires > now)
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
        .where(messages.c.topic == topic, messages.c.seq > after_seq, messages.c.expires > now)
        .order_by(messages.c.seq)
        .limit(limit + 1)
    )
    async with engines.read.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    found = [_to_message(row) for row in rows[:limit]]
    more = len(rows) > limit
    return MessagePage(messages=found, next_cursor=found[-1].id if more and found else None)


async def topic_stats(*, engines: Engines, now: int) -> list[TopicStat]:
    """Return every topic with unexpired messages, by name."""
    stmt = (
        select(messages.c.topic, func.count(), func.max(messages.c.time))
        .where(messages.c.expires > now)
        .group_by(messages.c.topic)
        .order_by(messages.c.topic)
    )
    async with engines.read.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [TopicStat(name=row[0], messages=int(row[1]), last_time=row[2]) for row in rows]


async def prune(*, engines: Engines, now: int) -> int:
    """Delete expired messages and return how many went."""
    async with engines.write.begin() as conn:
        result = await conn.execute(delete(messages).where(messages.c.expires <= now))
    return int(result.rowcount)


async def ping(*, engines: Engines) -> None:
    """Raise if the database does not answer a trivial query."""
    async with engines.read.connect() as conn:
        await conn.execute(text("SELECT 1"))


def _to_row(msg: Message) -> dict[str, Any]:
    return {
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
    )


def _split_tags(value: str | None) -> tuple[str, ...]:
    return tuple(value.split(",")) if value else ()
