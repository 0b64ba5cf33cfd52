"""What every benchmark needs: servers, databases, memory readings, percentiles, results.

Servers run from the repository root with the shipped config files, each in a
session (process group) of its own, so that it can be stopped whole and so that
Ctrl-C in the terminal reaches the benchmark, not the server. Every server and
client process started through this module is stopped however the benchmark
ends: normally, on an error, on Ctrl-C, on SIGTERM/SIGHUP (see
:func:`terminate_as_exit`), at interpreter exit, and, if the benchmark itself is
killed, by the kernel (``PR_SET_PDEATHSIG``).

    with terminate_as_exit(), Workdir("streams") as work:
        url = sqlite_database(work.path / "a.db")
        with Server.hypercorn(env=tandem_env(TANDEM_DATABASE_URL=url), log=work.log("h")) as srv:
            srv.wait_ready()
            print(vm_rss_kib(srv.pid))
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import dataclasses
import datetime as dt
import http.client
import json
import math
import os
import platform
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.prefix) / "bin"
RESULTS = Path(__file__).resolve().with_name("results")
RAW = RESULTS / "raw"  # git-ignored: logs, raw samples, tool reports
HOST = "127.0.0.1"
HEALTH_PATH = "/api/v1/health"
POSTGRES_ADMIN_URL = os.environ.get(
    "TANDEM_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TANDEM_BENCH_REDIS", "redis://127.0.0.1:6379/0")
# Every benchmark server runs with these: benchmarks measure serving, not the abuse limits.
BENCH_SERVER_ENV = {"TANDEM_RATE_LIMITS": "off"}
LUA = Path(__file__).resolve().with_name("post.lua")


class BenchmarkError(RuntimeError):
    """A server did not start, a database could not be made, a client failed."""


# -- process hygiene ---------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only).

    Safe as a ``preexec_fn`` (async-signal-safe prctl, no allocation to speak of).
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into SystemExit, so that ``finally`` blocks stop the servers."""
    previous = {sig: signal.signal(sig, _raise_exit) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- servers -----------------------------------------------------------------------------

_LIVE: set[Server] = set()


def free_port(host: str = HOST) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def tandem_env(overrides: Mapping[str, str] | None = None, **more: str) -> dict[str, str]:
    """The environment for a server or a ``tandem`` command.

    ``os.environ`` without any ``TANDEM_*`` variable of the caller (a benchmark
    sets every one it relies on), plus ``TANDEM_ENV=testing``, rate limits off
    (:data:`BENCH_SERVER_ENV`) and the overrides. A ``.env`` file in the repository
    root still applies, as it would in production.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update({"TANDEM_ENV": "testing", "PYTHONUNBUFFERED": "1", **BENCH_SERVER_ENV})
    env.update(overrides or {})
    env.update(more)
    return env


class Server:
    """One server process group on loopback. A context manager: leaving it stops the server."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        port: int,
        env: Mapping[str, str],
        log: Path,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.port = port
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: Ctrl-C reaches us, not it
                preexec_fn=die_with_parent,  # no threads in the parent
            )
        _LIVE.add(self)

    @classmethod
    def gunicorn(
        cls,
        app: str = "wsgi:app",
        *,
        env: Mapping[str, str],
        log: Path,
        port: int | None = None,
        workers: int | None = None,
        args: Sequence[str] = (),
    ) -> Server:
        """``gunicorn -c gunicorn.conf.py -b HOST:PORT [-w N] APP``."""
        port = port or free_port()
        cmd = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-b", f"{HOST}:{port}"]
        if workers is not None:
            cmd += ["-w", str(workers)]
        return cls("gunicorn", [*cmd, *args, app], port=port, env=env, log=log)

    @classmethod
    def hypercorn(
        cls,
        app: str = "asgi:app",
        *,
        env: Mapping[str, str],
        log: Path,
        port: int | None = None,
        args: Sequence[str] = (),
    ) -> Server:
        """``hypercorn -c hypercorn.toml -b HOST:PORT APP``."""
        port = port or free_port()
        cmd = [str(BIN / "hypercorn"), "-c", "hypercorn.toml", "-b", f"{HOST}:{port}"]
        return cls("hypercorn", [*cmd, *args, app], port=port, env=env, log=log)

    @classmethod
    def uvicorn(
        cls,
        app: str = "asgi:app",
        *,
        env: Mapping[str, str],
        log: Path,
        port: int | None = None,
        args: Sequence[str] = (),
    ) -> Server:
        """``uvicorn --host HOST --port PORT APP`` (a reference point; no config file)."""
        port = port or free_port()
        cmd = [str(BIN / "uvicorn"), "--host", HOST, "--port", str(port)]
        return cls("uvicorn", [*cmd, *args, app], port=port, env=env, log=log)

    @classmethod
    def granian(
        cls,
        app: str = "asgi:app",
        *,
        interface: str = "asgi",
        env: Mapping[str, str],
        log: Path,
        port: int | None = None,
        args: Sequence[str] = (),
    ) -> Server:
        """``granian --interface asgi|wsgi --host HOST --port PORT APP`` (a reference point)."""
        port = port or free_port()
        cmd = [str(BIN / "granian"), "--interface", interface, "--host", HOST, "--port", str(port)]
        return cls("granian", [*cmd, *args, app], port=port, env=env, log=log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def children(self) -> list[int]:
        """The pids of the server's direct children (gunicorn's workers)."""
        return child_pids(self.pid)

    def wait_ready(
        self,
        *,
        path: str = HEALTH_PATH,
        method: str = "GET",
        body: bytes | None = None,
        timeout: float = 30.0,
        workers: int = 0,
    ) -> None:
        """Wait until ``method path`` answers 2xx (and ``workers`` children exist)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchmarkError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                status, payload = http_request(self.port, method, path, body, timeout=5)
                if 200 <= status < 300 and len(self.children()) >= workers:
                    return
                last = f"HTTP {status}: {payload[:200]!r}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise BenchmarkError(
            f"{self.name} not ready after {timeout:.0f}s ({last}):\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the server (graceful), then SIGKILL to whatever is left of its group."""
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout)
        finally:
            # The group id is the server's pid (start_new_session): only what we started.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            _LIVE.discard(self)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_all_servers() -> None:
    """Stop every server still running (an ``atexit`` hook; harmless to call twice)."""
    for server in list(_LIVE):
        server.stop(timeout=5)


atexit.register(stop_all_servers)


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """One request on a fresh connection; returns status and body."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc (Linux)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(x) for x in (task / "children").read_text().split()]
    return sorted(set(found))


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (workers, their helpers), from /proc."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += child_pids(current)
    return tree


# -- memory ------------------------------------------------------------------------------


def vm_rss_kib(pid: int) -> int:
    """The resident set size of ``pid`` in KiB (``VmRSS`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchmarkError(f"no VmRSS for pid {pid}")


def tree_rss_kib(pid: int) -> int:
    """VmRSS summed over ``pid``'s process tree, in KiB (pages shared by forked
    workers count once per process, as ``ps`` would show them)."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, BenchmarkError):
            total += vm_rss_kib(member)
    return total


class RssSampler:
    """The peak of :func:`tree_rss_kib` over the life of a ``with`` block.

    A thread reads /proc every ``interval`` seconds while the block runs, or between
    :meth:`start` and :meth:`stop` (and once at either end). Start it only after the
    servers of a measurement are up: a server is started with a ``preexec_fn``, which
    must not fork while other threads run.

        with RssSampler(server.pid) as rss:
            ...load...
        rss.peak_kib
    """

    def __init__(self, *pids: int, interval: float = 0.2) -> None:
        self.pids = pids
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def sample(self) -> None:
        self.peak_kib = max(self.peak_kib, sum(tree_rss_kib(pid) for pid in self.pids))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    @property
    def peak_mib(self) -> float:
        return round(self.peak_kib / 1024, 1)

    def start(self) -> Self:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (idempotent); one last reading."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self.sample()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def settled_rss_kib(pid: int, *, seconds: float = 2.0, step: float = 0.25) -> int:
    """VmRSS after ``seconds`` of quiet: the last of several readings (a lagging free shows)."""
    deadline = time.monotonic() + seconds
    value = vm_rss_kib(pid)
    while time.monotonic() < deadline:
        time.sleep(step)
        value = vm_rss_kib(pid)
    return value


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far, in seconds (/proc/<pid>/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def open_fds(pid: int) -> int:
    """How many file descriptors ``pid`` holds."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


# -- databases ---------------------------------------------------------------------------


def migrate(database_url: str, *, env: Mapping[str, str] | None = None) -> None:
    """``tandem db upgrade`` on ``database_url``, the way an operator runs it."""
    run_env = dict(env) if env is not None else tandem_env()
    run_env["TANDEM_DATABASE_URL"] = database_url
    done = subprocess.run(
        [str(BIN / "tandem"), "db", "upgrade"],
        cwd=ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise BenchmarkError(f"tandem db upgrade failed:\n{(done.stderr or done.stdout)[-2000:]}")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def sqlite_database(path: Path, *, migrated: bool = True, template: Path | None = None) -> str:
    """A fresh SQLite database at ``path`` (any old one removed), migrated; its URL.

    With ``template``, the first call migrates that file and every call copies it,
    which saves ``tandem db upgrade`` (about a second) per database.
    """
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not migrated:
        return sqlite_url(path)
    if template is None:
        migrate(sqlite_url(path))
        return sqlite_url(path)
    if not template.exists():
        migrate(sqlite_url(template))
    # No process has the template open: its main file (and WAL, if any) is the database.
    shutil.copyfile(template, path)
    if Path(f"{template}-wal").exists():
        shutil.copyfile(f"{template}-wal", f"{path}-wal")
    return sqlite_url(path)


async def _postgres(admin_url: str, statement: str) -> None:
    import asyncpg  # only PostgreSQL runs need it

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def postgres_database(
    prefix: str = "tandem_bench", *, admin_url: str = POSTGRES_ADMIN_URL, migrated: bool = True
) -> Iterator[str]:
    """A new, migrated PostgreSQL database for one run, dropped afterwards; yields its URL
    (``postgresql+asyncpg://...``)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_postgres(admin_url, f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        raise BenchmarkError(f"cannot create PostgreSQL database ({admin_url}): {exc}") from exc
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    try:
        if migrated:
            migrate(url)
        yield url
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(_postgres(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def redis_prefix(prefix: str = "tandem-bench", *, url: str = REDIS_URL) -> Iterator[str]:
    """A unique ``TANDEM_REDIS_PREFIX`` for one run; any keys under it are deleted afterwards."""
    value = f"{prefix}-{uuid.uuid4().hex[:10]}:"
    try:
        yield value
    finally:
        with contextlib.suppress(Exception):
            from redis import Redis

            client = Redis.from_url(url, socket_timeout=5)
            try:
                keys = list(client.scan_iter(match=f"{value}*", count=500))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()


def redis_available(url: str = REDIS_URL) -> bool:
    try:
        from redis import Redis

        client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


# -- statistics --------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float, *, presorted: bool = False) -> float:
    """The ``p``-th percentile (0-100) of ``values``, linearly interpolated; NaN if empty."""
    if not values:
        return math.nan
    data = values if presorted else sorted(values)
    if len(data) == 1:
        return float(data[0])
    rank = (len(data) - 1) * min(100.0, max(0.0, p)) / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return float(data[low] + (data[high] - data[low]) * (rank - low))


def summarize(values: Iterable[float], *, digits: int = 2) -> dict[str, float | int]:
    """Count, mean, p50, p90, p99, max and min of ``values``, rounded for a report."""
    data = sorted(values)
    if not data:
        return {"count": 0}
    return {
        "count": len(data),
        "mean": round(sum(data) / len(data), digits),
        "min": round(data[0], digits),
        "p50": round(percentile(data, 50, presorted=True), digits),
        "p90": round(percentile(data, 90, presorted=True), digits),
        "p99": round(percentile(data, 99, presorted=True), digits),
        "max": round(data[-1], digits),
    }


# -- HTTP load (wrk) ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Result:
    """What one wrk run measured."""

    requests: int  # responses received, any status
    seconds: float
    status_errors: int  # responses with a status of 400 or more
    errors: int  # those plus socket errors (connect, read, write, timeout)
    p50_ms: float
    p99_ms: float
    peak_rss_kib: int = 0  # the server's process tree, when sampled

    @property
    def ok_rps(self) -> float:
        """Successful responses per second."""
        return max(0, self.requests - self.status_errors) / self.seconds

    @property
    def error_rate(self) -> float:
        return self.errors / max(1, self.requests)


_WRK_JSON = re.compile(r"^WRK_JSON (\{.*\})$", re.MULTILINE)


def wrk(
    port: int,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    timeout: float = 10.0,
    path: str = "/bench",
    method: str = "POST",
    sample_pid: int | None = None,
) -> tuple[Result, str]:
    """One wrk run against ``method path`` (``post.lua``: POST sends a short text body).

    wrk takes whole seconds: ``seconds`` and ``timeout`` are rounded up. With
    ``sample_pid``, the peak RSS of that process tree during the run is sampled.
    Returns the result and wrk's own report.
    """
    cmd = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, math.ceil(seconds))}s",
        f"--timeout={max(1, math.ceil(timeout))}s",
        "--latency",
        "-s",
        str(LUA),
        f"http://{HOST}:{port}{path}",
    ]
    env = {**os.environ, "WRK_METHOD": method}
    run_for = seconds + timeout + 30
    with contextlib.ExitStack() as stack:
        rss = stack.enter_context(RssSampler(sample_pid)) if sample_pid else None
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=run_for, env=env)
    match = _WRK_JSON.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise BenchmarkError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(match.group(1))
    status = int(data["status"])
    errors = status + sum(int(data[k]) for k in ("connect", "read", "write", "timeout"))
    result = Result(
        requests=int(data["requests"]),
        seconds=int(data["duration_us"]) / 1e6,
        errors=errors,
        status_errors=status,
        p50_ms=int(data["p50_us"]) / 1000,
        p99_ms=int(data["p99_us"]) / 1000,
        peak_rss_kib=rss.peak_kib if rss else 0,
    )
    return result, done.stdout[: match.start()].rstrip()


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" Copyright")[0].strip() if first else "?"


def ensure_wrk() -> str | None:
    """Make sure ``wrk`` is on PATH: as root, ``apt-get install wrk``. Returns None when
    it is there, else what to do about it."""
    if shutil.which("wrk"):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "wrk is not installed: sudo apt-get install wrk"
    print("wrk is not installed: apt-get install wrk ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["apt-get", *args], env=env, capture_output=True, text=True, timeout=600
        )

    done = apt("install", "-y", "-qq", "wrk")
    if done.returncode != 0:  # an old package list: update it once, then retry
        apt("update", "-qq")
        done = apt("install", "-y", "-qq", "wrk")
    if shutil.which("wrk"):
        return None
    return f"apt-get install wrk failed:\n{(done.stderr or done.stdout)[-1000:]}"


# -- results -----------------------------------------------------------------------------


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stamp(when: dt.datetime) -> str:
    """A file-name friendly time stamp."""
    return when.strftime("%Y-%m-%dT%H%M%S")


def result_path(benchmark: str, when: dt.datetime) -> Path:
    """``benchmarks/results/<benchmark>-<date>.json``."""
    return RESULTS / f"{benchmark}-{when.date().isoformat()}.json"


def raw_dir(benchmark: str, when: dt.datetime) -> Path:
    """A fresh directory under the git-ignored ``benchmarks/results/raw/``."""
    path = RAW / f"{benchmark}-{stamp(when)}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, payload: Mapping[str, Any], *, indent: int | None = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=indent, default=_json_default) + "\n")
    return path


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def display_path(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def versions(
    names: Sequence[str] = ("gunicorn", "hypercorn", "flask", "quart", "uvloop", "sqlalchemy"),
) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def server_configs() -> dict[str, dict[str, Any]]:
    """What the shipped config files give, read the way the servers read them."""
    gconf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    hconf = tomllib.loads((ROOT / "hypercorn.toml").read_text())
    return {
        "gunicorn": {
            "config": "gunicorn.conf.py",
            "worker_class": gconf.get("worker_class"),
            "workers": gconf.get("workers"),
            "threads": gconf.get("threads"),
        },
        "hypercorn": {
            "config": "hypercorn.toml",
            "worker_class": hconf.get("worker_class"),
            "workers": hconf.get("workers", 1),
        },
    }


def machine() -> dict[str, Any]:
    """CPUs, memory and load: what a reader needs to judge the figures."""
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "load_average": round(os.getloadavg()[0], 2),
        "platform": platform.platform(terse=True),
    }


class Workdir:
    """A temporary directory for databases and logs; removed afterwards unless ``keep``."""

    def __init__(self, prefix: str, *, keep: bool = False) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"tandem-{prefix}-"))
        self.keep = keep

    def log(self, name: str) -> Path:
        return self.path / f"{name}.log"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def wait_until(
    condition: Callable[[], bool], *, timeout: float, step: float = 0.05, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BenchmarkError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)
