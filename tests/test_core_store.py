"""Message storage through the Runtime, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import CACHE_SECONDS, CLOCK_START, Clock

from tandem.core import migrate
from tandem.core.errors import Unavailable
from tandem.core.ids import decode_id
from tandem.core.runtime import Runtime
from tandem.core.schemas import (
    SINCE_ALL,
    SINCE_LATEST,
    SINCE_NONE,
    HistoryQuery,
    Message,
    MessageFilter,
    NewMessage,
    Since,
)
from tandem.core.settings import Settings
from tandem.protocol.requests import parse_cursor

START = CLOCK_START
CACHE = CACHE_SECONDS


async def _history(rt: Runtime, *topics: str, **kwargs: object) -> list[Message]:
    return await rt.history(HistoryQuery(topics=topics, **kwargs))  # type: ignore[arg-type]


def _seqs(messages: list[Message]) -> list[int]:
    return [msg.seq for msg in messages]


# --- publish -------------------------------------------------------------------------------


async def test_publish_returns_the_stored_message(rt: Runtime) -> None:
    new = NewMessage(
        topic="alerts",
        message="disk full",
        title="host1",
        priority=5,
        tags=("warning", "skull"),
        click="https://example.com",
    )
    msg = await rt.publish(new)
    assert (msg.topic, msg.message, msg.title, msg.priority, msg.tags, msg.click) == (
        "alerts",
        "disk full",
        "host1",
        5,
        ("warning", "skull"),
        "https://example.com",
    )
    assert msg.time == START
    assert msg.expires == START + CACHE
    assert decode_id(msg.id) == msg.seq
    plain = await rt.publish(NewMessage(topic="alerts", message="plain"))
    assert (plain.title, plain.priority, plain.tags, plain.click) == (None, None, (), None)
    assert await _history(rt, "alerts") == [msg, plain]


# --- history -------------------------------------------------------------------------------


async def test_history_for_every_since_kind(rt: Runtime, clock: Clock) -> None:
    three = []
    for text in ("first", "second", "third"):
        three.append(await rt.publish(NewMessage(topic="t", message=text)))
        clock.now += 10
    await rt.publish(NewMessage(topic="elsewhere", message="not in t"))

    assert await _history(rt, "t", since=SINCE_ALL) == three
    assert await _history(rt, "t") == three  # all is the default
    assert await _history(rt, "t", since=SINCE_LATEST) == [three[-1]]
    assert await _history(rt, "t", since=SINCE_NONE) == []

    assert await _history(rt, "t", since=Since("time", three[1].time)) == three[1:]
    assert await _history(rt, "t", since=Since("time", three[1].time + 1)) == three[2:]
    assert await _history(rt, "t", since=Since("time", 0)) == three
    assert await _history(rt, "t", since=Since("time", three[2].time + 1)) == []

    assert await _history(rt, "t", since=Since("seq", 0)) == three
    assert await _history(rt, "t", since=Since("seq", three[0].seq)) == three[1:]
    assert await _history(rt, "t", since=Since("seq", three[2].seq)) == []
    # An id, as a client sends it, is a cursor on its seq.
    assert await _history(rt, "t", since=Since("seq", parse_cursor(three[1].id))) == three[2:]

    assert await _history(rt) == []
    assert await _history(rt, "nobody-here") == []


async def test_multi_topic_history_in_seq_order_and_limit(rt: Runtime) -> None:
    published = [
        await rt.publish(NewMessage(topic=topic, message=f"{topic}{i}"))
        for i in range(4)
        for topic in ("a", "b", "c")
    ]
    seqs = _seqs(published)
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert len({msg.id for msg in published}) == len(published)
    assert all(decode_id(msg.id) == msg.seq for msg in published)

    wanted = [msg for msg in published if msg.topic in {"a", "b"}]
    assert await _history(rt, "a", "b") == wanted
    assert await _history(rt, "b", "a") == wanted  # seq order, not topic order
    assert await _history(rt, "b", "a", since=SINCE_LATEST) == [wanted[-1]]
    assert await _history(rt, "a", "b", limit=3) == wanted[:3]  # the oldest
    assert await _history(rt, "a", "b", limit=100) == wanted


@pytest.fixture
async def varied(rt: Runtime) -> list[Message]:
    specs = [
        NewMessage(topic="t", message="a", priority=1, tags=("x",)),
        NewMessage(topic="t", message="b", tags=("x", "y"), title="T"),
        NewMessage(topic="t", message="c", priority=5, tags=("y",), title="T"),
        NewMessage(topic="t", message="d", priority=4, title="other"),
        NewMessage(topic="t", message="b", priority=3, tags=("x", "y", "z")),
    ]
    return [await rt.publish(new) for new in specs]


async def test_history_filters_latest_and_limit(rt: Runtime, varied: list[Message]) -> None:
    a, b, c, d, e = varied

    async def matching(**kwargs: object) -> list[Message]:
        return await _history(rt, "t", filter=MessageFilter(**kwargs))  # type: ignore[arg-type]

    assert await matching(priorities=frozenset({3})) == [b, e]  # no priority counts as 3
    assert await matching(priorities=frozenset({4, 5})) == [c, d]
    assert await matching(tags=frozenset({"x", "y"})) == [b, e]
    assert await matching(title="T") == [b, c]
    assert await matching(message="b") == [b, e]
    assert await matching(tags=frozenset({"y"}), title="T", priorities=frozenset({5})) == [c]
    assert await matching(message="nothing") == []

    # latest and limit count matching messages only.
    only_x = MessageFilter(tags=frozenset({"x"}))
    assert await _history(rt, "t", since=SINCE_LATEST, filter=only_x) == [e]
    titled = MessageFilter(title="T")
    assert await _history(rt, "t", since=SINCE_LATEST, filter=titled) == [c]
    assert await _history(rt, "t", filter=only_x, limit=2) == [a, b]
    high = MessageFilter(priorities=frozenset({4, 5}))
    assert await _history(rt, "t", filter=high, limit=1) == [c]


# --- cache=False ---------------------------------------------------------------------------


async def test_uncached_message_gets_a_cursor_but_is_not_stored(rt: Runtime) -> None:
    before = await rt.publish(NewMessage(topic="t", message="kept"))
    live = await rt.publish(NewMessage(topic="t", message="live only", cache=False))
    after = await rt.publish(NewMessage(topic="t", message="kept too"))
    assert before.seq < live.seq < after.seq
    assert decode_id(live.id) == live.seq
    assert live.message == "live only"
    assert await _history(rt, "t") == [before, after]
    assert await _history(rt, "t", since=SINCE_LATEST) == [after]
    assert await _history(rt, "t", since=Since("seq", before.seq)) == [after]
    # Its id still works as a cursor.
    assert await _history(rt, "t", since=Since("seq", live.seq)) == [after]
    page = await rt.page("t", after_seq=0, limit=10)
    assert page.messages == [before, after]
    await rt.publish(NewMessage(topic="ghost", message="m", cache=False))
    assert await _history(rt, "ghost") == []
    assert [(stat.name, stat.messages) for stat in await rt.topics()] == [("t", 2)]


# --- expiry and prune ----------------------------------------------------------------------


async def test_expired_messages_are_hidden_and_prune_deletes_exactly_them(
    rt: Runtime, clock: Clock
) -> None:
    old = await rt.publish(NewMessage(topic="t", message="old"))
    other_old = await rt.publish(NewMessage(topic="u", message="old too"))
    clock.now += CACHE // 2
    young = await rt.publish(NewMessage(topic="t", message="young"))
    assert await _history(rt, "t", "u") == [old, other_old, young]

    clock.now = START + CACHE - 1  # the last second of the old ones
    assert await _history(rt, "t", "u") == [old, other_old, young]
    assert await rt.prune() == 0

    clock.now = START + CACHE  # expires is exclusive: now they are gone
    assert await _history(rt, "t", "u") == [young]
    assert await _history(rt, "t", since=SINCE_LATEST) == [young]
    assert (await rt.page("t", after_seq=0, limit=10)).messages == [young]
    assert [(s.name, s.messages) for s in await rt.topics()] == [("t", 1)]
    assert await rt.prune() == 2
    assert await rt.prune() == 0

    # Back in time, the unexpired message is still there and the pruned ones are gone.
    clock.now = START
    assert await _history(rt, "t", "u") == [young]

    clock.now = young.expires
    assert await _history(rt, "t") == []
    assert await rt.prune() == 1
    clock.now = START
    assert await _history(rt, "t", "u") == []


# --- pages ---------------------------------------------------------------------------------


async def _walk(rt: Runtime, topic: str, limit: int) -> list[Message]:
    seen: list[Message] = []
    cursor: str | None = None
    for _ in range(100):
        page = await rt.page(topic, after_seq=parse_cursor(cursor), limit=limit)
        assert len(page.messages) <= limit
        seen.extend(page.messages)
        if page.next_cursor is None:
            return seen
        assert len(page.messages) == limit
        assert page.next_cursor == page.messages[-1].id
        cursor = page.next_cursor
    raise AssertionError("pagination does not end")


async def test_page_walks_every_message_once(rt: Runtime) -> None:
    cases = {"p25": (25, 7), "p21": (21, 7), "p1": (1, 5), "p5": (5, 1)}
    published: dict[str, list[Message]] = {topic: [] for topic in cases}
    for i in range(25):
        for topic, (count, _) in cases.items():
            if i < count:
                published[topic].append(await rt.publish(NewMessage(topic=topic, message=str(i))))
    for topic, (_, limit) in cases.items():
        assert await _walk(rt, topic, limit) == published[topic], topic
    # An exact multiple of the limit ends without an empty extra page.
    last = await rt.page("p21", after_seq=published["p21"][13].seq, limit=7)
    assert (last.messages, last.next_cursor) == (published["p21"][14:], None)
    # Nothing left, or nothing at all.
    after_end = await rt.page("p25", after_seq=published["p25"][-1].seq, limit=10)
    assert (after_end.messages, after_end.next_cursor) == ([], None)
    empty = await rt.page("empty", after_seq=0, limit=10)
    assert (empty.messages, empty.next_cursor) == ([], None)


async def test_newest_first_for_the_topic_page(rt: Runtime, clock: Clock) -> None:
    old = await rt.publish(NewMessage(topic="t", message="old"))
    clock.now += CACHE // 2
    kept = [await rt.publish(NewMessage(topic="t", message=str(i))) for i in range(4)]
    await rt.publish(NewMessage(topic="u", message="another topic"))
    await rt.publish(NewMessage(topic="t", message="live only", cache=False))
    assert await rt.newest("t", 10) == [*reversed(kept), old]
    assert await rt.newest("t", 2) == kept[:1:-1]
    clock.now = START + CACHE  # the old one expired
    assert await rt.newest("t", 10) == list(reversed(kept))
    assert await rt.newest("empty", 10) == []


# --- topics --------------------------------------------------------------------------------


async def test_topics_counts_and_last_time(rt: Runtime, clock: Clock) -> None:
    assert await rt.topics() == []
    await rt.publish(NewMessage(topic="zeta", message="1"))
    clock.now += 5
    await rt.publish(NewMessage(topic="alpha", message="1"))
    clock.now += 5
    await rt.publish(NewMessage(topic="zeta", message="2"))
    await rt.publish(NewMessage(topic="zeta", message="3"))
    stats = await rt.topics()
    assert [(s.name, s.messages, s.last_time) for s in stats] == [
        ("alpha", 1, START + 5),
        ("zeta", 3, START + 10),
    ]
    clock.now = START + CACHE  # the first zeta message has expired
    stats = await rt.topics()
    assert [(s.name, s.messages, s.last_time) for s in stats] == [
        ("alpha", 1, START + 5),
        ("zeta", 2, START + 10),
    ]


# --- health --------------------------------------------------------------------------------


async def test_check_health_works(rt: Runtime) -> None:
    await rt.check_health()  # raises if the database does not answer
    assert rt.engines.dialect in {"sqlite", "postgresql"}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/test",
        "sqlite+aiosqlite:///{tmp}/no/such/dir/tandem.db",
    ],
    ids=["postgres-closed-port", "sqlite-missing-dir"],
)
async def test_unreachable_database_is_unavailable(
    url: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    threads_before = set(threading.enumerate())
    runtime = Runtime(make_settings(database_url=url.format(tmp=tmp_path)))
    # follow=False: start only creates the engines, so the failure is check_health's.
    await runtime.start(follow=False)
    try:
        with pytest.raises(Unavailable) as info:
            await runtime.check_health()
        assert info.value.retry_after is not None
        with pytest.raises(Unavailable):
            await runtime.history(HistoryQuery(topics=("t",)))
        with pytest.raises(Unavailable):
            await runtime.publish(NewMessage(topic="t", message="m"))
    finally:
        await runtime.stop()
        # After a failed connect, aiosqlite stops its worker thread without waiting;
        # let it report back while this loop still runs, or it dies on a closed loop.
        for thread in set(threading.enumerate()) - threads_before:
            if "_connection_worker_thread" in thread.name:
                await asyncio.to_thread(thread.join, 10)


# --- concurrency ---------------------------------------------------------------------------


async def test_concurrent_publishes_on_one_runtime(rt: Runtime) -> None:
    published = await asyncio.gather(
        *(rt.publish(NewMessage(topic=f"c{i % 4}", message=str(i))) for i in range(200))
    )
    seqs = _seqs(list(published))
    assert len(set(seqs)) == 200
    assert len({msg.id for msg in published}) == 200
    # gather keeps call order, and the batch writer keeps arrival order.
    assert seqs == sorted(seqs)
    assert [msg.message for msg in published] == [str(i) for i in range(200)]
    found = await _history(rt, "c0", "c1", "c2", "c3")
    assert found == sorted(published, key=lambda msg: msg.seq)


@pytest.mark.postgres
async def test_two_runtimes_publishing_concurrently_on_postgres(
    pg_url: str, make_settings: Callable[..., Settings], clock: Clock
) -> None:
    settings = make_settings(database_url=pg_url, cache_duration=CACHE)
    migrate.upgrade(settings)
    first, second = Runtime(settings, clock=clock), Runtime(settings, clock=clock)
    await first.start()
    await second.start()
    try:
        seen: list[Message] = []
        done = asyncio.Event()

        async def follow() -> None:
            # Reads "seq > last" while the two write: a row that committed late
            # under a lower seq would be skipped here.
            last = 0
            while True:
                finished = done.is_set()
                batch = await first.history(HistoryQuery(topics=("p",), since=Since("seq", last)))
                seen.extend(batch)
                if batch:
                    last = batch[-1].seq
                if finished:
                    return

        follower = asyncio.create_task(follow())

        async def burst(rt: Runtime, name: str) -> list[Message]:
            return list(
                await asyncio.gather(
                    *(rt.publish(NewMessage(topic="p", message=f"{name}{i}")) for i in range(100))
                )
            )

        one, two = await asyncio.gather(burst(first, "a"), burst(second, "b"))
        done.set()
        async with asyncio.timeout(30):
            await follower
    finally:
        await first.stop()
        await second.stop()

    published = one + two
    seqs = _seqs(published)
    assert len(set(seqs)) == 200, "duplicate sequence numbers across runtimes"
    assert sorted(msg.id for msg in seen) == sorted(msg.id for msg in published)
    assert _seqs(seen) == sorted(seqs), "the follower skipped or repeated a message"
