"""The in-process hub: routing, filters, dedupe by seq, shared encodings, bounded queues."""

from __future__ import annotations

import asyncio
from collections import Counter

from tandem.core.hub import SHUTTING_DOWN, SLOW_CONSUMER, Envelope, Hub, Subscriber
from tandem.core.ids import encode_id
from tandem.core.schemas import Message, MessageFilter
from tandem.protocol.encode import message_json, sse_frame

EVERYTHING = MessageFilter()


def _msg(seq: int, topic: str = "t", **fields: object) -> Message:
    return Message(
        id=encode_id(seq),
        seq=seq,
        time=1_700_000_000 + seq,
        expires=1_700_003_600 + seq,
        topic=topic,
        message=f"m{seq}",
        **fields,  # type: ignore[arg-type]
    )


async def _drain(subscriber: Subscriber) -> list[Message]:
    """Whatever is queued right now (a zero wait never blocks)."""
    taken = await subscriber.take(0)
    return [] if taken is None else [env.message for env in taken]


def _seqs(messages: list[Message]) -> list[int]:
    return [msg.seq for msg in messages]


async def test_routes_by_topic() -> None:
    hub = Hub(queue_limit=100)
    a = hub.subscribe(["a"], EVERYTHING)
    b = hub.subscribe(["b"], EVERYTHING)
    # Topic "c" has no subscriber: dropped, but its seq still counts as seen.
    hub.deliver([_msg(1, "c"), _msg(2, "a"), _msg(3, "b"), _msg(4, "a")])
    assert _seqs(await _drain(a)) == [2, 4]
    assert _seqs(await _drain(b)) == [3]
    assert hub.last_seq == 4
    assert await a.take(0) is None  # nothing left: a zero wait times out


async def test_multi_topic_subscriber_gets_each_message_once_in_order() -> None:
    hub = Hub(queue_limit=100)
    both = hub.subscribe(["a", "b", "a"], EVERYTHING)
    only_b = hub.subscribe(["b"], EVERYTHING)
    assert both.topics == frozenset({"a", "b"})
    hub.deliver([_msg(1, "a"), _msg(2, "b"), _msg(3, "x"), _msg(4, "b"), _msg(5, "a")])
    got = await _drain(both)
    assert _seqs(got) == [1, 2, 4, 5]
    assert [m.topic for m in got] == ["a", "b", "b", "a"]
    assert _seqs(await _drain(only_b)) == [2, 4]


async def test_filters_apply_per_subscriber() -> None:
    hub = Hub(queue_limit=100)
    urgent = hub.subscribe(["t"], MessageFilter(priorities=frozenset({5})))
    tagged = hub.subscribe(["t"], MessageFilter(tags=frozenset({"disk", "warn"})))
    titled = hub.subscribe(["t"], MessageFilter(title="T", message="m3"))
    everyone = hub.subscribe(["t"], EVERYTHING)
    hub.deliver(
        [
            _msg(1, priority=5),
            _msg(2, tags=("disk",)),
            _msg(3, title="T", tags=("warn", "disk", "x")),
            _msg(4, title="T"),
            _msg(5),  # no priority: counts as 3
        ]
    )
    assert _seqs(await _drain(urgent)) == [1]
    assert _seqs(await _drain(tagged)) == [3]
    assert _seqs(await _drain(titled)) == [3]
    assert _seqs(await _drain(everyone)) == [1, 2, 3, 4, 5]


async def test_same_or_older_seq_is_delivered_once() -> None:
    hub = Hub(queue_limit=100)
    sub = hub.subscribe(["t"], EVERYTHING)
    hub.deliver([_msg(1), _msg(2)])
    hub.deliver([_msg(2)])  # the same seq again
    hub.deliver([_msg(1)])  # older
    hub.deliver([_msg(2), _msg(3)])  # overlapping read: only the new one counts
    assert _seqs(await _drain(sub)) == [1, 2, 3]
    assert hub.last_seq == 3

    # The starting point (set by the relay from the database) counts as seen too.
    started = Hub(queue_limit=100)
    started.last_seq = 10
    late = started.subscribe(["t"], EVERYTHING)
    started.deliver([_msg(9), _msg(10), _msg(11)])
    assert _seqs(await _drain(late)) == [11]


async def test_envelope_is_shared_and_encoded_once_per_format() -> None:
    hub = Hub(queue_limit=100)
    subscribers = [hub.subscribe(["t"], EVERYTHING) for _ in range(200)]
    calls: Counter[str] = Counter()

    def counting(fmt: str, encode: object) -> object:
        def wrapper(msg: Message) -> bytes:
            calls[fmt] += 1
            return encode(msg)  # type: ignore[operator,no-any-return]

        return wrapper

    json_encoder = counting("json", message_json)
    sse_encoder = counting("sse", sse_frame)
    msg = _msg(1, title="shared")
    hub.deliver([msg])
    envelopes: list[Envelope] = []
    for sub in subscribers:
        taken = await sub.take(0)
        assert taken is not None
        assert len(taken) == 1
        envelopes.append(taken[0])
    assert all(env is envelopes[0] for env in envelopes), "each subscriber got its own copy"
    outputs = {
        fmt: {env.encoded(fmt, encoder) for env in envelopes}  # type: ignore[arg-type]
        for fmt, encoder in (("json", json_encoder), ("sse", sse_encoder))
    }
    assert calls == {"json": 1, "sse": 1}
    assert outputs == {"json": {message_json(msg)}, "sse": {sse_frame(msg)}}


async def test_take_waits_for_a_push_and_times_out_when_idle() -> None:
    hub = Hub(queue_limit=100)
    sub = hub.subscribe(["t"], EVERYTHING)
    assert await sub.take(0.01) is None
    waiting = asyncio.create_task(sub.take(60))
    await asyncio.sleep(0)  # let it start waiting
    assert not waiting.done()
    hub.deliver([_msg(1), _msg(2)])
    async with asyncio.timeout(10):
        taken = await waiting
    assert taken is not None
    assert _seqs([env.message for env in taken]) == [1, 2]


async def test_unsubscribe_is_idempotent_and_count_follows() -> None:
    hub = Hub(queue_limit=100)
    assert hub.count == 0
    a = hub.subscribe(["a", "b"], EVERYTHING)
    b = hub.subscribe(["b"], EVERYTHING)
    assert hub.count == 2
    hub.unsubscribe(a)
    hub.unsubscribe(a)
    assert hub.count == 1
    hub.deliver([_msg(1, "a"), _msg(2, "b")])
    assert await _drain(a) == []
    assert _seqs(await _drain(b)) == [2]
    hub.unsubscribe(b)
    assert hub.count == 0
    hub.deliver([_msg(3, "b")])  # nobody left: nothing to do, still seen
    assert hub.last_seq == 3
    again = hub.subscribe(["b"], EVERYTHING)
    hub.deliver([_msg(4, "b")])
    assert _seqs(await _drain(again)) == [4]


async def test_slow_consumer_is_closed_and_its_queue_freed() -> None:
    limit = 5
    hub = Hub(queue_limit=limit)
    slow = hub.subscribe(["t"], EVERYTHING)
    reader = hub.subscribe(["t"], EVERYTHING)
    other_topic = hub.subscribe(["u"], EVERYTHING)

    hub.deliver([_msg(seq) for seq in range(1, limit + 1)])  # exactly the limit: fine
    assert slow.closed is None
    assert _seqs(await _drain(reader)) == list(range(1, limit + 1))

    hub.deliver([_msg(limit + 1), _msg(limit + 2, "u")])  # one more than the limit
    assert slow.closed == SLOW_CONSUMER
    assert len(slow._items) == 0, "a dropped subscriber must not keep its backlog"
    assert await slow.take(60) == []  # closed: returns at once, with nothing

    # Later messages are not queued for it, and the others carry on.
    assert _seqs(await _drain(reader)) == [limit + 1]
    for start in range(limit + 3, limit + 40, limit):
        hub.deliver([_msg(seq) for seq in range(start, start + limit)])
        assert len(slow._items) == 0
        assert _seqs(await _drain(reader)) == list(range(start, start + limit))
    assert slow.closed == SLOW_CONSUMER
    assert _seqs(await _drain(other_topic)) == [limit + 2]
    assert reader.closed is None
    assert other_topic.closed is None
    # It stays registered until its stream leaves; leaving works as usual.
    assert hub.count == 3
    hub.unsubscribe(slow)
    assert hub.count == 2


async def test_taking_keeps_a_subscriber_below_the_limit() -> None:
    hub = Hub(queue_limit=3)
    sub = hub.subscribe(["t"], EVERYTHING)
    for start in range(1, 30, 3):
        hub.deliver([_msg(start), _msg(start + 1), _msg(start + 2)])
        assert _seqs(await _drain(sub)) == [start, start + 1, start + 2]
    assert sub.closed is None


async def test_close_all_closes_current_and_future_subscriptions() -> None:
    hub = Hub(queue_limit=100)
    a = hub.subscribe(["a"], EVERYTHING)
    b = hub.subscribe(["b"], EVERYTHING)
    hub.deliver([_msg(1, "a")])
    waiting = asyncio.create_task(b.take(60))
    await asyncio.sleep(0)
    hub.close_all(SHUTTING_DOWN)
    async with asyncio.timeout(10):
        assert await waiting == []  # a waiting take wakes up
    assert (a.closed, b.closed) == (SHUTTING_DOWN, SHUTTING_DOWN)
    assert len(a._items) == 0
    assert await a.take(60) == []

    late = hub.subscribe(["a"], EVERYTHING)
    assert late.closed == SHUTTING_DOWN
    hub.deliver([_msg(2, "a")])
    assert await late.take(60) == []
    assert len(late._items) == 0


# --- Writing through a sink -------------------------------------------------------------


class _Sink:
    """Records what the hub writes; refuses (falls behind) once ``room`` is used up."""

    def __init__(self, room: int = 1_000) -> None:
        self.room = room
        self.written: list[Message] = []

    def __call__(self, envelope: Envelope) -> bool:
        if len(self.written) >= self.room:
            return False
        self.written.append(envelope.message)
        return True


async def test_a_sink_gets_live_messages_at_once_and_nothing_is_queued() -> None:
    hub = Hub(queue_limit=2)
    sub = hub.subscribe(["t"], EVERYTHING)
    other = hub.subscribe(["t"], EVERYTHING)
    sink = _Sink()
    hub.deliver([_msg(1)])
    # Something is queued: switching now could let a later message overtake it.
    assert not sub.write_through(sink, after=0)
    assert _seqs(await _drain(sub)) == [1]
    assert sub.write_through(sink, after=1)
    assert (hub.count, hub.written_through) == (2, 1)

    # More than the queue could hold: a sink has no queue to overflow.
    hub.deliver([_msg(2), _msg(3, "other"), _msg(4, tags=("x",)), _msg(5)])
    assert _seqs(sink.written) == [2, 4, 5]
    assert sub.floor == 5
    assert sub.closed is None
    assert await sub.take(0) is None  # nothing queued, not closed: a zero wait times out
    # The subscriber beside it still queues (and overflows) as before.
    assert other.closed == SLOW_CONSUMER

    # Filters still apply before the sink sees anything.
    picky = hub.subscribe(["t"], MessageFilter(tags=frozenset({"x"})))
    picky_sink = _Sink()
    assert picky.write_through(picky_sink, after=hub.last_seq)
    hub.deliver([_msg(6), _msg(7, tags=("x", "y"))])
    assert _seqs(picky_sink.written) == [7]
    assert _seqs(sink.written) == [2, 4, 5, 6, 7]


async def test_a_sink_starts_after_what_was_handed_out() -> None:
    hub = Hub(queue_limit=10)
    sub = hub.subscribe(["t"], EVERYTHING)
    sink = _Sink()
    # The stream read history up to seq 6 while the hub was only at 3.
    assert sub.write_through(sink, after=6)
    hub.deliver([_msg(seq) for seq in range(4, 10)])
    assert _seqs(sink.written) == [7, 8, 9]


async def test_write_through_is_refused_while_paused_or_closed() -> None:
    hub = Hub(queue_limit=10)
    paused = hub.subscribe(["t"], EVERYTHING, paused=True)
    assert not paused.write_through(_Sink(), after=0)
    paused.paused = False
    assert paused.write_through(_Sink(), after=0)
    closed = hub.subscribe(["t"], EVERYTHING)
    closed.close(SHUTTING_DOWN)
    assert not closed.write_through(_Sink(), after=0)
    assert closed.sink is None


async def test_a_sink_that_falls_behind_closes_the_subscriber() -> None:
    hub = Hub(queue_limit=100)
    sub = hub.subscribe(["t"], EVERYTHING)
    sink = _Sink(room=2)
    assert sub.write_through(sink, after=0)
    waiting = asyncio.create_task(sub.take(60))
    await asyncio.sleep(0)
    hub.deliver([_msg(1), _msg(2), _msg(3), _msg(4)])
    assert sub.closed == SLOW_CONSUMER
    async with asyncio.timeout(10):
        assert await waiting == []  # the stream's task wakes up to say goodbye
    assert _seqs(sink.written) == [1, 2]  # nothing after the refusal
    assert sub.floor == 2
