"""Subscriptions through a started Runtime: open, history, live, keepalive, gap and close."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Sequence

import pytest
from harness.waiting import describe, eventually_async
from tests.conftest import CACHE_SECONDS, CLOCK_START, Clock

from tandem.core import migrate
from tandem.core import stream as stream_module
from tandem.core.hub import SHUTTING_DOWN, SLOW_CONSUMER, Envelope
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
from tandem.core.stream import GAP_NOTICE, Event, Stream
from tandem.protocol.subscribe import parse_since

START = CLOCK_START
CACHE = CACHE_SECONDS
WAIT = 20.0  # generous bound for a condition that should hold within milliseconds

EVERYTHING = MessageFilter()


@pytest.fixture
def sqlite_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """Settings on a migrated SQLite file, with overrides."""

    def factory(**overrides: object) -> Settings:
        value = make_settings(cache_duration=CACHE, **overrides)
        migrate.upgrade(value)
        return value

    return factory


# --- helpers -------------------------------------------------------------------------------


def _kinds(events: Sequence[Event]) -> list[str]:
    return [event.kind for event in events]


def _messages(events: Sequence[Event]) -> list[Message]:
    return [event.envelope.message for event in events if event.envelope is not None]


async def _next(stream: Stream) -> list[Event]:
    async with asyncio.timeout(WAIT):
        batch = await stream.next_batch()
    assert batch is not None, "the stream ended unexpectedly"
    return batch


_sentinel_topics = itertools.count()


def _open(rt: Runtime, topics: Sequence[str], since: Since, **filter: object) -> Stream:
    """Open a stream on ``topics`` plus a sentinel topic of its own (the last one).

    The sentinel topic is new, so it adds nothing to the stream's history.
    """
    topics = [*topics, f"sentinel{next(_sentinel_topics)}"]
    return rt.open_stream(topics, since, MessageFilter(**filter))  # type: ignore[arg-type]


async def _read_until(stream: Stream, done: Callable[[list[Event]], bool]) -> list[Event]:
    events: list[Event] = []
    async with asyncio.timeout(WAIT):
        while not done(events):
            batch = await stream.next_batch()
            assert batch is not None, f"the stream ended early after {_kinds(events)}"
            events.extend(batch)
    return events


async def _relayed(rt: Runtime, msg: Message) -> None:
    """Wait until the relay has handed ``msg`` to the hub (it lags the commit a little)."""
    await eventually_async(
        lambda: rt.hub.last_seq >= msg.seq,
        WAIT,
        interval=0.005,
        what=f"the hub to get message {msg.seq}",
    )


def _has_seq(seq: int) -> Callable[[list[Event]], bool]:
    return lambda events: any(msg.seq == seq for msg in _messages(events))


async def _through_sentinel(rt: Runtime, stream: Stream, **fields: object) -> list[Event]:
    """Publish a sentinel and read until it arrives; return what came before it.

    Anything the stream would wrongly deliver (a duplicate, a stray message) comes
    before the sentinel, so the caller's exact comparison catches it.
    """
    new = NewMessage(topic=stream.topics[-1], message="sentinel", **fields)  # type: ignore[arg-type]
    sentinel = await rt.publish(new)
    events = await _read_until(stream, _has_seq(sentinel.seq))
    assert events[-1].envelope is not None
    assert events[-1].envelope.message == sentinel
    return [event for event in events[:-1] if event.kind != "keepalive"]


async def _start(
    rt: Runtime, topics: Sequence[str], since: Since, **filter: object
) -> tuple[Stream, list[Event]]:
    """Open a stream and take its first batch: from then on it is registered with the hub."""
    stream = _open(rt, topics, since, **filter)
    return stream, await _next(stream)


# --- open and since ------------------------------------------------------------------------


async def test_open_first_then_history_for_every_since(rt: Runtime, clock: Clock) -> None:
    three = []
    for text in ("first", "second", "third"):
        three.append(await rt.publish(NewMessage(topic="t", message=text)))
        await rt.publish(NewMessage(topic="other", message="not for t"))
        clock.now += 10
    clock.now += 600

    cases: list[tuple[str, list[Message]]] = [
        ("all", three),
        ("latest", three[-1:]),
        ("none", []),
        (three[0].id, three[1:]),
        (three[2].id, []),
        (str(three[1].time), three[1:]),  # a unix time: at or after it
        (str(three[2].time + 1), []),
        ("615s", three[-1:]),  # a duration back from now (now = third + 610)
    ]
    for since_text, expected in cases:
        since = parse_since(since_text, now=rt.now())
        stream, first = await _start(rt, ["t"], since)
        try:
            events = first + await _through_sentinel(rt, stream)
            assert _kinds(events) == ["open"] + ["message"] * len(expected), since_text
            assert _messages(events) == expected, since_text
            assert {event.topic for event in events} == {",".join(stream.topics)}
        finally:
            stream.close()


async def test_since_none_skips_what_was_committed_before(
    rt: Runtime, db_settings: Settings, clock: Clock
) -> None:
    # Committed by another "process": this process's hub learns of it only when its
    # relay reads it, which may well be after the subscription below registers.
    other = Runtime(db_settings, clock=clock)
    await other.start()
    try:
        before = [await other.publish(NewMessage(topic="t", message="before"))]
        before.append(await rt.publish(NewMessage(topic="t", message="before, here")))
        stream, first = await _start(rt, ["t"], SINCE_NONE)
        try:
            assert _kinds(first) == ["open"]
            after = await other.publish(NewMessage(topic="t", message="after"))
            rest = await _through_sentinel(rt, stream)
            assert _messages(rest) == [after]
            assert not set(before) & set(_messages(rest))
        finally:
            stream.close()
    finally:
        await other.stop()


async def test_keepalive_when_idle(sqlite_settings: Callable[..., Settings]) -> None:
    # keepalive_interval is whole seconds: 1 is the smallest the settings take.
    rt = Runtime(sqlite_settings(keepalive_interval=1))
    await rt.start()
    try:
        stream, first = await _start(rt, ["quiet"], SINCE_ALL)
        assert _kinds(first) == ["open"]
        # Nothing is published: the only thing that can come is a keepalive, and again.
        assert _kinds(await _next(stream)) == ["keepalive"]
        assert _kinds(await _next(stream)) == ["keepalive"]
        msg = await rt.publish(NewMessage(topic="quiet", message="now"))
        events = await _read_until(stream, _has_seq(msg.seq))
        assert set(_kinds(events[:-1])) <= {"keepalive"}
        assert _messages(events) == [msg]
        stream.close()
        assert await stream.next_batch() is None
    finally:
        await rt.stop()


# --- history then live ---------------------------------------------------------------------


PAGE = 4


async def test_live_follows_history_without_gap_or_duplicate(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small history pages, so that publishing happens between pages too.
    monkeypatch.setattr(stream_module, "HISTORY_BATCH", PAGE)
    stored = [await rt.publish(NewMessage(topic="t", message=f"h{i}")) for i in range(20)]
    await rt.publish(NewMessage(topic="other", message="noise"))
    cursor = stored[7]
    expected = stored[8:]

    async def publisher(count: int) -> None:
        for i in range(count):
            expected.append(await rt.publish(NewMessage(topic="t", message=f"bg{i}")))
            await rt.publish(NewMessage(topic="other", message=f"noise{i}"))

    real_history = rt.history
    pages = itertools.count()

    async def history_while_publishing(query: HistoryQuery) -> list[Message]:
        # Around every history read, commit more and let the relay hand it to the hub:
        # before the read, it is in the page *and* in the queue (once, please); after
        # the read, only the queue has it (lost, if the stream registered too late).
        page = next(pages)
        busy = page < 6  # then let the stream catch up
        if busy:
            expected.append(await rt.publish(NewMessage(topic="t", message=f"pre{page}")))
        found = await real_history(query)
        # A short page is the last one: the stream goes live after it.
        if busy or len(found) < PAGE:
            late = await rt.publish(NewMessage(topic="t", message=f"post{page}"))
            expected.append(late)
            await _relayed(rt, late)
        return found

    monkeypatch.setattr(rt, "history", history_while_publishing)
    stream = _open(rt, ["t"], parse_since(cursor.id, now=rt.now()))
    background = asyncio.create_task(publisher(40))
    events: list[Event] = []
    try:
        async with asyncio.timeout(WAIT):
            for round_ in range(8):
                # Publish between pulls: these land during the history pages and
                # reach both the queue and (maybe) a later history page.
                if round_ > 0:
                    expected.append(await rt.publish(NewMessage(topic="t", message=f"r{round_}")))
                batch = await stream.next_batch()
                assert batch is not None
                events.extend(batch)
            await background
        events += await _read_until(
            stream,
            lambda more: {m.seq for m in expected} <= {m.seq for m in _messages(events + more)},
        )
        events += await _through_sentinel(rt, stream)
    finally:
        background.cancel()
        stream.close()

    assert events[0].kind == "open"
    assert set(_kinds(events[1:])) <= {"message", "keepalive"}
    got = _messages(events)
    assert got == sorted(expected, key=lambda msg: msg.seq), "missing, repeated or out of order"
    assert len({msg.seq for msg in got}) == len(got)
    assert got[0] == stored[8]
    assert next(pages) >= 4, "the history was not read in several pages"


async def test_resume_from_the_last_id_gets_exactly_the_rest(rt: Runtime) -> None:
    first_part = [await rt.publish(NewMessage(topic="t", message=f"a{i}")) for i in range(5)]
    stream, first = await _start(rt, ["t"], SINCE_ALL)
    assert _messages(first) == first_part
    live = [await rt.publish(NewMessage(topic="t", message=f"b{i}")) for i in range(3)]
    # Consume part of it: at least up to live[1] (the batch may bring live[2] too).
    seen = _messages(first + await _read_until(stream, _has_seq(live[1].seq)))
    stream.close()
    assert await stream.next_batch() is None
    assert rt.hub.count == 0

    # While disconnected, more is published.
    missed = [await rt.publish(NewMessage(topic="t", message=f"c{i}")) for i in range(4)]
    await rt.publish(NewMessage(topic="u", message="elsewhere"))
    everything = [*first_part, *live, *missed]
    assert seen == everything[: len(seen)]

    resumed, opening = await _start(rt, ["t"], parse_since(seen[-1].id, now=rt.now()))
    try:
        after = opening + await _through_sentinel(rt, resumed)
        assert after[0].kind == "open"
        assert _messages(after) == everything[len(seen) :]
        assert seen + _messages(after) == everything
    finally:
        resumed.close()


async def test_filters_apply_to_history_and_live(rt: Runtime) -> None:
    def new(message: str, **fields: object) -> NewMessage:
        return NewMessage(topic="t", message=message, **fields)  # type: ignore[arg-type]

    old_hit = await rt.publish(new("old", priority=5, tags=("disk",)))
    await rt.publish(new("old miss", priority=5))
    wanted = {"priorities": frozenset({4, 5}), "tags": frozenset({"disk"})}
    stream, first = await _start(rt, ["t"], SINCE_ALL, **wanted)
    try:
        live = [
            await rt.publish(new("low", priority=1, tags=("disk",))),
            await rt.publish(new("hit", priority=4, tags=("disk", "x"))),
            await rt.publish(new("untagged", priority=5)),
            await rt.publish(new("default priority", tags=("disk",))),
            await rt.publish(new("hit too", priority=5, tags=("disk",))),
        ]
        # The sentinel must match the filter too.
        events = first + await _through_sentinel(rt, stream, priority=4, tags=("disk",))
        assert _messages(events) == [old_hit, live[1], live[4]]
    finally:
        stream.close()


async def test_multi_topic_stream(rt: Runtime) -> None:
    a0 = await rt.publish(NewMessage(topic="a", message="a0"))
    await rt.publish(NewMessage(topic="c", message="c0"))
    b0 = await rt.publish(NewMessage(topic="b", message="b0"))
    stream, first = await _start(rt, ["b", "a"], SINCE_ALL)
    try:
        assert stream.topics[:2] == ("b", "a")
        assert first[0].kind == "open"
        assert first[0].topic == ",".join(stream.topics)
        live = []
        for topic in ("a", "c", "b", "b", "c", "a"):
            live.append(await rt.publish(NewMessage(topic=topic, message=f"{topic} live")))
        events = first + await _through_sentinel(rt, stream)
        assert _messages(events) == [a0, b0] + [msg for msg in live if msg.topic != "c"]
    finally:
        stream.close()


# --- gap -----------------------------------------------------------------------------------


async def test_gap_after_prune_comes_right_after_open(rt: Runtime, clock: Clock) -> None:
    old = [await rt.publish(NewMessage(topic="t", message=f"old{i}")) for i in range(3)]
    clock.now = START + CACHE + 10  # every old message has expired
    fresh = await rt.publish(NewMessage(topic="t", message="fresh"))
    assert await rt.prune() == 3

    for since in (
        parse_since(old[0].id, now=rt.now()),
        parse_since(str(START), now=rt.now()),
        parse_since(old[1].id, now=rt.now()),
    ):
        stream, first = await _start(rt, ["t"], since)
        try:
            events = first + await _through_sentinel(rt, stream)
            assert _kinds(events) == ["open", "gap", "message"], since
            assert events[1].detail == GAP_NOTICE
            assert _messages(events) == [fresh]
        finally:
            stream.close()

    # A cursor at or after everything pruned, or "all", missed nothing: no gap.
    for since in (
        parse_since(old[2].id, now=rt.now()),
        parse_since(str(START + 1), now=rt.now()),
        SINCE_ALL,
    ):
        stream, first = await _start(rt, ["t"], since)
        try:
            events = first + await _through_sentinel(rt, stream)
            assert "gap" not in _kinds(events), since
            assert _kinds(events)[0] == "open"
        finally:
            stream.close()


async def test_expired_but_not_yet_pruned_is_a_gap_too(rt: Runtime, clock: Clock) -> None:
    first_msg = await rt.publish(NewMessage(topic="t", message="soon gone"))
    second = await rt.publish(NewMessage(topic="t", message="gone too"))
    await _relayed(rt, second)
    clock.now = START + CACHE  # expired, still in the table
    stream, first = await _start(rt, ["t"], parse_since(first_msg.id, now=rt.now()))
    try:
        assert _kinds(first) == ["open", "gap"]
        assert _messages(await _through_sentinel(rt, stream)) == []
    finally:
        stream.close()
    # Nothing after the cursor was lost: no gap.
    stream, first = await _start(rt, ["t"], parse_since(second.id, now=rt.now()))
    try:
        assert _kinds(first) == ["open"]
    finally:
        stream.close()


async def test_gap_on_one_of_several_topics(rt: Runtime, clock: Clock) -> None:
    cursor = await rt.publish(NewMessage(topic="b", message="b cursor"))
    clock.now += 10
    await rt.publish(NewMessage(topic="a", message="a after the cursor"))
    clock.now += CACHE // 2
    b_late = await rt.publish(NewMessage(topic="b", message="b late"))
    clock.now = START + 10 + CACHE  # the first two have expired
    assert await rt.prune() == 2
    since = parse_since(cursor.id, now=rt.now())

    # "a" lost a message after the cursor: a subscriber of a and b is told.
    stream, first = await _start(rt, ["a", "b"], since)
    try:
        assert _kinds(first) == ["open", "gap", "message"]
        assert _messages(first) == [b_late]
    finally:
        stream.close()
    # "b" alone lost nothing after the cursor (only the cursor itself).
    stream, first = await _start(rt, ["b"], since)
    try:
        assert _kinds(first) == ["open", "message"]
        assert _messages(first) == [b_late]
    finally:
        stream.close()


# --- live only -----------------------------------------------------------------------------


async def test_uncached_messages_arrive_live_but_stay_out_of_history(rt: Runtime) -> None:
    kept = await rt.publish(NewMessage(topic="t", message="kept"))
    stream, first = await _start(rt, ["t"], SINCE_ALL)
    try:
        live_only = await rt.publish(NewMessage(topic="t", message="fleeting", cache=False))
        after = await rt.publish(NewMessage(topic="t", message="kept too"))
        events = first + await _through_sentinel(rt, stream)
        assert _messages(events) == [kept, live_only, after]
    finally:
        stream.close()

    assert live_only not in await rt.history(HistoryQuery(topics=("t",)))
    # A new subscriber's history does not show it, and its id still works as a cursor.
    for since, expected in ((SINCE_ALL, [kept, after]), (Since("seq", live_only.seq), [after])):
        later, opening = await _start(rt, ["t"], since)
        try:
            events = opening + await _through_sentinel(rt, later)
            assert _kinds(events)[0] == "open"
            assert _messages(events) == expected
        finally:
            later.close()


# --- close ---------------------------------------------------------------------------------


async def test_slow_consumer_gets_a_final_close_event(
    sqlite_settings: Callable[..., Settings],
) -> None:
    rt = Runtime(sqlite_settings(subscriber_queue=3))
    await rt.start()
    try:
        slow, first = await _start(rt, ["t"], SINCE_NONE)
        keeping_up, _ = await _start(rt, ["t"], SINCE_NONE)
        assert _kinds(first) == ["open"]
        # The slow stream is not pulled while four messages arrive: one too many.
        # The other one takes each as it comes, so it stays below the limit.
        published: list[Message] = []
        for i in range(4):
            published.append(await rt.publish(NewMessage(topic="t", message=str(i))))
            events = await _read_until(keeping_up, _has_seq(published[-1].seq))
            assert _messages(events) == published[-1:]
        # keeping_up has them all, so the hub has delivered them to the slow one too.
        batch = await _next(slow)
        assert _kinds(batch) == ["close"]
        assert batch[0].detail == SLOW_CONSUMER
        assert await slow.next_batch() is None
        assert rt.hub.count == 1
        # The other stream is unaffected.
        more = await rt.publish(NewMessage(topic="t", message="more"))
        assert _messages(await _read_until(keeping_up, _has_seq(more.seq))) == [more]
        keeping_up.close()
        assert rt.hub.count == 0
    finally:
        await rt.stop()


async def test_begin_shutdown_closes_open_streams(rt: Runtime) -> None:
    live, _ = await _start(rt, ["t"], SINCE_NONE)
    fresh = rt.open_stream(["t"], SINCE_ALL, EVERYTHING)  # not yet registered
    waiting = asyncio.create_task(live.next_batch())
    await asyncio.sleep(0)
    assert not waiting.done()
    rt.begin_shutdown()
    async with asyncio.timeout(WAIT):
        batch = await waiting
    assert batch is not None
    assert _kinds(batch) == ["close"]
    assert batch[0].detail == SHUTTING_DOWN
    assert await live.next_batch() is None

    # A stream that registers during shutdown opens and closes at once.
    events = await _read_until(fresh, lambda seen: "close" in _kinds(seen))
    assert _kinds(events)[0] == "open"
    assert events[-1].detail == SHUTTING_DOWN
    assert await fresh.next_batch() is None
    assert rt.hub.count == 0


# --- catching up -----------------------------------------------------------------------------


async def test_catching_up_on_long_history_cannot_overflow_the_queue(
    sqlite_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A queue of 3 and pages of 4: while the stream reads history, live messages
    # must not pile up in its queue (it would be dropped as a slow consumer).
    monkeypatch.setattr(stream_module, "HISTORY_BATCH", 4)
    rt = Runtime(sqlite_settings(subscriber_queue=3, keepalive_interval=1))
    await rt.start()
    try:
        stored = [await rt.publish(NewMessage(topic="busy", message=f"h{i}")) for i in range(20)]
        stream = _open(rt, ["busy"], SINCE_ALL)
        received: list[Event] = []
        for i in range(10):  # a burst of live messages between every page read
            received += await _next(stream)
            for j in range(4):
                stored.append(await rt.publish(NewMessage(topic="busy", message=f"l{i}.{j}")))
            await _relayed(rt, stored[-1])
        # Read everything so far, then until a keepalive (only the live phase sends
        # one): what follows can only arrive live.
        received += await _read_until(
            stream, lambda events: _has_seq(stored[-1].seq)(received + events)
        )
        received += await _read_until(stream, lambda events: "keepalive" in _kinds(events))
        stored += [await rt.publish(NewMessage(topic="busy", message=f"t{i}")) for i in range(2)]
        received += await _through_sentinel(rt, stream)
        assert "close" not in _kinds(received)
        assert _messages(received) == stored
    finally:
        await rt.stop()


async def test_latest_on_an_empty_topic_gets_everything_published_while_opening(
    rt: Runtime,
) -> None:
    stream = _open(rt, ["fresh"], SINCE_LATEST)
    first = await _next(stream)  # registered, nothing stored yet
    assert _kinds(first) == ["open"]
    burst = [await rt.publish(NewMessage(topic="fresh", message=str(i))) for i in range(3)]
    events = await _through_sentinel(rt, stream)
    assert _messages(events) == burst


# --- writing through a sink ----------------------------------------------------------------


class _Pump:
    """Drives a stream as a door's task does, and records what reaches its sink."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.events: list[Event] = []
        self.written: list[Message] = []
        self.refuse = False
        stream.write_through(self._sink)
        self._task = asyncio.create_task(self._run())

    def _sink(self, envelope: Envelope) -> bool:
        if self.refuse:
            return False
        self.written.append(envelope.message)
        return True

    async def _run(self) -> None:
        while (batch := await self.stream.next_batch()) is not None:
            self.events.extend(batch)

    def delivered(self) -> list[Message]:
        """Messages in the order the client would read them: events, then the sink's."""
        return _messages(self.events) + self.written

    async def wait(self, done: Callable[[], bool]) -> None:
        def reached() -> bool:
            if done():
                return True
            if self._task.done():
                self._task.result()  # raises what ended it
                raise AssertionError(f"the stream ended early: {_kinds(self.events)}")
            return False

        await eventually_async(reached, WAIT, interval=0.005, what=describe(done))

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.stream.close()


async def test_live_messages_go_through_the_sink_after_history_without_gap_or_duplicate(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_module, "HISTORY_BATCH", PAGE)
    stored = [await rt.publish(NewMessage(topic="t", message=f"h{i}")) for i in range(20)]
    expected = stored[8:]
    pump = _Pump(_open(rt, ["t"], parse_since(stored[7].id, now=rt.now())))
    try:
        # Published while the stream reads its history pages and goes live.
        for i in range(30):
            expected.append(await rt.publish(NewMessage(topic="t", message=f"bg{i}")))
            await asyncio.sleep(0)
        await pump.wait(lambda: rt.hub.written_through == 1)
        expected.append(await rt.publish(NewMessage(topic="t", message="after the switch")))
        await pump.wait(lambda: len(pump.delivered()) >= len(expected))
        sentinel = await rt.publish(NewMessage(topic=pump.stream.topics[-1], message="end"))
        await pump.wait(lambda: bool(pump.written) and pump.written[-1] == sentinel)
    finally:
        await pump.aclose()
    got = pump.delivered()
    assert got == [*expected, sentinel], "missing, repeated or out of order"
    assert pump.written, "nothing went through the sink"
    assert pump.events[0].kind == "open"
    assert set(_kinds(pump.events[1:])) <= {"message", "keepalive"}
    assert pump.stream.last_seq == sentinel.seq
    assert rt.hub.written_through == 0  # it left the hub


async def test_a_sink_that_falls_behind_ends_the_stream_with_close(rt: Runtime) -> None:
    pump = _Pump(_open(rt, ["t"], SINCE_NONE))
    try:
        await pump.wait(lambda: rt.hub.written_through == 1)
        first = await rt.publish(NewMessage(topic="t", message="fits"))
        await pump.wait(lambda: pump.written == [first])
        pump.refuse = True
        await rt.publish(NewMessage(topic="t", message="does not"))
        await pump.wait(lambda: bool(pump.events) and pump.events[-1].kind == "close")
        assert pump.events[-1].detail == SLOW_CONSUMER
        await pump.wait(lambda: rt.hub.count == 0)
    finally:
        await pump.aclose()
    assert pump.written == [first]
