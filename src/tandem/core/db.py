"""The engine factory, and how write transactions run.

SQLite (the embedded default) gets WAL, a busy timeout and foreign keys. Its
write transactions run whole on one writer thread per process, through the
stdlib driver: one thread hop per transaction instead of one per statement, so
the database's single write lock is held only for the statements themselves.
Writers in different processes queue on an ``flock`` beside the database file,
which the kernel hands over the moment it is released; SQLite's own busy
handler would instead sleep and retry in growing steps (1, 2, 5, 10 ms ...).
``BEGIN IMMEDIATE`` and ``busy_timeout`` still guard against writers that do
not take the lock (another tool, an older Tandem).

PostgreSQL goes through asyncpg, and runs the same transaction bodies with
``run_sync``: one body of SQL for both databases.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from tandem.core.errors import Unavailable
from tandem.core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteBody = Callable[[Connection], T]


class Engines:
    """The async engine for reads, and the way this database runs write transactions."""

    def __init__(self, engine: AsyncEngine, sqlite_writer: SqliteWriter | None = None) -> None:
        self.read = engine
        self._sqlite_writer = sqlite_writer

    @property
    def dialect(self) -> str:
        return self.read.dialect.name

    async def run_write(self, body: WriteBody[T]) -> T:
        """Run ``body(connection)`` in one write transaction, committed when it returns."""
        if self._sqlite_writer is not None:
            return await self._sqlite_writer.run(body)
        async with self.read.begin() as conn:
            return await conn.run_sync(body)

    async def dispose(self) -> None:
        if self._sqlite_writer is not None:
            await asyncio.to_thread(self._sqlite_writer.close)
        await self.read.dispose()


def create_engines(settings: Settings) -> Engines:
    """Create the engines for ``settings.database_url``. Call it on the loop that will use them."""
    if settings.is_sqlite:
        return Engines(_sqlite_reader(settings), SqliteWriter(settings))
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
    )
    return Engines(engine)


def _configure_sqlite(engine: Engine, settings: Settings, begin: str) -> None:
    busy_ms = settings.sqlite_busy_timeout * 1000

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let us issue BEGIN ourselves: pysqlite's implicit transactions would
        # start writes as DEFERRED and fail with "database is locked" on upgrade.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)


def _sqlite_reader(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        connect_args={"timeout": settings.sqlite_busy_timeout},
    )
    _configure_sqlite(engine.sync_engine, settings, "BEGIN")
    return engine


class SqliteWriter:
    """Runs SQLite write transactions whole, one at a time, on a thread of its own."""

    def __init__(self, settings: Settings) -> None:
        url = make_url(settings.database_url).set(drivername="sqlite")
        self.engine = create_engine(
            url, pool_size=1, max_overflow=0, connect_args={"check_same_thread": False}
        )
        _configure_sqlite(self.engine, settings, "BEGIN IMMEDIATE")
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="tandem-sqlite-writer"
        )
        database = url.database or ""
        self._lock_path = f"{database}.write-lock" if database not in ("", ":memory:") else None
        self._lock_fd: int | None = None

    async def run(self, body: WriteBody[T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, body)

    def _transaction(self, body: WriteBody[T]) -> T:
        lock = self._lock()
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with self.engine.begin() as conn:
                return body(conn)
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _lock(self) -> int | None:
        if self._lock_fd is None and self._lock_path is not None:
            # Readable by whoever may write the database (the umask decides), so that
            # processes of one group can share it; flock needs no write access.
            self._lock_fd = os.open(self._lock_path, os.O_RDONLY | os.O_CREAT, 0o644)
        return self._lock_fd

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


@asynccontextmanager
async def database_errors() -> AsyncIterator[None]:
    """Turn a lost, locked or unmigrated database into :class:`Unavailable`."""
    # A lost or locked database is a 503 to the client, not a 500 with a traceback.
    try:
        yield
    except (OperationalError, DBAPIError, OSError) as exc:
        if _schema_missing(exc):
            log.error("database schema missing or out of date: run `tandem db upgrade`")
            raise Unavailable(
                "the database schema is missing or out of date: run `tandem db upgrade`"
            ) from exc
        log.warning("database unavailable: %s", type(exc).__name__)
        raise Unavailable("the database is unavailable, try again shortly", retry_after=5) from exc


def _schema_missing(exc: Exception) -> bool:
    # SQLite says "no such table", PostgreSQL "relation ... does not exist" (UndefinedTable).
    text = str(getattr(exc, "orig", exc))
    return "no such table" in text or ("relation" in text and "does not exist" in text)
