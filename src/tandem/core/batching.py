"""Group commit: concurrent publishes in one process share one write transaction.

SQLite has one writer at a time and PostgreSQL serialises sequence numbers on a
counter row, so the cost of a publish is mostly the transaction around it.
Whoever submits while no batch is being written starts a drain task; everyone
who submits meanwhile rides in the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class BatchWriter(Generic[In, Out]):
    """Feed items to ``write`` in batches of at most ``max_batch``, in arrival order."""

    def __init__(
        self, write: Callable[[Sequence[In]], Awaitable[Sequence[Out]]], *, max_batch: int = 256
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._drain_task: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        """Write ``item`` with the next batch and return what ``write`` made of it."""
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._drain_task is None:
            self._drain_task = asyncio.create_task(self._drain())
        # A caller that goes away cancels only its own future: the batch is still
        # written, because a publish that reached us must not be lost half-way.
        return await future

    async def close(self) -> None:
        """Wait until everything submitted so far has been written."""
        if self._drain_task is not None:
            await self._drain_task

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    results = await self._write([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError("the batch write returned the wrong number of results")
                except Exception as exc:  # handed to every waiter, not swallowed
                    _fail(batch, exc)
                    continue
                except BaseException:
                    # Cancelled mid-write: nobody may wait forever.
                    _fail(batch, RuntimeError("the batch write was cancelled"))
                    raise
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._drain_task = None
            pending, self._pending = self._pending, []
            if pending and not asyncio.get_running_loop().is_closed():
                _fail(pending, RuntimeError("the batch writer stopped"))


def _fail(batch: Sequence[tuple[object, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
