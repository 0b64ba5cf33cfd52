"""The real ``tandem`` console script, run as a subprocess against a SQLite file."""

from __future__ import annotations

import asyncio
import os
import pty
import queue
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from harness.waiting import eventually_async

from tandem.cli import main
from tandem.core.errors import Forbidden, Unauthorized
from tandem.core.ids import decode_id
from tandem.core.runtime import Runtime
from tandem.core.schemas import ANONYMOUS, HistoryQuery, TokenCredentials
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
    for command in ("db", "prune", "publish", "subscribe", "user", "token", "access"):
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


# --- users, tokens and access ----------------------------------------------------------------

PASSWORD = "a-password-for-the-cli"
SUBCOMMANDS = (
    ("user", "add"),
    ("user", "remove"),
    ("user", "list"),
    ("user", "change-pass"),
    ("user", "change-role"),
    ("token", "add"),
    ("token", "list"),
    ("token", "remove"),
    ("access", "grant"),
    ("access", "revoke"),
    ("access", "list"),
    ("access", "reset"),
    ("subscribe",),
)


def _settings(cli: Cli, **overrides: Any) -> Settings:
    return Settings(_env_file=None, env="testing", database_url=cli.database_url, **overrides)


def test_identity_commands_have_help() -> None:
    # In-process: help text needs no database, and 13 interpreters would take a while.
    runner = CliRunner()
    helps = {}
    for args in SUBCOMMANDS:
        result = runner.invoke(main, [*args, "--help"], prog_name="tandem")
        assert result.exit_code == 0, (args, result.output)
        assert f"tandem {' '.join(args)}" in result.output
        helps[args] = result.output
    assert "USER|everyone PATTERN PERMISSION" in helps[("access", "grant")]
    assert "--role" in helps[("user", "add")]
    assert "--expires" in helps[("token", "add")]
    assert "--yes" in helps[("access", "reset")]
    assert "--since" in helps[("subscribe",)]


async def test_users_tokens_and_access_from_the_shell(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    with_password = {"TANDEM_PASSWORD": PASSWORD}
    assert "user root added (admin)" in cli.ok(
        "user", "add", "--role", "admin", "root", env=with_password
    )
    cli.ok("user", "add", "alice", env=with_password)
    listing = cli.ok("user", "list").splitlines()
    assert listing[0].split() == ["USER", "ROLE", "CREATED"]
    assert [line.split()[:2] for line in listing[1:]] == [["alice", "user"], ["root", "admin"]]

    # token add prints the token, alone, on stdout; and only there, once.
    added = cli("token", "add", "--label", "ci", "--expires", "30d", "alice")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert re.fullmatch(r"tk_[A-Za-z0-9_-]{32}", token)
    assert token[:9] in added.stderr
    assert token not in added.stderr
    tokens_out = cli.ok("token", "list")
    assert token not in tokens_out
    assert token[:9] in tokens_out
    assert "ci" in tokens_out

    cli.ok("access", "grant", "alice", "alerts-*", "read-write")
    cli.ok("access", "grant", "everyone", "public", "ro")
    rules = cli("access", "list")
    assert [line.split() for line in rules.stdout.splitlines()] == [
        ["USER", "PATTERN", "PERMISSION"],
        ["alice", "alerts-*", "read-write"],
        ["everyone", "public", "read-only"],
    ]
    assert "deny-all" not in rules.stderr  # testing: read-write by default
    assert "read-write" in rules.stderr

    # What the shell did, a server sees: the token works, and so do the rules.
    runtime = Runtime(_settings(cli, default_access="deny-all"))
    await runtime.start(follow=False)
    try:
        alice = await runtime.authenticate(TokenCredentials(token))
        assert alice.user == "alice"
        await runtime.authorize(alice, "alerts-disk", "write")
        with pytest.raises(Forbidden):
            await runtime.authorize(alice, "other", "read")
        root = await runtime.login("root", PASSWORD)
        assert root.is_admin
    finally:
        await runtime.stop()

    cli.ok("user", "change-pass", "alice", env={"TANDEM_PASSWORD": "another-password"})
    assert "alice is now an admin" in cli.ok("user", "change-role", "alice", "admin")
    assert "removed" in cli.ok("token", "remove", "alice", token[:9])
    cli.ok("access", "revoke", "everyone", "public")
    assert "removed 1 rule(s)" in cli.ok("access", "reset", "--yes")
    runtime = Runtime(_settings(cli))
    await runtime.start(follow=False)
    try:
        with pytest.raises(Unauthorized):
            await runtime.login("alice", PASSWORD)
        assert (await runtime.login("alice", "another-password")).is_admin
        with pytest.raises(Unauthorized):
            await runtime.authenticate(TokenCredentials(token))
        assert await runtime.access.list() == []
    finally:
        await runtime.stop()
    cli.ok("user", "remove", "alice")
    assert "alice" not in cli.ok("user", "list")


def test_bad_identity_input_exits_non_zero_with_a_clear_message(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    cli.ok("user", "add", "alice", env={"TANDEM_PASSWORD": PASSWORD})
    cases = [
        # (arguments, environment, exit status, what stderr says)
        (("user", "add", "bob"), {}, 2, "TANDEM_PASSWORD"),  # no terminal, no variable
        (("user", "add", "bad name"), {"TANDEM_PASSWORD": PASSWORD}, 2, "invalid user name"),
        (("user", "add", "everyone"), {"TANDEM_PASSWORD": PASSWORD}, 2, "reserved"),
        (("user", "add", "--role", "god", "bob"), {"TANDEM_PASSWORD": PASSWORD}, 2, "god"),
        (("user", "add", "alice"), {"TANDEM_PASSWORD": PASSWORD}, 1, "user 'alice' exists"),
        (("user", "remove", "nobody"), {}, 1, "no user 'nobody'"),
        (("user", "change-role", "alice", "god"), {}, 2, "god"),
        (("token", "add", "nobody"), {}, 1, "no user 'nobody'"),
        (("token", "add", "--expires", "soon", "alice"), {}, 2, "invalid expiry"),
        (("token", "remove", "alice", "tk_" + "x" * 32), {}, 1, "no such token"),
        (("access", "grant", "alice", "a b", "rw"), {}, 2, "invalid topic pattern"),
        (("access", "grant", "alice", "x", "maybe"), {}, 2, "invalid permission"),
        (("access", "grant", "nobody", "x", "rw"), {}, 1, "no user 'nobody'"),
        (("access", "revoke", "alice", "x"), {}, 1, "no rule"),
        (("access", "reset"), {}, 2, "--yes"),  # no terminal to confirm on
        (("subscribe", "bad topic!"), {}, 2, "invalid topic name"),
        (("subscribe", "alerts", "--since", "whenever"), {}, 2, "invalid since"),
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda case: cli(*case[0], env=case[1]), cases))
    for (args, _, status, says), result in zip(cases, results, strict=True):
        assert result.returncode == status, (args, result.stderr)
        assert says in result.stderr, (args, result.stderr)
        _no_traceback(result)
        assert PASSWORD not in result.stdout + result.stderr
        assert "x" * 32 not in result.stderr  # a token given is never repeated


def test_password_prompt_on_a_terminal(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    parent, child = pty.openpty()
    assert TANDEM is not None
    process = subprocess.Popen(
        [TANDEM, "user", "add", "carol"],
        cwd=cli.cwd,
        env=cli.env,
        stdin=child,
        stdout=child,
        stderr=child,
        start_new_session=True,
    )
    os.close(child)
    screen = _Screen(parent)
    try:
        screen.expect("Password")
        os.write(parent, b"first\n")
        screen.expect("Repeat the password")
        os.write(parent, b"different\n")
        screen.expect("Password")  # asked again after a mismatch
        os.write(parent, b"typed-twice\n")
        screen.expect("Repeat the password")
        os.write(parent, b"typed-twice\n")
        screen.expect("user carol added")
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(parent)
    assert "typed-twice" not in screen.text  # hidden input is not echoed
    assert "carol" in cli.ok("user", "list")


class _Screen:
    """What a program writes to a terminal, read until some text appears."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.text = ""

    def expect(self, wanted: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        start = len(self.text)
        while wanted not in self.text[start:]:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{wanted!r} not in {self.text!r}"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 1024)
                except OSError:  # the program ended and the terminal closed
                    chunk = b""
                assert chunk, f"{wanted!r} not in {self.text!r}"
                self.text += chunk.decode(errors="replace")


# --- subscribe -------------------------------------------------------------------------------


def test_subscribe_prints_messages_as_they_arrive_and_ends_on_ctrl_c(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    first = orjson.loads(cli.ok("publish", "alerts", "before"))
    polled = [orjson.loads(line) for line in cli.ok("subscribe", "alerts", "--poll").splitlines()]
    assert [msg["id"] for msg in polled] == [first["id"]]

    assert TANDEM is not None
    # Leaving the with block closes the pipes.
    with subprocess.Popen(
        [TANDEM, "subscribe", "alerts,other", "--since", "all"],
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            for line in process.stdout or ():
                lines.put(line)

        reader = threading.Thread(target=read)
        reader.start()
        try:
            # The stored message arrives first: from then on the subscription is live.
            assert orjson.loads(lines.get(timeout=TIMEOUT))["id"] == first["id"]
            second = orjson.loads(cli.ok("publish", "other", "after"))
            live = orjson.loads(lines.get(timeout=TIMEOUT))
            assert (live["id"], live["topic"], live["message"]) == (second["id"], "other", "after")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=TIMEOUT) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            reader.join(timeout=TIMEOUT)
        stderr = process.stderr.read() if process.stderr else ""
    assert "Traceback" not in stderr, stderr
    assert "Aborted" not in stderr


async def test_cli_changes_reach_a_running_server_within_about_a_second(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    runtime = Runtime(_settings(cli, default_access="deny-all"))  # auth_refresh: 1 s
    await runtime.start(follow=False)
    try:
        with pytest.raises(Unauthorized):
            await runtime.authorize(ANONYMOUS, "news", "read")
        await asyncio.to_thread(cli.ok, "access", "grant", "everyone", "news", "read-only")

        async def granted() -> bool:
            await runtime.authorize(ANONYMOUS, "news", "read")
            return True

        await eventually_async(
            granted, 10, what="the grant to take effect", ignoring=(Unauthorized,)
        )
    finally:
        await runtime.stop()
