"""One server process group on loopback, started and always stopped.

A :class:`ServerProcess` runs one command from the repository root, in a session
(process group) of its own, with its output in log files, and waits until the server
answers a readiness request (:class:`Ready`, by default ``GET /api/v1/health`` with
a 2xx). Leaving the ``with`` block stops it: SIGTERM to the whole group, SIGKILL after
the stop timeout. Servers are stopped even when the caller fails, and any left running
are stopped when the interpreter exits; :func:`servers_started` and
:func:`live_servers` let a test runner check that none leaks.

Log files outlive the server: ``<log_dir>/<log_name>-<port>.stdout.log`` and
``.stderr.log``, in a new ``tandem-servers-*`` temporary directory unless the caller
(a :class:`~harness.servers.ServerPool`, a benchmark's work directory) gives one.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from harness import processes
from harness.environment import server_env
from harness.errors import ServerError
from harness.net import LOOPBACK, free_port, http_request
from harness.waiting import WaitTimeout, eventually

HEALTH_PATH = "/api/v1/health"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_POLL = 0.05
_PROBE_TIMEOUT = 5.0
# How a server says that its port was taken between free_port() and its bind().
_PORT_TAKEN = ("Address already in use", "Connection in use")
_PORT_ATTEMPTS = 3

Command = Sequence[str] | Callable[[int], Sequence[str]]


@dataclass(frozen=True)
class Ready:
    """When a server counts as ready: ``method path`` (with ``body``) answers a 2xx and
    the leader has at least ``workers`` children (gunicorn's workers)."""

    path: str = HEALTH_PATH
    method: str = "GET"
    body: bytes | None = None
    workers: int = 0
    timeout: float = READY_TIMEOUT


class _NotReady(Exception):
    """The server answered, but not yet as a ready one."""


class ServerProcess:
    """One server process group on loopback; a context manager that starts and stops it.

    ``command`` is an argv, or a function of the port that returns one: then a port
    that another process takes before the server binds it is replaced, up to three
    times. ``env`` is the whole environment (default :func:`server_env`).
    ``die_with_parent`` has the kernel kill the server if this process dies (a
    ``preexec_fn``: only for callers without other threads, the benchmarks).
    """

    def __init__(
        self,
        command: Command,
        *,
        name: str = "server",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        log_dir: Path | str | None = None,
        log_name: str | None = None,
        ready: Ready | None = None,
        stop_timeout: float = STOP_TIMEOUT,
        die_with_parent: bool = False,
        cwd: Path = processes.REPO_ROOT,
    ) -> None:
        if port is None and not callable(command):
            raise ValueError("give the port that a fixed command listens on")
        self.name = name
        self.port = port if port is not None else free_port()
        self.env = dict(env) if env is not None else server_env()
        # None: a new temporary directory, chosen at start() (a ServerPool sets its own).
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.log_name = log_name
        self.ready = ready or Ready()
        self.stop_timeout = stop_timeout
        self.die_with_parent = die_with_parent
        self.cwd = cwd
        self._command = command
        self._proc: subprocess.Popen[bytes] | None = None
        self._logs: tuple[Path, Path] | None = None
        self._reaped = False
        self._stopping = False

    def __repr__(self) -> str:
        state = "not started" if self._proc is None else f"pid {self._proc.pid}"
        return f"<ServerProcess {self.name} {self.url} {state}>"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        """The pid of the process started, which leads its process group."""
        if self._proc is None:
            raise ServerError(f"{self.name} was not started")
        return self._proc.pid

    @property
    def argv(self) -> list[str]:
        command = self._command
        return list(command(self.port) if callable(command) else command)

    @property
    def stdout_path(self) -> Path:
        return self._log_paths()[0]

    @property
    def stderr_path(self) -> Path:
        return self._log_paths()[1]

    @property
    def returncode(self) -> int | None:
        """The exit code once stopped; negative for the signal that killed it."""
        return None if self._proc is None else self._proc.returncode

    @property
    def running(self) -> bool:
        return self._proc is not None and not self._reaped and not self._exited()

    def children(self) -> list[int]:
        """The pids of the leader's direct children (gunicorn's workers)."""
        return processes.child_pids(self.pid)

    def start(self) -> Self:
        """Start the process and return at once; :meth:`wait_ready` waits for it."""
        if self._proc is not None:
            raise ServerError(f"{self.name} was already started")
        if self.log_dir is None:
            self.log_dir = Path(tempfile.mkdtemp(prefix="tandem-servers-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # A name may say "gunicorn sync benchmarks.apps:flask_hello": keep file names plain.
        base = re.sub(r"[^\w.-]+", "-", self.log_name or self.name).strip("-")
        base = f"{base}-{self.port}"
        self._logs = (self.log_dir / f"{base}.stdout.log", self.log_dir / f"{base}.stderr.log")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self._proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own group: stopped whole; Ctrl-C reaches us only
                preexec_fn=processes.die_with_parent if self.die_with_parent else None,
            )
        self._reaped = self._stopping = False
        _track(self)
        return self

    def wait_ready(self) -> Self:
        """Wait until the server is :attr:`ready`. Fail early, with the log, if it exits."""
        if self._proc is None:
            raise ServerError(f"{self.name} was not started")
        attempt = 1
        while True:
            try:
                if eventually(
                    self._probe,
                    self.ready.timeout,
                    interval=_POLL,
                    what=f"{self.name} to answer {self.ready.method} {self.ready.path}",
                    ignoring=(OSError, _NotReady),
                ):
                    return self
            except WaitTimeout as exc:
                self.stop()
                raise ServerError(f"{exc}\n{self.log_tail()}") from None
            except _Gone:
                pass
            taken = self._port_taken()
            code = self.stop()
            if not (taken and callable(self._command) and attempt < _PORT_ATTEMPTS):
                raise ServerError(
                    f"{self.name} exited with {code} before it was ready\n{self.log_tail()}"
                )
            # Another process took the port after free_port(): try again on a new one.
            attempt += 1
            self.port, self._proc = free_port(), None
            self.start()

    def _probe(self) -> bool:
        if self._exited() or self._port_taken():
            raise _Gone
        ready = self.ready
        status, body = http_request(
            self.port, ready.method, ready.path, ready.body, timeout=_PROBE_TIMEOUT
        )
        if not 200 <= status < 300:
            raise _NotReady(f"HTTP {status}: {body[:200]!r}")
        if len(self.children()) < ready.workers:
            raise _NotReady(f"{len(self.children())} of {ready.workers} workers")
        return True

    def send_signal(self, sig: int, *, group: bool = False) -> None:
        """Send ``sig`` to the leader, or to its whole process group. No-op once it exited."""
        if self._proc is None or self._exited_and_reaped():
            return
        # Until the leader is reaped its pid, which is also the group id, cannot be reused.
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self._proc.pid, sig)
            else:
                os.kill(self._proc.pid, sig)

    def begin_stop(self, sig: int = signal.SIGTERM, *, group: bool = True) -> None:
        """Ask the server to stop, once, without waiting: several can then stop in parallel."""
        if not self._stopping and not self._exited():
            self._stopping = True
            self.send_signal(sig, group=group)

    def wait_exit(self, timeout: float | None) -> bool:
        """Wait until the leader exits, without reaping it; return whether it did."""
        try:
            eventually(
                self._exited,
                math.inf if timeout is None else timeout,
                interval=_POLL / 2,
                what=f"{self.name} to exit",
            )
        except WaitTimeout:
            return False
        return True

    def stop(
        self, sig: int = signal.SIGTERM, *, group: bool = True, timeout: float | None = None
    ) -> int | None:
        """Stop the server and return its exit code; idempotent.

        Sends ``sig`` to the process group (or only the leader: ``group=False``), waits
        up to ``timeout`` (default ``stop_timeout``) for the leader to exit, then kills
        the group, which also ends any stragglers the leader left behind.
        """
        if self._proc is None:
            return None
        try:
            if not self._exited_and_reaped():
                if not self._exited():
                    self.begin_stop(sig, group=group)
                    if not self.wait_exit(self.stop_timeout if timeout is None else timeout):
                        self.send_signal(signal.SIGKILL, group=True)
                # The leader is gone but not reaped, so the group id is still ours.
                self.send_signal(signal.SIGKILL, group=True)
                self._proc.wait()
            self._reaped = True
        finally:
            _untrack(self)
        return self._proc.returncode

    def __enter__(self) -> Self:
        try:
            if self._proc is None:
                self.start()
            return self.wait_ready()
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

    def stdout_text(self) -> str:
        return "" if self._logs is None else read_text(self._logs[0])

    def stderr_text(self) -> str:
        return "" if self._logs is None else read_text(self._logs[1])

    def log_text(self) -> str:
        """Everything the server wrote: stdout, then stderr."""
        return self.stdout_text() + self.stderr_text()

    def log_lines(self) -> list[str]:
        """The complete stdout lines so far (a line still being written is left out)."""
        return complete_lines(self.stdout_text())

    def log_tail(self, lines: int = 40) -> str:
        out = self.stdout_text().splitlines()[-lines:]
        err = self.stderr_text().splitlines()[-lines:]
        return "\n".join(
            [
                f"--- {self.name} stdout (last {len(out)} lines)",
                *out,
                f"--- {self.name} stderr (last {len(err)} lines)",
                *err,
            ]
        )

    def wait_for_log(self, predicate: Callable[[str], bool], *, timeout: float = 10.0) -> str:
        """Wait for a complete stdout line that satisfies ``predicate``, and return it.

        Servers write access lines after the response has gone out, so a client can
        see the response before its log line exists.
        """

        def matching() -> str | None:
            return next((line for line in self.log_lines() if predicate(line)), None)

        try:
            return eventually(
                matching, timeout, interval=_POLL, what=f"a matching line from {self.name}"
            )
        except WaitTimeout as exc:
            raise ServerError(f"{exc}\n{self.log_tail()}") from None

    def _log_paths(self) -> tuple[Path, Path]:
        if self._logs is None:
            raise ServerError(f"{self.name} was not started: it has no logs")
        return self._logs

    def _exited_and_reaped(self) -> bool:
        return self._proc is None or self._reaped or self._proc.returncode is not None

    def _exited(self) -> bool:
        if self._exited_and_reaped() or self._proc is None:
            return True
        # WNOWAIT leaves the zombie in place: the group id stays ours until stop() reaps it.
        try:
            info = os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _port_taken(self) -> bool:
        return any(marker in self.log_text() for marker in _PORT_TAKEN)


class _Gone(Exception):
    """The server exited, or lost its port, before it was ready."""


def stop_all(servers: Sequence[ServerProcess], *, timeout: float | None = None) -> None:
    """Stop ``servers`` together: signal every one first, then wait for each."""
    for server in servers:
        server.begin_stop()
    errors: list[BaseException] = []
    for server in reversed(servers):
        try:
            server.stop(timeout=timeout)
        except BaseException as exc:  # stop the others before raising
            errors.append(exc)
    if errors:
        raise errors[0]


def read_text(path: Path) -> str:
    """A log file's text so far ("" before the server created it)."""
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def complete_lines(text: str) -> list[str]:
    """The lines of ``text`` that end in a newline (a line still being written is left out)."""
    return text[: text.rfind("\n") + 1].splitlines()


# Every server started and not yet stopped, so that none outlives the run.
_LIVE: set[ServerProcess] = set()
_STARTED: list[ServerProcess] = []
_LOCK = threading.Lock()


def _track(server: ServerProcess) -> None:
    with _LOCK:
        _LIVE.add(server)
        if server not in _STARTED:  # a restart on a new port is the same server
            _STARTED.append(server)


def _untrack(server: ServerProcess) -> None:
    with _LOCK:
        _LIVE.discard(server)


def live_servers() -> set[ServerProcess]:
    """The servers started in this interpreter and not stopped yet."""
    with _LOCK:
        return set(_LIVE)


def servers_started() -> list[ServerProcess]:
    """Every server started in this interpreter, in the order of their first start."""
    with _LOCK:
        return list(_STARTED)


@atexit.register
def _stop_leftovers() -> None:
    stop_all(list(live_servers()), timeout=5.0)
