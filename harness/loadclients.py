"""Load clients: many SSE or WebSocket subscribers, spread over client processes.

A :class:`ClientPool` starts K client processes (``multiprocessing``, spawn), each
running a uvloop event loop, and drives them over pipes. Each process holds its
share of the connections as bare asyncio protocols, not library clients, so that
ten thousand subscribers cost the client side little CPU: an SSE client speaks
HTTP/1.1 with chunked decoding, a WebSocket client does the RFC 6455 handshake
(no extensions offered) and reads frames.

Every message a subscriber receives is timed on arrival (``time.time()`` when
the bytes come in). A benchmark embeds the send time in the message text with
:func:`message_text` (``"bench <index> <unix time>"``); the latency of each
(subscriber, message) pair is arrival minus send time, in milliseconds. The kinds,
events and message texts are :mod:`harness.wire`'s, as for the correctness clients.

    with ClientPool(4) as pool:
        report = pool.open(port, "sse", ["/alerts/sse"] * 10_000, burst=200)
        ...publish message 0 with message_text(0, time.time())...
        received, expected = pool.wait_message(0, timeout=10)
        latencies = pool.latencies()          # {index: [ms, ...]}

Each client process also measures its own event-loop lag (how late a 10 ms timer
fires), the CPU time it used and its connections lost, so that a benchmark can
show the clients were not the bottleneck. Client processes die with the
benchmark (``PR_SET_PDEATHSIG``), ignore Ctrl-C (the parent stops them), and are
stopped when the pool is left, however that happens.
"""

from __future__ import annotations

import array
import asyncio
import base64
import contextlib
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, Self, cast

from harness.errors import LoadClientError
from harness.net import LOOPBACK
from harness.processes import die_with_parent
from harness.wire import (
    BENCH_MESSAGE,
    JSON_CLOSE,
    JSON_MESSAGE,
    JSON_OPEN,
    SSE_CLOSE,
    SSE_EVENT_FIELD,
    SSE_OPEN,
    LoadKind,
    message_text,
)

__all__ = ["ClientPool", "LoadKind", "OpenReport", "message_text"]

_LAG_TICK = 0.01
_SSE_NAME_AT = len(SSE_EVENT_FIELD)


# -- one subscriber ----------------------------------------------------------------------


class _Subscriber(asyncio.Protocol):
    """One SSE or WebSocket subscription, read by hand; reports to its :class:`_Worker`."""

    __slots__ = (
        "_body",
        "_buf",
        "_chunked",
        "_headers_done",
        "_owner",
        "_request",
        "kind",
        "opened",
        "reason",
        "status",
        "transport",
    )

    def __init__(self, owner: _Worker, kind: LoadKind, request: bytes) -> None:
        self._owner = owner
        self.kind = kind
        self._request = request
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._body = bytearray()  # SSE: de-chunked text not yet split into events
        self._headers_done = False
        self._chunked = False
        self.status = 0
        self.reason: str | None = None  # why it ended (None while it lives)
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self._buf += data
        if not self._headers_done and not self._read_headers():
            return
        if self.kind == "ws":
            self._read_frames(now)
        else:
            self._read_chunks(now)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(f"connection lost ({type(exc).__name__})" if exc else "connection closed")

    # parsing

    def _read_headers(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > 65536:
                self._fail("response headers too long")
            return False
        head = bytes(self._buf[:end]).decode("latin-1")
        del self._buf[: end + 4]
        self._headers_done = True
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        wanted = 101 if self.kind == "ws" else 200
        if self.status != wanted:
            self._fail(f"HTTP {self.status}")
            return False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
                self._chunked = True
        return True

    def _read_chunks(self, now: float) -> None:
        buf = self._buf
        if not self._chunked:  # identity body, until the server closes
            self._body += buf
            buf.clear()
        else:
            pos = 0
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(buf[pos:eol].split(b";", 1)[0], 16)
                if size == 0:
                    self._end("stream ended by the server")
                    return
                end = eol + 2 + size
                if len(buf) < end + 2:
                    break
                self._body += buf[eol + 2 : end]
                pos = end + 2
            del buf[:pos]
        body = self._body
        while (cut := body.find(b"\n\n")) >= 0:
            frame = bytes(body[:cut])
            del body[: cut + 2]
            if frame.startswith(SSE_EVENT_FIELD):
                name = frame[_SSE_NAME_AT : frame.find(b"\n")]
                if name == SSE_OPEN:
                    self._open()
                elif name == SSE_CLOSE:
                    self._end("close event")
            else:
                self._message(frame, now)

    def _read_frames(self, now: float) -> None:
        buf = self._buf
        pos, size = 0, len(buf)
        while size - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length, head = second & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if second & 0x80:
                self._fail("masked frame from the server")
                return
            if size - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            opcode = first & 0x0F
            if opcode in (0, 1, 2):
                if JSON_MESSAGE in payload:
                    self._message(payload, now)
                elif JSON_OPEN in payload:
                    self._open()
                elif JSON_CLOSE in payload:
                    self._end("close event")
            elif opcode == 8:
                self._end("close frame")
                return
            elif opcode == 9 and self.transport is not None:  # ping: answer pong (masked)
                self.transport.write(_ws_frame(0xA, payload))
        del buf[:pos]

    def _message(self, frame: bytes, now: float) -> None:
        found = BENCH_MESSAGE.search(frame)
        if found is not None:
            self._owner.record(int(found[1]), now - float(found[2]))

    # life cycle

    def _open(self) -> None:
        if not self.opened.done():
            self.opened.set_result(None)

    def _fail(self, reason: str) -> None:
        self._end(reason)
        if self.transport is not None:
            self.transport.abort()

    def _end(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            self._owner.ended(self)
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(reason))
            self.opened.exception()  # retrieved: no "never retrieved" warning

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (payloads under 126 bytes only: pong and close)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload[:125]))
    return bytes([0x80 | opcode, 0x80 | len(masked)]) + mask + masked


def _request(kind: LoadKind, path: str, port: int) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {LOOPBACK}:{port}", "User-Agent: tandem-loadclient"]
    if kind == "ws":
        key = base64.b64encode(os.urandom(16)).decode()
        lines += [
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
    else:
        lines.append("Accept: text/event-stream")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- one client process ------------------------------------------------------------------


class _Worker:
    """The connections of one client process and what they received."""

    def __init__(self) -> None:
        self.live: set[_Subscriber] = set()
        self.lost: dict[str, int] = {}
        self.counts: dict[int, int] = {}
        self.samples: dict[int, array.array[float]] = {}
        self._want: tuple[int, asyncio.Future[None]] | None = None
        self.max_lag = 0.0
        self._cpu0 = _cpu_seconds()
        self._lag_task: asyncio.Task[None] | None = None

    # bookkeeping, called by the subscribers

    def record(self, index: int, seconds: float) -> None:
        count = self.counts.get(index, 0) + 1
        self.counts[index] = count
        samples = self.samples.get(index)
        if samples is None:
            samples = self.samples[index] = array.array("d")
        samples.append(seconds * 1000.0)
        self._check_wanted()

    def ended(self, sub: _Subscriber) -> None:
        if sub in self.live:
            self.live.discard(sub)
            reason = sub.reason or "?"
            self.lost[reason] = self.lost.get(reason, 0) + 1
            self._check_wanted()

    def _check_wanted(self) -> None:
        if self._want is not None:
            index, future = self._want
            if self.counts.get(index, 0) >= len(self.live) and not future.done():
                future.set_result(None)

    # commands (each returns something picklable)

    async def open(
        self, port: int, kind: LoadKind, paths: list[str], concurrency: int, timeout: float
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(max(1, concurrency))
        errors: dict[str, int] = {}
        open_ms = array.array("d")  # connect to open event, per opened subscriber
        started = time.monotonic()

        async def one(path: str) -> bool:
            async with gate:
                sub = _Subscriber(self, kind, _request(kind, path, port))
                began = time.monotonic()
                try:
                    async with asyncio.timeout(timeout):
                        await loop.create_connection(lambda: sub, LOOPBACK, port)
                        await sub.opened
                except (OSError, TimeoutError) as exc:
                    reason = sub.reason or type(exc).__name__
                    errors[reason] = errors.get(reason, 0) + 1
                    sub.close()
                    return False
                if sub.reason is not None:  # ended between open and now
                    errors[sub.reason] = errors.get(sub.reason, 0) + 1
                    return False
                self.live.add(sub)
                open_ms.append((time.monotonic() - began) * 1000.0)
                return True

        done = await asyncio.gather(*(one(path) for path in paths))
        return {
            "opened": sum(done),
            "failed": len(done) - sum(done),
            "errors": errors,
            "seconds": time.monotonic() - started,
            "live": len(self.live),
            "open_ms": open_ms.tobytes(),
        }

    async def wait(self, index: int, timeout: float) -> tuple[int, int]:
        """Wait until every live subscriber has message ``index``; (received, live)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._want = (index, future)
        self._check_wanted()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await future
        self._want = None
        return self.counts.get(index, 0), len(self.live)

    async def reset(self) -> None:
        """Forget what was received so far and restart the lag and CPU meters."""
        self.counts.clear()
        self.samples.clear()
        self.max_lag = 0.0
        self._cpu0 = _cpu_seconds()
        if self._lag_task is None:
            self._lag_task = asyncio.create_task(self._measure_lag())

    async def collect(self) -> dict[str, Any]:
        return {
            "samples": {index: data.tobytes() for index, data in self.samples.items()},
            "stats": await self.stats(),
        }

    async def stats(self) -> dict[str, Any]:
        return {
            "live": len(self.live),
            "lost": dict(self.lost),
            "max_loop_lag_ms": round(self.max_lag * 1000, 1),
            "cpu_s": round(_cpu_seconds() - self._cpu0, 3),
        }

    async def close_all(self) -> int:
        subs = list(self.live)
        self.live.clear()
        for sub in subs:
            sub.close()
        await asyncio.sleep(0.05)
        self.lost.clear()
        return len(subs)

    async def _measure_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + _LAG_TICK
            await asyncio.sleep(_LAG_TICK)
            self.max_lag = max(self.max_lag, loop.time() - expected)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _serve(conn: Connection) -> None:
    # The pipe is read in a thread: the event loop's add_reader would make it
    # non-blocking, and a large answer then fails half-written.
    loop = asyncio.get_running_loop()
    worker = _Worker()
    while True:
        try:
            command, args = await loop.run_in_executor(None, conn.recv)
        except (EOFError, OSError):  # the parent went away
            command, args = "stop", ()
        if command == "stop":
            await worker.close_all()
            return
        try:
            result = await getattr(worker, command)(*args)
        except Exception as exc:  # reported to the parent, which raises it
            result = LoadClientError(f"client command {command} failed: {exc!r}")
        try:
            conn.send(result)
        except OSError:
            return


def _child_main(conn: Connection) -> None:
    """A client process: uvloop, commands from the parent over ``conn``."""
    die_with_parent(signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops us
    import uvloop  # only client processes need it

    uvloop.run(_serve(conn))


# -- the parent's side -------------------------------------------------------------------


@dataclass
class OpenReport:
    """What :meth:`ClientPool.open` achieved."""

    requested: int
    opened: int
    failed: int
    seconds: float
    errors: dict[str, int] = field(default_factory=dict)
    open_ms: list[float] = field(default_factory=list)  # connect to open event, each

    @property
    def rate(self) -> float:
        """Connections opened per second."""
        return self.opened / self.seconds if self.seconds else 0.0


class ClientPool:
    """K client processes holding subscribers; a context manager that always stops them."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("need at least one client process")
        self.size = processes
        self._procs: list[BaseProcess] = []
        self._conns: list[Connection] = []
        self.live = 0
        # Set when a command was cut short (Ctrl-C): the answers still on their way
        # would be taken for the next command's, so no command is sent any more.
        self._broken = False

    def start(self) -> Self:
        ctx = multiprocessing.get_context("spawn")
        for number in range(self.size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_child_main, args=(child,), name=f"loadclient-{number}", daemon=True
            )
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def _call(self, command: str, args: Sequence[tuple[Any, ...]], *, timeout: float) -> list[Any]:
        """Send ``command`` to every process (with its own args), then gather the answers."""
        if self._broken:
            raise LoadClientError(f"client pool unusable after an interrupted command ({command})")
        answers = []
        try:
            for conn, arg in zip(self._conns, args, strict=True):
                conn.send((command, arg))
            deadline = time.monotonic() + timeout
            for number, conn in enumerate(self._conns):
                if not conn.poll(max(0.0, deadline - time.monotonic())):
                    raise LoadClientError(f"client process {number} did not answer {command!r}")
                try:
                    answers.append(conn.recv())
                except EOFError as exc:
                    raise LoadClientError(f"client process {number} died in {command!r}") from exc
        except BaseException:
            self._broken = True
            raise
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return answers

    def _same(self, command: str, *args: Any, timeout: float = 30.0) -> list[Any]:
        return self._call(command, [args] * self.size, timeout=timeout)

    def open(
        self,
        port: int,
        kind: LoadKind,
        paths: Sequence[str],
        *,
        burst: int = 200,
        timeout: float = 30.0,
    ) -> OpenReport:
        """Open one subscriber per path, at most ``burst`` connecting at once across the
        processes; return once each has its ``open`` event (or failed)."""
        shares: list[list[str]] = [list(paths[n :: self.size]) for n in range(self.size)]
        concurrency = max(1, burst // self.size)
        args = [(port, kind, share, concurrency, timeout) for share in shares]
        started = time.monotonic()
        answers = self._call("open", args, timeout=timeout * (1 + len(paths) / burst) + 30)
        errors: dict[str, int] = {}
        open_ms: list[float] = []
        for answer in answers:
            for reason, count in answer["errors"].items():
                errors[reason] = errors.get(reason, 0) + count
            values = array.array("d")
            values.frombytes(answer["open_ms"])
            open_ms.extend(values)
        self.live = sum(a["live"] for a in answers)
        return OpenReport(
            requested=len(paths),
            opened=sum(a["opened"] for a in answers),
            failed=sum(a["failed"] for a in answers),
            seconds=time.monotonic() - started,
            errors=errors,
            open_ms=open_ms,
        )

    def reset(self) -> None:
        """Forget what was received so far; restart the client lag and CPU meters."""
        self._same("reset")

    def wait_message(self, index: int, *, timeout: float) -> tuple[int, int]:
        """Wait until every live subscriber got message ``index``; (received, live)."""
        answers = self._same("wait", index, timeout, timeout=timeout + 30)
        return sum(a[0] for a in answers), sum(a[1] for a in answers)

    def latencies(self) -> tuple[dict[int, list[float]], list[dict[str, Any]]]:
        """Every latency (ms) by message index, and each process's stats."""
        merged: dict[int, list[float]] = {}
        stats = []
        for answer in self._same("collect", timeout=60):
            for index, raw in answer["samples"].items():
                values = array.array("d")
                values.frombytes(raw)
                merged.setdefault(index, []).extend(values)
            stats.append(answer["stats"])
        return merged, stats

    def stats(self) -> list[dict[str, Any]]:
        return self._same("stats")

    def close_connections(self) -> int:
        """Close every subscriber (the processes stay); return how many were open.

        After an interrupted command it stops the client processes instead, which
        closes their connections at once (a server then stops without waiting)."""
        if self._broken:
            self.stop()
            return 0
        closed: int = sum(self._same("close_all", timeout=60))
        self.live = 0
        return closed

    def stop(self) -> None:
        """Stop every client process: ask, then SIGTERM, then SIGKILL."""
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(("stop", ()))
        deadline = time.monotonic() + (1 if self._broken else 5)
        for proc in self._procs:
            proc.join(max(0.1, deadline - time.monotonic()))
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(2)
            if proc.is_alive():
                proc.kill()
                proc.join(2)
        for conn in self._conns:
            conn.close()
        self._procs.clear()
        self._conns.clear()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
