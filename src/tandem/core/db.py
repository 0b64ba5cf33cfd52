"""The engine factory.

SQLite (the embedded default) gets WAL, a busy timeout, foreign keys and
``BEGIN IMMEDIATE`` for write transactions, so that several processes can write
one file without "database is locked". PostgreSQL goes through asyncpg.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from tandem.core.settings import Settings

# Execution option that marks an engine whose transactions write.
WRITE = "tandem_write"


class Engines:
    """A reader and a writer view of one connection pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.read = engine
        self.write = engine.execution_options(**{WRITE: True})

    @property
    def dialect(self) -> str:
        return self.read.dialect.name

    async def dispose(self) -> None:
        await self.read.dispose()


def create_engines(settings: Settings) -> Engines:
    """Create the engines for ``settings.database_url``. Call it on the loop that will use them."""
    if settings.is_sqlite:
        return Engines(_sqlite_engine(settings))
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
    )
    return Engines(engine)


def _sqlite_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        connect_args={"timeout": settings.sqlite_busy_timeout},
    )
    busy_ms = settings.sqlite_busy_timeout * 1000

    @event.listens_for(engine.sync_engine, "connect")
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

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writes = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine
