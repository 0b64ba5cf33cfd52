"""Tandem's two doors as real servers on loopback: gunicorn and hypercorn, with the
shipped config files, and the ways to start several and stop them all.

    from harness.databases import migrate
    from harness.servers import gunicorn, hypercorn, serving

    migrate(db_url)                                  # the real `tandem db upgrade`
    with serving(gunicorn(db_url), hypercorn(db_url)) as (wsgi, asgi):
        with httpx.Client(trust_env=False) as http:  # no proxy between us and loopback
            http.post(f"{wsgi.url}/alerts", content="hi")
            http.get(f"{asgi.url}/alerts/json?poll=1")

:func:`gunicorn` and :func:`hypercorn` make a :class:`~harness.serverprocess.ServerProcess`
that is not started yet. ``serving`` boots several at once and always stops all of
them; a :class:`ServerPool` does the same for servers started one group at a time, and
:func:`serve_doors` starts both doors on one database and checks that they exit cleanly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

from harness.environment import server_env
from harness.net import LOOPBACK
from harness.processes import executable
from harness.serverprocess import Ready, ServerProcess, stop_all


class ProcessOptions(TypedDict, total=False):
    """What a builder passes on to :class:`~harness.serverprocess.ServerProcess`."""

    name: str
    port: int | None
    log_dir: Path | str | None
    log_name: str | None
    ready: Ready | None
    stop_timeout: float
    die_with_parent: bool


def gunicorn(
    db_url: str | None = None,
    *,
    app: str = "wsgi:app",
    workers: int | None = 2,
    threads: int | None = 4,
    env: Mapping[str, str] | None = None,
    clean_env: bool = False,
    extra_args: Sequence[str] = (),
    **options: Unpack[ProcessOptions],
) -> ServerProcess:
    """``gunicorn -c gunicorn.conf.py -b 127.0.0.1:PORT APP`` on ``db_url``, not started.

    ``workers`` and ``threads`` go through ``TANDEM_WORKERS`` and ``TANDEM_THREADS``
    (``None``: the config's own); ``env`` overrides the rest of :func:`server_env`
    (``clean_env``: without the caller's ``TANDEM_*``). ``extra_args`` go before ``APP``
    (for example ``["--graceful-timeout", "5"]``).
    """
    binary = executable("gunicorn")
    overrides = {
        **({"TANDEM_DATABASE_URL": db_url} if db_url is not None else {}),
        **({"TANDEM_WORKERS": str(workers)} if workers is not None else {}),
        **({"TANDEM_THREADS": str(threads)} if threads is not None else {}),
        **(env or {}),
    }
    args = list(extra_args)
    options.setdefault("name", "gunicorn")
    return ServerProcess(
        lambda p: [binary, "-c", "gunicorn.conf.py", "-b", f"{LOOPBACK}:{p}", *args, app],
        env=server_env(overrides, clean=clean_env),
        **options,
    )


def hypercorn(
    db_url: str | None = None,
    *,
    app: str = "asgi:app",
    workers: int | None = None,
    env: Mapping[str, str] | None = None,
    clean_env: bool = False,
    extra_args: Sequence[str] = (),
    **options: Unpack[ProcessOptions],
) -> ServerProcess:
    """``hypercorn -c hypercorn.toml -b 127.0.0.1:PORT APP`` on ``db_url``, not started.

    ``workers`` replaces the config's (``-w N``); ``env`` and ``clean_env`` as for
    :func:`gunicorn`; ``extra_args`` go before ``APP``.
    """
    binary = executable("hypercorn")
    args = [*(["-w", str(workers)] if workers is not None else []), *extra_args]
    overrides = {**({"TANDEM_DATABASE_URL": db_url} if db_url is not None else {}), **(env or {})}
    options.setdefault("name", "hypercorn")
    return ServerProcess(
        lambda p: [binary, "-c", "hypercorn.toml", "-b", f"{LOOPBACK}:{p}", *args, app],
        env=server_env(overrides, clean=clean_env),
        **options,
    )


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


def start_doors(
    pool: ServerPool,
    db_url: str,
    *,
    env: Mapping[str, str] | None = None,
    workers: int = 2,
    threads: int = 4,
) -> Doors:
    """Start gunicorn and hypercorn on ``db_url`` (migrated) with ``env`` in ``pool``."""
    wsgi, asgi = pool.start(
        gunicorn(db_url, workers=workers, threads=threads, env=env), hypercorn(db_url, env=env)
    )
    return Doors(wsgi, asgi)


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
        yield start_doors(pool, db_url, env=env, workers=workers, threads=threads)
