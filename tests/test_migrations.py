"""Alembic revisions: each upgrades and downgrades on SQLite and PostgreSQL, and the
schema they build is the one the models describe."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from tests.conftest import SettingsFactory

from tandem.core import migrate
from tandem.core.models import Base

IDENTITY_TABLES = {"users", "tokens", "access_rules"}


def _inspect(url: str) -> dict[str, Any]:
    """Tables, counters and the differences from the models, read through the app's driver."""

    def read(conn: Connection) -> dict[str, Any]:
        rows = conn.execute(text("SELECT name, value FROM counters")).all()
        counters: dict[str, int] = dict(rows)
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        return {"tables": set(inspect(conn).get_table_names()), "counters": counters, "diff": diff}

    async def main() -> dict[str, Any]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_identity_revision_upgrades_and_downgrades(
    database_url: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings(database_url=database_url)
    migrate.upgrade(settings, "0001")
    before = _inspect(database_url)
    assert not IDENTITY_TABLES & before["tables"]
    assert before["counters"] == {"messages": 0}

    migrate.upgrade(settings)
    head = _inspect(database_url)
    assert head["tables"] >= IDENTITY_TABLES
    assert head["counters"] == {"messages": 0, "identity": 0}
    assert head["diff"] == []  # the migrations build exactly what the models say

    migrate.downgrade(settings, "0001")
    down = _inspect(database_url)
    assert not IDENTITY_TABLES & down["tables"]
    assert down["counters"] == {"messages": 0}
    assert "messages" in down["tables"]

    migrate.upgrade(settings)  # and up again
    assert _inspect(database_url)["counters"] == {"messages": 0, "identity": 0}
