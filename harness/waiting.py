"""Wait for a condition with a timeout, instead of a sleep that hopes.

:func:`eventually` polls ``condition`` every ``interval`` seconds until it returns
something truthy, and returns that value; :func:`eventually_async` does the same in an
event loop, for a plain or an ``async`` condition. :func:`eventually` checks the
condition one last time at the deadline; :func:`eventually_async` cancels a check still
running then, as ``asyncio.timeout`` would. When the time is up they raise
:class:`WaitTimeout`, an ``AssertionError`` that names what was awaited (``what``, or
the condition's own name or source line) and its last answer or error:

    line = eventually(lambda: find_line(server), timeout=10, what="the access line")
    await eventually_async(lambda: hub.last_seq >= msg.seq, timeout=WAIT)

``ignoring`` lists exceptions that mean "not yet" (a server that still refuses
connections, say); any other exception from the condition propagates at once.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

TIMEOUT = 10.0
INTERVAL = 0.05
Exceptions = tuple[type[BaseException], ...]


class WaitTimeout(AssertionError):
    """A condition did not hold within its timeout."""


def eventually(
    condition: Callable[[], T | None],
    timeout: float = TIMEOUT,
    *,
    interval: float = INTERVAL,
    what: str | None = None,
    ignoring: Exceptions = (),
) -> T:
    """Call ``condition`` until it returns a truthy value, and return that value.

    Raise :class:`WaitTimeout` naming ``what`` if it has not after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    poll = _Poll(condition, timeout, what)
    while True:
        try:
            value = condition()
        except ignoring as exc:
            poll.failed(exc)
        else:
            if value:
                return value
            poll.answered(value)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise poll.expired()
        time.sleep(min(interval, remaining))


@overload
async def eventually_async(
    condition: Callable[[], Awaitable[T | None]],
    timeout: float = TIMEOUT,
    *,
    interval: float = INTERVAL,
    what: str | None = None,
    ignoring: Exceptions = (),
) -> T: ...


@overload
async def eventually_async(
    condition: Callable[[], T | None],
    timeout: float = TIMEOUT,
    *,
    interval: float = INTERVAL,
    what: str | None = None,
    ignoring: Exceptions = (),
) -> T: ...


async def eventually_async(
    condition: Callable[[], object],
    timeout: float = TIMEOUT,
    *,
    interval: float = INTERVAL,
    what: str | None = None,
    ignoring: Exceptions = (),
) -> object:
    """:func:`eventually` in an event loop: ``condition`` may be ``async``, the waits
    between calls let the loop run, and a call still running at the deadline is
    cancelled, so that the wait never outlasts ``timeout``."""
    poll = _Poll(condition, timeout, what)
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            while True:
                try:
                    value = condition()
                    if inspect.isawaitable(value):
                        value = await value
                except ignoring as exc:
                    poll.failed(exc)
                else:
                    if value:
                        return value
                    poll.answered(value)
                await asyncio.sleep(interval)
    except TimeoutError:
        if not deadline.expired():  # the condition's own, not ours
            raise
        raise poll.expired() from poll.error


class _Poll:
    """What a wait has seen so far, for the message when it times out."""

    def __init__(self, condition: Callable[[], object], timeout: float, what: str | None):
        self.condition = condition
        self.seconds = timeout
        self.what = what
        self.calls = 0
        self.last: str = "no answer"
        self.error: BaseException | None = None

    def answered(self, value: object) -> None:
        self.calls += 1
        self.last, self.error = f"it last returned {value!r}", None

    def failed(self, exc: BaseException) -> None:
        self.calls += 1
        self.last, self.error = f"it last raised {exc!r}", exc

    def expired(self) -> WaitTimeout:
        what = self.what or describe(self.condition)
        error = WaitTimeout(
            f"timed out after {self.seconds:g} s waiting for {what} "
            f"({self.calls} checks; {self.last})"
        )
        error.__cause__ = self.error
        error.__suppress_context__ = True
        return error


def describe(condition: Callable[..., object]) -> str:
    """A name for ``condition``: its qualified name, or for a lambda its source line."""
    name = getattr(condition, "__qualname__", None) or repr(condition)
    if name.endswith("<lambda>"):
        try:
            return " ".join(inspect.getsource(condition).split())
        except (OSError, TypeError):
            return name
    return name
