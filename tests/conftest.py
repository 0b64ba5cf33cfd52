"""Shared fixtures: databases (SQLite file or a fresh PostgreSQL database per test),
a Redis key prefix per test, settings, a started runtime, both apps, and a client
factory for the parity suite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from asgiref.wsgi import WsgiToAsgi
from harness import databases
from harness.databases import REDIS_URL as REDIS_URL

from tandem.core import migrate
from tandem.core.ids import encode_id
from tandem.core.runtime import Runtime
from tandem.core.schemas import Message
from tandem.core.settings import Settings
from tandem.flask_app import create_app as create_flask_app
from tandem.quart_app import create_app as create_quart_app

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Real server processes on loopback: the server_pool fixture, the leak guard, log tails.
pytest_plugins = ["tests.servers"]

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'tandem.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    with databases.postgres_database("tandem_test") as url:
        yield url


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in the real Redis (:data:`REDIS_URL`, shared with
    other tests and runs); its keys are deleted afterwards."""
    with databases.redis_prefix("tandem-test") as prefix:
        yield prefix


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that uses this runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def make_settings(sqlite_url: str) -> SettingsFactory:
    """Build test settings; keyword arguments override (``database_url=...``).

    Abuse limits are off unless a test turns them on (``rate_limits=True``):
    suites that publish hundreds of messages from one address test other things.
    """

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "testing",
            "database_url": sqlite_url,
            "rate_limits": False,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return factory


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    """Settings on a migrated SQLite file."""
    value = make_settings()
    migrate.upgrade(value)
    return value


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime(settings)
    await rt.start()
    yield rt
    await rt.stop()


def closing_body(app: WSGIApplication) -> WSGIApplication:
    """``app``, with each response body closed once the server is done with it.

    PEP 3333 asks the server to call the body's ``close()``; asgiref's WsgiToAsgi does
    not, and a static file's body would stay open until the garbage collector found it.
    """

    def closing(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        body = app(environ, start_response)
        try:
            yield from body
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return closing


@asynccontextmanager
async def serving(door: str, settings: Settings) -> AsyncIterator[tuple[object, object]]:
    """Build one door's app, run its start-up and shut-down, and yield (app, asgi app)."""
    if door == "flask":
        flask = create_flask_app(settings)
        try:
            asgi = WsgiToAsgi(closing_body(flask))  # type: ignore[no-untyped-call]  # unannotated
            yield flask, asgi
        finally:
            # The portal's close blocks on its loop thread: keep it off this loop.
            await asyncio.to_thread(flask.extensions["tandem"].close)
    else:
        quart = create_quart_app(settings)
        await quart.startup()
        try:
            yield quart, quart
        finally:
            await quart.shutdown()


@pytest.fixture(params=["flask", "quart"])
async def app(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[object]:
    """One door's app, started; a test that uses it runs against both doors."""
    async with serving(request.param, settings) as (application, _):
        yield application


@pytest.fixture(params=["flask", "quart"])
async def client(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for one door; a test that uses it runs against both doors."""
    async with serving(request.param, settings) as (_, asgi):
        transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://tandem.test") as c:
            c.door = request.param  # type: ignore[attr-defined]
            yield c


# --- a hand-moved clock and a runtime on it (core tests on both databases) -----------------

CLOCK_START = 1_700_000_000


def make_message(
    seq: int = 1, text: str = "hello", *, topic: str = "alerts", **options: object
) -> Message:
    """A message as the store hands it out, for tests that need one without a database."""
    return Message(
        id=encode_id(seq),
        seq=seq,
        time=1_700_000_000,
        expires=1_700_043_200,
        topic=topic,
        message=text,
        **options,  # type: ignore[arg-type]
    )


CACHE_SECONDS = 3600


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: int = CLOCK_START) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_settings(database_url: str, make_settings: SettingsFactory) -> Settings:
    """Migrated settings on each database, messages kept for :data:`CACHE_SECONDS`."""
    value = make_settings(database_url=database_url, cache_duration=CACHE_SECONDS)
    migrate.upgrade(value)
    return value


@pytest.fixture
async def rt(db_settings: Settings, clock: Clock) -> AsyncIterator[Runtime]:
    """A started runtime on :func:`db_settings`, on the hand-moved :func:`clock`."""
    runtime = Runtime(db_settings, clock=clock)
    await runtime.start()
    yield runtime
    await runtime.stop()
