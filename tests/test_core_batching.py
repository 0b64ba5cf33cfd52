"""BatchWriter: group commit in arrival order, with errors and cancellation handled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from tandem.core.batching import BatchWriter

TIMEOUT = 5


class Recorder:
    """A ``write`` that records its batches and can be held at a gate.

    ``gated`` batches (by call number) wait for :attr:`gate`; ``failing`` ones raise.
    """

    def __init__(self, *, gated: set[int] | None = None, failing: set[int] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.finished: list[list[int]] = []
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self._gated = gated or set()
        self._failing = failing or set()

    async def __call__(self, batch: Sequence[int]) -> list[str]:
        call = len(self.batches)
        self.batches.append(list(batch))
        self.entered.set()
        if call in self._gated:
            await self.gate.wait()
        if call in self._failing:
            raise RuntimeError(f"batch {call} failed")
        self.finished.append(list(batch))
        return [f"out-{item}" for item in batch]


async def _yield_until(condition: Callable[[], bool], *, rounds: int = 100) -> None:
    """Let other tasks run until ``condition()`` holds (a bounded number of loop turns)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_single_item() -> None:
    recorder = Recorder()
    writer = BatchWriter[int, str](recorder)
    async with asyncio.timeout(TIMEOUT):
        assert await writer.submit(7) == "out-7"
    assert recorder.batches == [[7]]


async def test_batches_arrive_in_order_and_results_match() -> None:
    recorder = Recorder()
    writer = BatchWriter[int, str](recorder)
    async with asyncio.timeout(TIMEOUT):
        results = await asyncio.gather(*(writer.submit(i) for i in range(50)))
    assert results == [f"out-{i}" for i in range(50)]
    assert [item for batch in recorder.batches for item in batch] == list(range(50))


async def test_items_submitted_during_a_write_ride_in_the_next_batch() -> None:
    recorder = Recorder(gated={0})
    writer = BatchWriter[int, str](recorder)
    async with asyncio.timeout(TIMEOUT):
        first = asyncio.create_task(writer.submit(0))
        await recorder.entered.wait()
        later = [asyncio.create_task(writer.submit(i)) for i in (1, 2, 3)]
        await _yield_until(lambda: all(not task.done() for task in later))
        assert recorder.batches == [[0]]  # the others wait for the running write
        recorder.gate.set()
        assert await first == "out-0"
        assert await asyncio.gather(*later) == ["out-1", "out-2", "out-3"]
    assert recorder.batches == [[0], [1, 2, 3]]


async def test_max_batch_splits_in_order() -> None:
    recorder = Recorder()
    writer = BatchWriter[int, str](recorder, max_batch=2)
    async with asyncio.timeout(TIMEOUT):
        results = await asyncio.gather(*(writer.submit(i) for i in range(5)))
    assert results == [f"out-{i}" for i in range(5)]
    assert recorder.batches == [[0, 1], [2, 3], [4]]


async def test_failed_write_reaches_every_waiter_and_the_next_batch_works() -> None:
    recorder = Recorder(gated={0}, failing={0})
    writer = BatchWriter[int, str](recorder)
    async with asyncio.timeout(TIMEOUT):
        doomed = [asyncio.create_task(writer.submit(i)) for i in (0, 1, 2)]
        await recorder.entered.wait()
        # Queued while the failing batch is being written: must still succeed.
        queued = [asyncio.create_task(writer.submit(i)) for i in (3, 4)]
        await _yield_until(lambda: len(writer._pending) == 2)
        recorder.gate.set()
        outcomes = await asyncio.gather(*doomed, return_exceptions=True)
        assert await asyncio.gather(*queued) == ["out-3", "out-4"]
    errors = [outcome for outcome in outcomes if isinstance(outcome, RuntimeError)]
    assert len(errors) == 3
    assert all(str(error) == "batch 0 failed" for error in errors)
    assert recorder.batches == [[0, 1, 2], [3, 4]]
    assert recorder.finished == [[3, 4]]

    # And the writer keeps working after the failure has drained.
    async with asyncio.timeout(TIMEOUT):
        assert await writer.submit(5) == "out-5"


async def test_failed_write_does_not_poison_a_later_drain() -> None:
    recorder = Recorder(failing={0})
    writer = BatchWriter[int, str](recorder)
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(RuntimeError, match="batch 0 failed"):
            await writer.submit(1)
        assert await writer.submit(2) == "out-2"
    assert recorder.finished == [[2]]


async def test_cancelled_waiter_in_a_running_batch_does_not_stop_the_write() -> None:
    recorder = Recorder(gated={0})
    writer = BatchWriter[int, str](recorder)
    async with asyncio.timeout(TIMEOUT):
        leaving = asyncio.create_task(writer.submit(1))
        staying = asyncio.create_task(writer.submit(2))
        await recorder.entered.wait()
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        recorder.gate.set()
        assert await staying == "out-2"
    assert recorder.finished == [[1, 2]]


async def test_cancelled_waiter_still_queued_is_written() -> None:
    recorder = Recorder(gated={0})
    writer = BatchWriter[int, str](recorder)
    async with asyncio.timeout(TIMEOUT):
        first = asyncio.create_task(writer.submit(0))
        await recorder.entered.wait()
        queued = asyncio.create_task(writer.submit(1))
        await _yield_until(lambda: len(writer._pending) == 1)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        recorder.gate.set()
        assert await first == "out-0"
        await writer.close()
    # A publish that reached the writer is not lost because its caller left.
    assert recorder.finished == [[0], [1]]


async def test_close_waits_for_pending_writes() -> None:
    recorder = Recorder(gated={0})
    writer = BatchWriter[int, str](recorder)
    async with asyncio.timeout(TIMEOUT):
        first = asyncio.create_task(writer.submit(0))
        await recorder.entered.wait()
        second = asyncio.create_task(writer.submit(1))
        await _yield_until(lambda: len(writer._pending) == 1)
        closing = asyncio.create_task(writer.close())
        # The write cannot finish before the gate opens, so neither can close().
        for _ in range(20):
            await asyncio.sleep(0)
        assert not closing.done()
        assert recorder.finished == []
        recorder.gate.set()
        await closing
        assert recorder.finished == [[0], [1]]
        assert first.done()
        assert second.done()
        assert (first.result(), second.result()) == ("out-0", "out-1")


async def test_close_with_nothing_pending_returns() -> None:
    writer = BatchWriter[int, str](Recorder())
    async with asyncio.timeout(TIMEOUT):
        await writer.close()
        assert await writer.submit(3) == "out-3"
        await writer.close()


async def test_cancelling_the_drain_fails_its_waiters_instead_of_leaving_them() -> None:
    write = Recorder(gated={0})
    writer = BatchWriter(write)
    waiter = asyncio.ensure_future(writer.submit(1))
    await asyncio.wait_for(write.entered.wait(), TIMEOUT)
    queued = asyncio.ensure_future(writer.submit(2))
    await _yield_until(lambda: len(writer._pending) == 1)
    assert writer._drain_task is not None
    writer._drain_task.cancel()
    for future in (waiter, queued):
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(future, TIMEOUT)


async def test_a_write_returning_the_wrong_count_fails_every_waiter() -> None:
    async def short(batch: Sequence[int]) -> list[str]:
        return ["only one"]

    writer = BatchWriter(short)
    results = await asyncio.gather(writer.submit(1), writer.submit(2), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
