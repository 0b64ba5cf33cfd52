"""Real Tandem servers on loopback, for end-to-end tests, nginx tests and benchmarks.

A :class:`ServerProcess` runs one command from the repository root, in its own
process group, with its output in log files, and waits until the server answers
``GET /api/v1/health`` with 200. Leaving the ``with`` block stops it: SIGTERM to
the whole group, SIGKILL after the stop timeout.

    from tests.servers import gunicorn, hypercorn, migrate, serving

    migrate(db_url)                                  # the real `tandem db upgrade`
    with serving(gunicorn(db_url), hypercorn(db_url)) as (wsgi, asgi):
        with httpx.Client(trust_env=False) as http:  # no proxy between us and loopback
            http.post(f"{wsgi.url}/alerts", content="hi")
            http.get(f"{asgi.url}/alerts/json?poll=1")

``nginx(wsgi, asgi)`` runs the shipped ``deploy/nginx.conf`` in front of two started
doors, with only its listen port and upstream addresses rewritten, and
``start_split_plane`` starts all three; the ``split_plane`` fixture gives a test its own.
The ``chromium`` fixture drives Debian's Chromium through Playwright (sync API).
``scripts/system-packages.sh`` installs nginx and chromium.

``serving`` boots several servers at once and always stops all of them. In a
test, the ``server_pool`` fixture does the same and also adds the servers' log
tails to the report of a failed test; ``serve_doors`` starts both doors (for a
module-scoped fixture) and checks that they exit cleanly. ``migrated_sqlite_url``
gives a test a SQLite file of its own, copied from one migrated once per session
(migrating takes seconds; copying does not). ``tests/conftest.py`` registers this module
as a plugin, so the fixtures are available to every test module; import the rest
as ``tests.servers`` (pyproject.toml puts the repository root on ``pythonpath``).

A server inherits ``os.environ``, with ``TANDEM_ENV=testing`` and the caller's
overrides on top; since it runs from the repository root, a ``.env`` file there
applies too, as it would in production. Servers are stopped even when a test
fails, and any left running are stopped when the interpreter exits. Log files
outlive the server: the pool's sit under the test's ``tmp_path``, others in a
new ``tandem-servers-*`` temporary directory.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
HEALTH_PATH = "/api/v1/health"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_POLL = 0.05
# How a server says that its port was taken between free_port() and its bind().
_PORT_TAKEN = ("Address already in use", "Connection in use")
_PORT_ATTEMPTS = 3

Command = Sequence[str] | Callable[[int], Sequence[str]]


class ServerError(RuntimeError):
    """A server did not start, or a log line did not appear, in time."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now (another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def executable(name: str) -> str:
    """The console script ``name`` installed beside the running interpreter (the venv)."""
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ServerError(f"{name!r} is not installed beside {sys.executable} nor on PATH")
    return found


def server_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` with ``TANDEM_ENV=testing``, unbuffered output and ``overrides``.

    Abuse limits are off unless ``overrides`` turn them on (``TANDEM_RATE_LIMITS=on``).
    """
    env = dict(os.environ)
    env.update({"TANDEM_ENV": "testing", "PYTHONUNBUFFERED": "1", "TANDEM_RATE_LIMITS": "off"})
    env.update(overrides or {})
    return env


class ServerProcess:
    """One server process group on loopback; a context manager that starts and stops it.

    ``command`` is an argv, or a function of the port that returns one: then a port
    that another process takes before the server binds it is replaced, up to three
    times. Output goes to ``<log_dir>/<name>-<port>.stdout.log`` and ``.stderr.log``.
    """

    def __init__(
        self,
        command: Command,
        *,
        name: str = "server",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        log_dir: Path | str | None = None,
        ready_path: str = HEALTH_PATH,
        ready_timeout: float = READY_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        cwd: Path = REPO_ROOT,
    ) -> None:
        if port is None and not callable(command):
            raise ValueError("give the port that a fixed command listens on")
        self.name = name
        self.port = port if port is not None else free_port()
        self.env = server_env(env)
        # None: a new temporary directory, chosen at start() (a ServerPool sets its own).
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.ready_path = ready_path
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
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

    def start(self) -> Self:
        """Start the process and return at once; :meth:`wait_ready` waits for it."""
        if self._proc is not None:
            raise ServerError(f"{self.name} was already started")
        if self.log_dir is None:
            self.log_dir = Path(tempfile.mkdtemp(prefix="tandem-servers-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base = f"{self.name}-{self.port}"
        self._logs = (self.log_dir / f"{base}.stdout.log", self.log_dir / f"{base}.stderr.log")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self._proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self._reaped = self._stopping = False
        _track(self)
        return self

    def wait_ready(self) -> Self:
        """Wait until ``ready_path`` answers 200. Fail early, with the log, if the server exits."""
        if self._proc is None:
            raise ServerError(f"{self.name} was not started")
        attempt = 1
        while True:
            deadline = time.monotonic() + self.ready_timeout
            last = "no answer yet"
            with httpx.Client(trust_env=False, timeout=2.0) as client:
                while not self._exited() and not self._port_taken():
                    try:
                        response = client.get(self.url + self.ready_path)
                        if response.status_code == 200:
                            return self
                        last = f"HTTP {response.status_code}"
                    except httpx.TransportError as exc:
                        last = repr(exc)
                    if time.monotonic() >= deadline:
                        self.stop()
                        raise ServerError(
                            f"{self.name} was not ready after {self.ready_timeout:.0f} s "
                            f"({last})\n{self.log_tail()}"
                        )
                    time.sleep(_POLL)
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
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._exited():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(_POLL / 2)
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
        return "" if self._logs is None else _read(self._logs[0])

    def stderr_text(self) -> str:
        return "" if self._logs is None else _read(self._logs[1])

    def log_text(self) -> str:
        """Everything the server wrote: stdout, then stderr."""
        return self.stdout_text() + self.stderr_text()

    def log_lines(self) -> list[str]:
        """The complete stdout lines so far (a line still being written is left out)."""
        text = self.stdout_text()
        return text[: text.rfind("\n") + 1].splitlines()

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
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines():
                if predicate(line):
                    return line
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"no matching line from {self.name} within {timeout} s\n{self.log_tail()}"
                )
            time.sleep(_POLL)

    def _log_paths(self) -> tuple[Path, Path]:
        if self._logs is None:
            raise ServerError(f"{self.name} was not started: it has no logs")
        return self._logs

    def _exited_and_reaped(self) -> bool:
        return self._proc is None or self._reaped or self._proc.returncode is not None

    def _exited(self) -> bool:
        if self._exited_and_reaped() or self._proc is None:
            return True
        if not hasattr(os, "waitid"):  # not Linux: reap now, and skip the sweep for stragglers
            return self._proc.poll() is not None
        # WNOWAIT leaves the zombie in place: the group id stays ours until stop() reaps it.
        try:
            info = os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _port_taken(self) -> bool:
        return any(marker in self.log_text() for marker in _PORT_TAKEN)


def gunicorn(
    db_url: str,
    *,
    workers: int = 2,
    threads: int = 4,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    log_dir: Path | str | None = None,
    name: str = "gunicorn",
    extra_args: Sequence[str] = (),
) -> ServerProcess:
    """``gunicorn -c gunicorn.conf.py -b 127.0.0.1:PORT wsgi:app`` on ``db_url``, not started.

    ``extra_args`` go before ``wsgi:app`` (for example ``["--graceful-timeout", "5"]``).
    """
    binary = executable("gunicorn")
    overrides = {
        "TANDEM_DATABASE_URL": db_url,
        "TANDEM_WORKERS": str(workers),
        "TANDEM_THREADS": str(threads),
        **(env or {}),
    }
    args = list(extra_args)
    return ServerProcess(
        lambda p: [binary, "-c", "gunicorn.conf.py", "-b", f"{LOOPBACK}:{p}", *args, "wsgi:app"],
        name=name,
        port=port,
        env=overrides,
        log_dir=log_dir,
    )


def hypercorn(
    db_url: str,
    *,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    log_dir: Path | str | None = None,
    name: str = "hypercorn",
    workers: int | None = None,
    extra_args: Sequence[str] = (),
) -> ServerProcess:
    """``hypercorn -c hypercorn.toml -b 127.0.0.1:PORT asgi:app`` on ``db_url``, not started.

    ``workers`` replaces the config's (``-w N``); ``extra_args`` go before ``asgi:app``.
    """
    binary = executable("hypercorn")
    args = [*(["-w", str(workers)] if workers is not None else []), *extra_args]
    return ServerProcess(
        lambda p: [binary, "-c", "hypercorn.toml", "-b", f"{LOOPBACK}:{p}", *args, "asgi:app"],
        name=name,
        port=port,
        env={"TANDEM_DATABASE_URL": db_url, **(env or {})},
        log_dir=log_dir,
    )


def migrate(
    db_url: str, *, env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run the real ``tandem db upgrade`` on ``db_url``; raise with its output if it fails."""
    result = subprocess.run(
        [executable("tandem"), "db", "upgrade"],
        cwd=REPO_ROOT,
        env=server_env({"TANDEM_DATABASE_URL": db_url, **(env or {})}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise ServerError(
            f"tandem db upgrade exited with {result.returncode}\n{result.stdout}{result.stderr}"
        )
    return result


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


@contextlib.contextmanager
def serving(*servers: ServerProcess) -> Iterator[tuple[ServerProcess, ...]]:
    """Start ``servers`` at once, wait until each is ready, and stop all of them at the end."""
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        stop_all(servers)


class ServerPool:
    """The servers of one test: started together, all stopped by :meth:`close`.

    Servers created without a ``log_dir`` write their logs into the pool's.
    """

    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = log_dir
        self.servers: list[ServerProcess] = []

    def start(self, *servers: ServerProcess) -> tuple[ServerProcess, ...]:
        """Start ``servers`` at once and wait until each is ready."""
        self.servers.extend(servers)
        for server in servers:
            if server.log_dir is None:
                server.log_dir = self.log_dir
            server.start()
        for server in servers:
            server.wait_ready()
        return servers

    def close(self) -> None:
        stop_all(self.servers)


def assert_no_tracebacks(*servers: ServerProcess) -> None:
    """No Python traceback in any of the servers' output."""
    for server in servers:
        assert "Traceback" not in server.log_text(), server.log_tail()


@contextlib.contextmanager
def closing_pool(log_dir: Path, *, check_exit: bool = True) -> Iterator[ServerPool]:
    """A :class:`ServerPool` logging under ``log_dir``, closed at the end. Then, with
    ``check_exit`` and unless the block raised, each of its servers must have exited 0
    without a traceback in its log."""
    pool = ServerPool(log_dir=log_dir)
    try:
        yield pool
    finally:
        pool.close()
    if check_exit:
        for server in pool.servers:
            assert server.returncode == 0, server.log_tail()
        assert_no_tracebacks(*pool.servers)


@dataclass(frozen=True)
class Doors:
    """A started gunicorn (the WSGI door) and hypercorn (the ASGI door)."""

    wsgi: ServerProcess
    asgi: ServerProcess

    def named(self, name: str) -> ServerProcess:
        """The door called ``"gunicorn"`` or ``"hypercorn"``."""
        return self.wsgi if name == "gunicorn" else self.asgi

    def other(self, door: ServerProcess) -> ServerProcess:
        return self.asgi if door is self.wsgi else self.wsgi


@contextlib.contextmanager
def serve_doors(
    db_url: str,
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    workers: int = 2,
    threads: int = 4,
    check_exit: bool = True,
) -> Iterator[Doors]:
    """gunicorn and hypercorn on ``db_url`` (migrated) with ``env``, in a
    :func:`closing_pool` under ``log_dir``."""
    with closing_pool(log_dir, check_exit=check_exit) as pool:
        wsgi, asgi = pool.start(
            gunicorn(db_url, workers=workers, threads=threads, env=env), hypercorn(db_url, env=env)
        )
        yield Doors(wsgi, asgi)


# Every server started and not yet stopped, so that none outlives the test run.
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


@atexit.register
def _stop_leftovers() -> None:
    stop_all(list(live_servers()), timeout=5.0)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


# --- the split plane: nginx with deploy/nginx.conf in front of both doors ---------------

NGINX_CONF = REPO_ROOT / "deploy" / "nginx.conf"
# The only lines of deploy/nginx.conf that the tests rewrite: the listen port and the two
# upstream addresses. Everything else, the routing above all, runs as shipped.
NGINX_LISTEN = "listen 80;"
NGINX_WSGI_SERVER = "server 127.0.0.1:8000;"
NGINX_ASGI_SERVER = "server 127.0.0.1:8001;"

# The main config around it: in the foreground, every file under one directory, and an
# access log that says which upstream answered. Workers run as the user running the
# tests, so that they can write the temporary files of a test's private directory.
_NGINX_MAIN = """\
# Written by tests/servers.py around deploy/nginx.conf (rendered as tandem.conf).
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log info;
{user}
events {{
    worker_connections 1024;
}}
http {{
    log_format tandem_test escape=json '{{"method": "$request_method", "uri": "$uri", '
        '"status": $status, "upstream": "$upstream_addr", '
        '"request_id": "$upstream_http_x_request_id"}}';
    access_log {root}/access.log tandem_test;
    client_body_temp_path {root}/temp/body;
    proxy_temp_path {root}/temp/proxy;
    fastcgi_temp_path {root}/temp/fastcgi;
    uwsgi_temp_path {root}/temp/uwsgi;
    scgi_temp_path {root}/temp/scgi;
    include {root}/tandem.conf;
}}
"""


def nginx_executable() -> str:
    """The nginx binary (Debian's package puts it in /usr/sbin)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise ServerError("nginx is not installed: run scripts/system-packages.sh as root")
    return found


def render_nginx_conf(conf: Path, *, port: int, wsgi: str, asgi: str) -> str:
    """``conf`` listening on 127.0.0.1:``port`` in front of ``wsgi`` and ``asgi`` (HOST:PORT)."""
    text = conf.read_text()
    for old, new in (
        (NGINX_LISTEN, f"listen {LOOPBACK}:{port};"),
        (NGINX_WSGI_SERVER, f"server {wsgi};"),
        (NGINX_ASGI_SERVER, f"server {asgi};"),
    ):
        if text.count(old) != 1:
            raise ServerError(f"{conf} must hold {old!r} exactly once: the tests rewrite it")
        text = text.replace(old, new)
    return text


class NginxProcess(ServerProcess):
    """A foreground nginx on loopback with ``conf`` (default: the shipped deploy/nginx.conf)
    in front of a started gunicorn and hypercorn.

    Its files sit in :attr:`root`, ``<log_dir>/<name>-<port>/``: the rendered config,
    the pid file, ``error.log``, ``access.log`` (JSON lines with the ``upstream`` that
    answered) and the temporary files. It is ready once ``/api/v1/health`` answers 200
    through it, that is from gunicorn.
    """

    def __init__(
        self,
        wsgi: ServerProcess,
        asgi: ServerProcess,
        *,
        conf: Path = NGINX_CONF,
        port: int | None = None,
        log_dir: Path | str | None = None,
        name: str = "nginx",
    ) -> None:
        self.wsgi, self.asgi, self.conf = wsgi, asgi, conf
        self._binary = nginx_executable()
        super().__init__(self._command, name=name, port=port, log_dir=log_dir)

    @property
    def root(self) -> Path:
        if self.log_dir is None:
            raise ServerError(f"{self.name} was not started: it has no directory")
        return self.log_dir / f"{self.name}-{self.port}"

    def _command(self, port: int) -> list[str]:
        # Called by start() for each port tried: the config names the port.
        if self.log_dir is None:
            raise ServerError(f"{self.name} was not started: it has no directory")
        root = self.log_dir / f"{self.name}-{port}"
        (root / "temp").mkdir(parents=True, exist_ok=True)
        (root / "tandem.conf").write_text(
            render_nginx_conf(
                self.conf,
                port=port,
                wsgi=f"{LOOPBACK}:{self.wsgi.port}",
                asgi=f"{LOOPBACK}:{self.asgi.port}",
            )
        )
        user = "user root;" if os.geteuid() == 0 else ""
        (root / "nginx.conf").write_text(_NGINX_MAIN.format(root=root, user=user))
        main, errors = str(root / "nginx.conf"), str(root / "error.log")
        return [self._binary, "-p", str(root), "-c", main, "-e", errors]

    def error_log_text(self) -> str:
        return "" if self.log_dir is None else _read(self.root / "error.log")

    def access_entries(self) -> list[dict[str, Any]]:
        """nginx's access lines so far, one dict per complete line."""
        text = "" if self.log_dir is None else _read(self.root / "access.log")
        return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]

    def wait_for_access(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Wait for nginx's access line that satisfies ``predicate`` (written once the
        response, or the whole stream, is done) and return it."""
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.access_entries():
                if predicate(entry):
                    return entry
            if time.monotonic() >= deadline:
                raise ServerError(f"no matching nginx access line within {timeout} s")
            time.sleep(_POLL)

    def log_tail(self, lines: int = 40) -> str:
        tail = self.error_log_text().splitlines()[-lines:]
        return "\n".join(
            [super().log_tail(lines), f"--- {self.name} error.log (last {len(tail)} lines)", *tail]
        )


def nginx(
    wsgi: ServerProcess,
    asgi: ServerProcess,
    *,
    conf: Path = NGINX_CONF,
    port: int | None = None,
    log_dir: Path | str | None = None,
    name: str = "nginx",
) -> NginxProcess:
    """nginx with the shipped config in front of ``wsgi`` and ``asgi``, not started.
    Start it after both are ready: it reads their ports when it starts."""
    return NginxProcess(wsgi, asgi, conf=conf, port=port, log_dir=log_dir, name=name)


@dataclass(frozen=True)
class SplitPlane(Doors):
    """nginx, and the gunicorn and hypercorn behind it, on one database."""

    nginx: NginxProcess

    @property
    def url(self) -> str:
        """The one origin: nginx."""
        return self.nginx.url


def start_split_plane(
    pool: ServerPool,
    db_url: str,
    *,
    env: Mapping[str, str] | None = None,
    workers: int = 2,
    threads: int = 8,
) -> SplitPlane:
    """Start gunicorn and hypercorn on ``db_url`` (migrated) with ``env``, then nginx in
    front of them, all in ``pool``."""
    wsgi, asgi = pool.start(
        gunicorn(db_url, workers=workers, threads=threads, env=env), hypercorn(db_url, env=env)
    )
    (proxy,) = pool.start(nginx(wsgi, asgi))
    if not isinstance(proxy, NginxProcess):  # for the type checker
        raise ServerError(f"not nginx: {proxy!r}")
    return SplitPlane(wsgi, asgi, proxy)


def chromium_executable() -> str:
    """Debian's Chromium, which Playwright drives (``playwright install`` is never run)."""
    found = shutil.which("chromium")
    if found is None:
        raise ServerError("Debian's chromium is not installed: run scripts/system-packages.sh")
    return found


# --- pytest plugin ---------------------------------------------------------------------

_FIRST_STARTED = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file that the real ``tandem db upgrade`` migrated, once per session.
    Copy it (:func:`copy_sqlite`) rather than use it: migrating takes seconds."""
    path = tmp_path_factory.mktemp("sqlite-template") / "tandem.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


def copy_sqlite(template: Path, target: Path) -> str:
    """Copy the migrated ``template`` to ``target``; return its database URL."""
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def migrated_sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite file of this test's own (a copy of :func:`sqlite_template`)."""
    return copy_sqlite(sqlite_template, tmp_path / "migrated.db")


@pytest.fixture
def server_pool(tmp_path: Path) -> Iterator[ServerPool]:
    """A :class:`ServerPool` whose servers log under ``tmp_path`` and stop after the test."""
    with closing_pool(tmp_path / "servers", check_exit=False) as pool:
        yield pool


@pytest.fixture
def split_plane(server_pool: ServerPool, migrated_sqlite_url: str) -> SplitPlane:
    """gunicorn, hypercorn and nginx with deploy/nginx.conf, on a migrated SQLite file of
    this test's own; stopped after the test. Streams send a keepalive every second."""
    return start_split_plane(
        server_pool, migrated_sqlite_url, env={"TANDEM_KEEPALIVE_INTERVAL": "1s"}
    )


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright's sync API; closed after the test.

    Sync tests only: Playwright's sync API refuses to run inside an event loop. Without
    root the browser keeps its sandbox; as root Chromium cannot have one.
    """
    from playwright.sync_api import sync_playwright

    executable_path = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable_path,
            headless=True,
            chromium_sandbox=os.geteuid() != 0,
            # Loopback only: never a proxy from the environment or the system.
            args=["--no-proxy-server"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def _no_leaked_servers(request: pytest.FixtureRequest) -> Iterator[None]:
    # Like Flask's leak_detector: a test must stop every server it started.
    before = live_servers()
    with _LOCK:
        request.node.stash[_FIRST_STARTED] = len(_STARTED)
    yield
    leaked = sorted(live_servers() - before, key=lambda server: server.port)
    stop_all(leaked)
    if leaked:
        pytest.fail(f"the test left servers running (now stopped): {leaked}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add the log tails of the servers that a failed test started to its report,
    and of those still running that it may have shared (module-scoped fixtures)."""
    report = yield
    first = item.stash.get(_FIRST_STARTED, None)
    if report.failed and first is not None:
        with _LOCK:
            started = _STARTED[first:]
            shared = [server for server in _STARTED[:first] if server in _LIVE]
        for server in [*shared, *started]:
            report.sections.append((f"server {server.name} {server.url}", server.log_tail()))
    return report
