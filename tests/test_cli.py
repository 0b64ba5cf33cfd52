"""The real ``tandem`` console script, run as a subprocess against a SQLite file."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest

from tandem.core.ids import decode_id
from tandem.core.runtime import Runtime
from tandem.core.schemas import HistoryQuery
from tandem.core.settings import Settings

_BIN = Path(sys.executable).parent
TANDEM = shutil.which("tandem", path=str(_BIN)) or shutil.which("tandem")
TIMEOUT = 60

pytestmark = pytest.mark.skipif(TANDEM is None, reason="the tandem console script is not installed")


class Cli:
    """Runs ``tandem`` in ``cwd`` with a clean TANDEM_* environment."""

    def __init__(self, tmp_path: Path) -> None:
        self.cwd = tmp_path
        self.db_path = tmp_path / "cli.db"
        self.database_url = f"sqlite+aiosqlite:///{self.db_path}"
        env = {key: value for key, value in os.environ.items() if not key.startswith("TANDEM_")}
        env.update({"TANDEM_ENV": "testing", "TANDEM_DATABASE_URL": self.database_url})
        self.env = env

    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        assert TANDEM is not None
        return subprocess.run(
            [TANDEM, *args],
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def ok(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        result = self(*args, env=env)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def many(self, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
        """Run independent commands side by side (each one pays the interpreter start-up)."""
        with ThreadPoolExecutor(max_workers=len(commands)) as pool:
            return list(pool.map(lambda args: self(*args), commands))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


def test_help(cli: Cli) -> None:
    top, publish = cli.many(("--help",), ("publish", "-h"))
    for result in (top, publish):
        assert result.returncode == 0, result.stderr
    for command in ("db", "prune", "publish"):
        assert command in top.stdout
    for option in ("--priority", "--tags", "--title", "--click", "--no-cache"):
        assert option in publish.stdout
    assert "TOPIC" in publish.stdout
    assert "MESSAGE" in publish.stdout


async def test_upgrade_publish_and_prune(cli: Cli) -> None:
    # db upgrade, twice: the second run changes nothing.
    for _ in range(2):
        result = cli("db", "upgrade")
        assert result.returncode == 0, result.stderr
        assert "database at revision head" in result.stderr
    with sqlite3.connect(cli.db_path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        (counter,) = conn.execute(
            "SELECT COUNT(*) FROM counters WHERE name = 'messages'"
        ).fetchone()
    assert {"messages", "counters", "alembic_version"} <= tables
    assert counter == 1  # the counter was not seeded twice

    # publish prints the stored message as JSON.
    out = cli.ok(
        "publish",
        "alerts",
        "disk full",
        "-p",
        "high",
        "--tags",
        "a,b",
        "--title",
        "host1",
        "--click",
        "https://example.com",
    )
    first = orjson.loads(out)
    assert first["event"] == "message"
    assert (first["topic"], first["message"], first["title"]) == ("alerts", "disk full", "host1")
    assert (first["priority"], first["tags"], first["click"]) == (
        4,
        ["a", "b"],
        "https://example.com",
    )
    assert first["expires"] > first["time"]
    second = orjson.loads(cli.ok("publish", "alerts", "second", "--priority", "2"))
    assert decode_id(second["id"]) > decode_id(first["id"])  # type: ignore[operator]
    assert "title" not in second
    assert "tags" not in second

    # History holds both, in order.
    settings = Settings(_env_file=None, env="testing", database_url=cli.database_url)
    runtime = Runtime(settings)
    await runtime.start()
    try:
        stored = await runtime.history(HistoryQuery(topics=("alerts",)))
    finally:
        await runtime.stop()
    assert [msg.id for msg in stored] == [first["id"], second["id"]]
    assert (stored[0].tags, stored[0].priority) == (("a", "b"), 4)

    # prune removes only what has expired: with no retention, a message expires at once.
    instant = {"TANDEM_CACHE_DURATION": "0s"}
    cli.ok("publish", "alerts", "gone soon", env=instant)
    assert cli.ok("prune", env=instant).strip() == "pruned 1 expired message(s)"
    assert cli.ok("prune", env=instant).strip() == "pruned 0 expired message(s)"
    with sqlite3.connect(cli.db_path) as conn:
        (left,) = conn.execute("SELECT COUNT(*) FROM messages").fetchone()
    assert left == 2


def test_bad_input_exits_non_zero_with_a_clear_message(cli: Cli) -> None:
    bad_topic, bad_priority = cli.many(
        ("publish", "no spaces!", "hello"),
        ("publish", "alerts", "hello", "-p", "loud"),
    )
    for result in (bad_topic, bad_priority):
        assert result.returncode != 0
        _no_traceback(result)
    assert "invalid topic name" in bad_topic.stderr
    assert "invalid priority" in bad_priority.stderr


def test_production_without_secret_key_is_refused(cli: Cli) -> None:
    production = {"TANDEM_ENV": "production"}
    for args in (("db", "upgrade"), ("publish", "alerts", "hi")):
        result = cli(*args, env=production)
        assert result.returncode != 0, args
        assert "TANDEM_SECRET_KEY" in result.stderr, (args, result.stderr)
        _no_traceback(result)
    assert not cli.db_path.exists()  # refused before touching the database


def test_publish_without_schema_fails_cleanly(cli: Cli) -> None:
    result = cli("publish", "alerts", "hello")
    assert result.returncode != 0
    # An operator is told what to do, not that the database is "unavailable".
    assert "tandem db upgrade" in result.stderr
    _no_traceback(result)


def test_publish_parses_like_an_http_publish(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    empty = orjson.loads(cli.ok("publish", "alerts", ""))
    assert empty["message"] == "triggered"
    too_long = cli("publish", "alerts", "x" * 5000)
    assert too_long.returncode != 0
    assert "too large" in too_long.stderr
    _no_traceback(too_long)
