"""Databases for a test or a benchmark run: migrated SQLite files, PostgreSQL databases
made and dropped on the local server, and Redis key prefixes cleaned up afterwards.

Migrations run through the real ``tandem db upgrade``, as an operator runs them.
Migrating takes a second or more and copying a file does not, so :func:`copy_sqlite`
and :func:`fresh_sqlite` copy one migrated template.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.environment import server_env
from harness.errors import DatabaseError
from harness.processes import REPO_ROOT, executable
from harness.waiting import eventually_async

# The local servers (scripts/services.sh), shared with other runs: each run keeps to a
# database or a key prefix of its own.
POSTGRES_ADMIN_URL = os.environ.get("TANDEM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TANDEM_TEST_REDIS", "redis://127.0.0.1:6379/0")
MIGRATE_TIMEOUT = 120.0


def migrate(
    db_url: str,
    *,
    env: Mapping[str, str] | None = None,
    clean_env: bool = False,
    timeout: float = MIGRATE_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``tandem db upgrade`` on ``db_url``; raise with its output if it fails.

    ``env`` and ``clean_env`` as for a server (:func:`~harness.environment.server_env`).
    """
    result = subprocess.run(
        [executable("tandem"), "db", "upgrade"],
        cwd=REPO_ROOT,
        env=server_env({**(env or {}), "TANDEM_DATABASE_URL": db_url}, clean=clean_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise DatabaseError(
            f"tandem db upgrade exited with {result.returncode}\n{result.stdout}{result.stderr}"
        )
    return result


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def copy_sqlite(template: Path, target: Path) -> str:
    """Copy the migrated ``template`` to ``target``; return its database URL.

    No process may have the template open: its main file (and WAL, if any) is then the
    whole database.
    """
    shutil.copyfile(template, target)
    if Path(f"{template}-wal").exists():
        shutil.copyfile(f"{template}-wal", f"{target}-wal")
    return sqlite_url(target)


def fresh_sqlite(
    path: Path, *, migrated: bool = True, template: Path | None = None, clean_env: bool = False
) -> str:
    """A fresh SQLite database at ``path`` (any old one removed), migrated; its URL.

    With ``template``, the first call migrates that file and every call copies it.
    """
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not migrated:
        return sqlite_url(path)
    if template is None:
        migrate(sqlite_url(path), clean_env=clean_env)
        return sqlite_url(path)
    if not template.exists():
        migrate(sqlite_url(template), clean_env=clean_env)
    return copy_sqlite(template, path)


def run_coroutine(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` to its end in a private thread and event loop.

    Callers may be sync code inside a test whose event loop exists but is not running
    (a fixture's set-up): ``asyncio.run`` in a thread of its own stays clear of it.
    """
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="harness-admin")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


async def _postgres_admin(admin_url: str, statement: str) -> None:
    import asyncpg  # only PostgreSQL runs need it

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def postgres_admin(statement: str, *, admin_url: str = POSTGRES_ADMIN_URL) -> None:
    """Run one statement (``CREATE DATABASE``, say) as the administrator."""
    try:
        run_coroutine(_postgres_admin(admin_url, statement))
    except Exception as exc:
        raise DatabaseError(f"PostgreSQL ({admin_url}) refused {statement!r}: {exc}") from exc


@contextlib.contextmanager
def postgres_database(
    prefix: str = "tandem_test", *, admin_url: str = POSTGRES_ADMIN_URL, migrated: bool = False
) -> Iterator[str]:
    """A new PostgreSQL database (``migrated`` or empty), dropped afterwards; yields its
    URL (``postgresql+asyncpg://...``). A failed drop raises, unless the block did."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    postgres_admin(f'CREATE DATABASE "{name}"', admin_url=admin_url)
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    with _cleanup(lambda: postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')):
        if migrated:
            migrate(url)
        yield url


@contextlib.contextmanager
def redis_prefix(prefix: str = "tandem-test", *, url: str = REDIS_URL) -> Iterator[str]:
    """A unique key prefix (``TANDEM_REDIS_PREFIX``) in the Redis at ``url``; its keys are
    deleted afterwards. A failed clean-up raises, unless the block did."""
    value = f"{prefix}-{uuid.uuid4().hex[:12]}:"

    def delete_keys() -> None:
        from redis import Redis  # only runs with Redis need it

        client = Redis.from_url(url, socket_timeout=5)
        try:
            keys = list(client.scan_iter(match=f"{value}*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    with _cleanup(delete_keys):
        yield value


@contextlib.contextmanager
def _cleanup(clean: Callable[[], None]) -> Iterator[None]:
    """Run ``clean()`` after the block; its failure must not hide the block's own."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            clean()
        raise
    clean()


def redis_available(url: str = REDIS_URL) -> bool:
    """Whether the Redis at ``url`` answers a PING within two seconds."""
    try:
        from redis import Redis

        client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def redis_subscribers(channel: str, *, url: str = REDIS_URL) -> int:
    """How many clients listen on the Redis channel ``channel`` (``PUBSUB NUMSUB``)."""
    from redis import Redis

    client = Redis.from_url(url, socket_timeout=1)
    try:
        [(_, count)] = client.pubsub_numsub(channel)
        return int(count)
    finally:
        client.close()


async def wait_redis_subscribers(
    channel: str, count: int, *, url: str = REDIS_URL, timeout: float = 20.0
) -> None:
    """Wait until at least ``count`` clients listen on the Redis channel ``channel``."""

    async def enough() -> bool:
        return await asyncio.to_thread(redis_subscribers, channel, url=url) >= count

    await eventually_async(
        enough, timeout, what=f"{count} subscribers on the Redis channel {channel!r}"
    )
