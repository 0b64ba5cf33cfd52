"""The server matrix of ``python -m benchmarks run``: which server serves which app, how.

Tandem's own two front doors run with their shipped config files; the reference
points (uvicorn, granian) run with their defaults plus an access log, since
Tandem's servers write one too. Every server gets ``workers`` processes (the core
count, unless a scenario says otherwise). A server whose package does not import
is skipped, and the run records why.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Mapping, Sequence

from harness.serverprocess import Ready, ServerProcess

from benchmarks._common import BIN, Workdir, bench_server

HELLO_APPS = {"wsgi": "benchmarks.apps:flask_hello", "asgi": "benchmarks.apps:quart_hello"}
TANDEM_APPS = {"wsgi": "wsgi:app", "asgi": "asgi:app"}


@dataclasses.dataclass(frozen=True)
class ServerSpec:
    """One column of the matrix."""

    key: str  # stable id in results and plots: "gunicorn-sync"
    label: str  # for tables and legends: "gunicorn sync"
    door: str  # "wsgi" (Flask app) or "asgi" (Quart app)
    program: str  # the console script in the venv
    modules: tuple[str, ...]  # what must import for it to run
    args: tuple[str, ...] = ()  # extra command-line arguments
    reference: bool = False  # a reference point, not one of Tandem's documented doors
    single_process: bool = False  # ignore ``workers``: one process (hypercorn's shipped config)
    note: str = ""  # how it is configured, for the report

    def missing(self) -> str | None:
        """Why it cannot run here, or None."""
        for module in self.modules:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (pip install -e '.[bench]')"
        if not (BIN / self.program).exists():
            return f"{BIN / self.program} not found"
        return None

    def app(self, workload: str) -> str:
        """The app this server serves for ``workload`` ("hello" or a Tandem route)."""
        return HELLO_APPS[self.door] if workload == "hello" else TANDEM_APPS[self.door]

    def processes(self, workers: int) -> int:
        return 1 if self.single_process else workers

    def start(
        self,
        app: str,
        *,
        workers: int,
        env: Mapping[str, str],
        work: Workdir,
        tag: str,
        ready: Ready | None = None,
    ) -> ServerProcess:
        """This server on a free loopback port, not started; its log in ``work``."""
        extra: list[str] = list(self.args)
        if self.program == "gunicorn":
            extra += ["-w", str(workers)]
        elif self.program == "hypercorn":
            if not self.single_process:
                extra += ["-w", str(workers)]
        elif self.program == "uvicorn":
            extra += ["--workers", str(workers)]
        elif self.program == "granian":
            interface = "wsgi" if self.door == "wsgi" else "asgi"
            extra += ["--interface", interface, "--workers", str(workers), "--access-log"]
        else:
            raise ValueError(f"unknown server program {self.program!r}")
        name = f"{self.label} {app}"  # what its error messages call it
        return bench_server(
            self.program, work=work, tag=tag, env=env, app=app, args=extra, name=name, ready=ready
        )

    def describe(self, workers: int) -> dict[str, object]:
        return {
            "label": self.label,
            "door": self.door,
            "reference": self.reference,
            "processes": self.processes(workers),
            "note": self.note,
        }


MATRIX: tuple[ServerSpec, ...] = (
    ServerSpec(
        "gunicorn-sync",
        "gunicorn sync",
        "wsgi",
        "gunicorn",
        ("gunicorn",),
        # gunicorn turns sync into gthread when threads > 1; the shipped config says 8.
        args=("-k", "sync", "--threads", "1"),
        note="gunicorn.conf.py with -k sync --threads 1: one request at a time per process",
    ),
    ServerSpec(
        "gunicorn-gthread",
        "gunicorn gthread",
        "wsgi",
        "gunicorn",
        ("gunicorn",),
        note="gunicorn.conf.py as shipped: gthread, 8 threads per process",
    ),
    ServerSpec(
        "hypercorn-asyncio",
        "hypercorn asyncio",
        "asgi",
        "hypercorn",
        ("hypercorn",),
        args=("-k", "asyncio"),
        note="hypercorn.toml with -k asyncio -w N: the stdlib event loop",
    ),
    ServerSpec(
        "hypercorn-uvloop",
        "hypercorn uvloop",
        "asgi",
        "hypercorn",
        ("hypercorn", "uvloop"),
        note="hypercorn.toml with -w N: uvloop, as shipped",
    ),
    ServerSpec(
        "uvicorn",
        "uvicorn",
        "asgi",
        "uvicorn",
        ("uvicorn",),
        reference=True,
        note="defaults (uvloop and httptools where installed), access log on",
    ),
    ServerSpec(
        "granian-asgi",
        "granian (Quart)",
        "asgi",
        "granian",
        ("granian",),
        reference=True,
        note="--interface asgi, defaults, access log on",
    ),
    ServerSpec(
        "granian-wsgi",
        "granian (Flask)",
        "wsgi",
        "granian",
        ("granian",),
        reference=True,
        note="--interface wsgi, defaults (a pool of blocking threads), access log on",
    ),
)

# Scenarios 2 and 3 add hypercorn as shipped (workers = 0: one process, one event loop).
HYPERCORN_ONE = ServerSpec(
    "hypercorn-1proc",
    "hypercorn uvloop, 1 process",
    "asgi",
    "hypercorn",
    ("hypercorn", "uvloop"),
    single_process=True,
    note="hypercorn.toml exactly as shipped: workers = 0, one process, one event loop",
)

BY_KEY = {spec.key: spec for spec in (*MATRIX, HYPERCORN_ONE)}
QUICK_SERVERS = ("gunicorn-gthread", "hypercorn-uvloop")


def select(keys: Sequence[str]) -> list[ServerSpec]:
    return [BY_KEY[key] for key in keys]


def default_workers() -> int:
    return os.cpu_count() or 1
