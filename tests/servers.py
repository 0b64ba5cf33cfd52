"""The pytest layer over the harness's servers: fixtures, a leak guard, log tails.

The servers themselves, databases and stream clients live in the :mod:`harness`
package, which the benchmarks share; import them from there. This module is a pytest
plugin (``tests/conftest.py`` registers it), so its fixtures are available to every
test module:

- ``server_pool``: a :class:`~harness.servers.ServerPool` whose servers log under the
  test's ``tmp_path`` and are stopped after the test; the log tails of the servers a
  failed test started (and of those still running that it may have shared, from
  module-scoped fixtures) are added to its report;
- ``sqlite_template`` and ``migrated_sqlite_url``: a SQLite file of the test's own,
  copied from one migrated once per session (migrating takes seconds; copying does not);
- ``split_plane``: nginx with ``deploy/nginx.conf`` in front of both doors;
- ``chromium``: Debian's Chromium through Playwright (sync API).

A test must stop every server it starts: the leak guard stops and reports any left.
The names below are also re-exported for test modules that still import them from
here (``from tests.servers import gunicorn``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from harness.databases import copy_sqlite, migrate, sqlite_url
from harness.environment import server_env
from harness.errors import ServerError
from harness.net import LOOPBACK, free_port
from harness.nginx import NginxProcess, SplitPlane, nginx, start_split_plane
from harness.processes import REPO_ROOT, executable
from harness.serverprocess import (
    HEALTH_PATH,
    ServerProcess,
    live_servers,
    servers_started,
    stop_all,
)
from harness.servers import (
    Doors,
    ServerPool,
    assert_no_tracebacks,
    closing_pool,
    gunicorn,
    hypercorn,
    serve_doors,
    serving,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = [
    "HEALTH_PATH",
    "LOOPBACK",
    "REPO_ROOT",
    "Doors",
    "NginxProcess",
    "ServerError",
    "ServerPool",
    "ServerProcess",
    "SplitPlane",
    "assert_no_tracebacks",
    "closing_pool",
    "copy_sqlite",
    "executable",
    "free_port",
    "gunicorn",
    "hypercorn",
    "live_servers",
    "migrate",
    "nginx",
    "serve_doors",
    "server_env",
    "serving",
    "start_split_plane",
    "stop_all",
]

_FIRST_STARTED = pytest.StashKey[int]()


def chromium_executable() -> str:
    """Debian's Chromium, which Playwright drives (``playwright install`` is never run)."""
    found = shutil.which("chromium")
    if found is None:
        raise ServerError("Debian's chromium is not installed: run scripts/system-packages.sh")
    return found


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file that the real ``tandem db upgrade`` migrated, once per session.
    Copy it (:func:`~harness.databases.copy_sqlite`) rather than use it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "tandem.db"
    migrate(sqlite_url(path))
    return path


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
    request.node.stash[_FIRST_STARTED] = len(servers_started())
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
        started, live = servers_started(), live_servers()
        shared = [server for server in started[:first] if server in live]
        for server in [*shared, *started[first:]]:
            report.sections.append((f"server {server.name} {server.url}", server.log_tail()))
    return report
