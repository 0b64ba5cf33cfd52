"""One long-lived event loop thread per process, on which the core runtime lives.

Flask could run ``async def`` views itself, but it makes a new event loop for
every call, and connection pools are bound to the loop that made them. Here
the engine, its pool and later the hub live on one loop for the life of the
process, and sync callers submit coroutines to it.

Safe across ``fork``: a portal remembers the pid that made it, and a forked
gunicorn worker builds its own on first use. Nothing loop-bound exists before.

The loop is uvloop's by default: every WSGI request crosses to it and back, and
a round trip from eight request threads costs about a third less CPU on uvloop
than on asyncio's own loop (``python -m benchmarks.portal`` compares the two).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import uvloop

from tandem.core.runtime import Runtime
from tandem.core.settings import Settings

T = TypeVar("T")


class Portal:
    """An event loop running in a daemon thread, accepting coroutines from other threads."""

    def __init__(
        self,
        name: str = "tandem-portal",
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop,
    ) -> None:
        self._loop = loop_factory()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule ``coro`` on the portal's loop and return a thread-safe future."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("the portal cannot be called from its own thread: it would deadlock")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the portal's loop and wait for its result."""
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        """Stop the loop and join its thread. Pending callbacks are dropped."""
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class CorePortal:
    """A :class:`Runtime` on a :class:`Portal`, created lazily, once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._portal: Portal | None = None
        self._runtime: Runtime | None = None

    def call(self, fn: Callable[[Runtime], Awaitable[T]], timeout: float | None = None) -> T:
        """Run ``fn(runtime)`` on the portal's loop and return its result.

        ``fn`` is usually a lambda such as ``lambda rt: rt.publish(new)``.
        """
        portal, runtime = self._ensure()
        return portal.call(_await(fn, runtime), timeout)

    def _ensure(self) -> tuple[Portal, Runtime]:
        portal, runtime = self._portal, self._runtime
        if portal is not None and runtime is not None and self._pid == os.getpid():
            return portal, runtime
        with self._lock:
            if self._pid != os.getpid() or self._portal is None or self._runtime is None:
                # After a fork the parent's thread does not exist here: start afresh.
                portal = Portal()
                runtime = Runtime(self.settings)
                try:
                    portal.call(runtime.start())
                except BaseException:
                    # The next request tries again with a fresh loop; don't leak this one.
                    portal.call(runtime.stop(), timeout=10)
                    portal.stop()
                    raise
                self._portal, self._runtime, self._pid = portal, runtime, os.getpid()
            return self._portal, self._runtime

    def run_soon(self, fn: Callable[[Runtime], object]) -> None:
        """Schedule the plain function ``fn(runtime)`` on the loop; do not wait.

        For loop-bound cleanups (leaving the hub) from a WSGI thread. A no-op
        when the runtime of this process was never started.
        """
        if self.started and self._portal is not None and self._runtime is not None:
            self._portal.loop.call_soon_threadsafe(fn, self._runtime)

    def begin_shutdown(self) -> None:
        """End every stream of this process with a reason (from a signal handler)."""
        self.run_soon(lambda rt: rt.begin_shutdown())

    def now(self) -> int:
        """The runtime's clock, in unix seconds."""
        return self._ensure()[1].now()

    @property
    def started(self) -> bool:
        return self._runtime is not None and self._pid == os.getpid()

    def close(self) -> None:
        """Stop the runtime and the loop thread of this process, if they were started."""
        with self._lock:
            if self._portal is not None and self._runtime is not None and self.started:
                self._portal.call(self._runtime.stop(), timeout=10)
                self._portal.stop()
            self._portal = self._runtime = self._pid = None


async def _await(fn: Callable[[Runtime], Awaitable[T]], runtime: Runtime) -> T:
    return await fn(runtime)
