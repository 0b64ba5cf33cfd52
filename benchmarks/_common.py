"""What every benchmark needs besides the harness: memory readings, percentiles, wrk,
result files, and the benchmark's servers.

Servers, databases and load clients come from the harness (:mod:`harness`), which the
tests share. Every server a benchmark starts runs from the repository root with the
shipped config files, in a session (process group) of its own, so that it can be
stopped whole and so that Ctrl-C in the terminal reaches the benchmark, not the server.
Every server and client process is stopped however the benchmark ends: normally, on an
error, on Ctrl-C, on SIGTERM/SIGHUP (see :func:`terminate_as_exit`), at interpreter
exit, and, if the benchmark itself is killed, by the kernel (``PR_SET_PDEATHSIG``).

    with terminate_as_exit(), Workdir("streams") as work:
        url = fresh_sqlite(work.path / "a.db", clean_env=True)
        env = {"TANDEM_DATABASE_URL": url}
        with bench_server("hypercorn", work=work, tag="h", env=env) as srv:
            print(vm_rss_kib(srv.pid))
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import re
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

from harness import databases
from harness.environment import server_env
from harness.errors import HarnessError
from harness.net import LOOPBACK
from harness.processes import REPO_ROOT, process_tree
from harness.serverprocess import Ready, ServerProcess
from harness.servers import ProcessOptions, gunicorn, hypercorn

ROOT = REPO_ROOT
HOST = LOOPBACK
BIN = Path(sys.prefix) / "bin"
RESULTS = Path(__file__).resolve().with_name("results")
RAW = RESULTS / "raw"  # git-ignored: logs, raw samples, tool reports
# The local PostgreSQL and Redis (scripts/services.sh), unless these variables say others.
POSTGRES_ADMIN_URL = os.environ.get("TANDEM_BENCH_POSTGRES", databases.POSTGRES_ADMIN_URL)
REDIS_URL = os.environ.get("TANDEM_BENCH_REDIS", databases.REDIS_URL)
LUA = Path(__file__).resolve().with_name("post.lua")


class BenchmarkError(HarnessError):
    """A measurement could not be made. Benchmarks catch :class:`HarnessError`, which
    also covers a server, database or load client of the harness that failed."""


# -- process hygiene ---------------------------------------------------------------------


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

BENCH_STOP_TIMEOUT = 15.0  # seconds a server gets to stop gracefully before SIGKILL


def bench_server(
    program: str,
    *,
    work: Workdir,
    tag: str,
    env: Mapping[str, str],
    app: str | None = None,
    args: Sequence[str] = (),
    name: str | None = None,
    ready: Ready | None = None,
    clean_env: bool = True,
    stop_timeout: float = BENCH_STOP_TIMEOUT,
) -> ServerProcess:
    """``program`` (gunicorn, hypercorn, uvicorn or granian) serving ``app`` on a free
    loopback port, not started; its log goes to ``work`` as ``<tag>-<port>.*.log``.

    ``env`` overrides :func:`~harness.environment.server_env`, without the caller's
    ``TANDEM_*`` unless ``clean_env`` is false; ``args`` go before the app. The server
    dies with the benchmark (``PR_SET_PDEATHSIG``): start it before any thread.
    """
    options: ProcessOptions = {
        "name": name or program,
        "log_dir": work.path,
        "log_name": tag,
        "ready": ready,
        "stop_timeout": stop_timeout,
        "die_with_parent": True,
    }
    if program == "gunicorn":
        return gunicorn(
            app=app or "wsgi:app",
            workers=None,  # the config's, unless args say -w N
            threads=None,
            env=env,
            clean_env=clean_env,
            extra_args=args,
            **options,
        )
    if program == "hypercorn":
        app = app or "asgi:app"
        return hypercorn(app=app, env=env, clean_env=clean_env, extra_args=args, **options)
    if program not in ("uvicorn", "granian"):
        raise ValueError(f"unknown server program {program!r}")
    binary, app = str(BIN / program), app or "asgi:app"

    def command(port: int) -> list[str]:
        # The reference points run without a config file: their defaults and ``args``
        # (granian's ``--interface``, say).
        return [binary, "--host", HOST, "--port", str(port), *args, app]

    return ServerProcess(command, env=server_env(env, clean=clean_env), **options)


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
