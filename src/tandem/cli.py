"""The ``tandem`` command: database, retention and publishing from a shell."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from pydantic import ValidationError

from tandem.core.errors import TandemError
from tandem.core.runtime import Runtime
from tandem.core.settings import Settings
from tandem.protocol.encode import message_json
from tandem.protocol.publish import parse_publish

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise click.ClickException(f"invalid configuration: {errors}") from None


def _run(fn: Callable[[Runtime], Awaitable[T]]) -> T:
    async def main() -> T:
        runtime = Runtime(_settings())
        await runtime.start(follow=False)
        try:
            return await fn(runtime)
        finally:
            await runtime.stop()

    try:
        return asyncio.run(main())
    except TandemError as exc:
        raise click.ClickException(exc.message) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Tandem, a real-time topic hub. Configure it with TANDEM_* variables or .env."""


@main.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Create or migrate the schema of TANDEM_DATABASE_URL."""
    from tandem.core import migrate  # alembic is slow to import; only this command needs it

    settings = _settings()
    migrate.upgrade(settings, revision)
    click.echo(f"database at revision {revision}", err=True)


@main.command()
def prune() -> None:
    """Delete expired messages (each expires TANDEM_CACHE_DURATION after it was published)."""
    removed = _run(lambda rt: rt.prune())
    click.echo(f"pruned {removed} expired message(s)")


@main.command()
@click.argument("topic")
@click.argument("message")
@click.option("--title", "-t", help="Message title.")
@click.option("--priority", "-p", help="1-5 or min, low, default, high, max, urgent.")
@click.option("--tags", help="Comma-separated tags.")
@click.option("--click", "click_url", help="URL to open when the notification is clicked.")
@click.option("--no-cache", is_flag=True, help="Deliver live only; do not store.")
def publish(
    topic: str,
    message: str,
    title: str | None,
    priority: str | None,
    tags: str | None,
    click_url: str | None,
    no_cache: bool,
) -> None:
    """Publish MESSAGE to TOPIC and print the published message as JSON.

    MESSAGE goes through the same parsing as an HTTP publish: the same limits,
    and an empty MESSAGE becomes "triggered".
    """
    settings = _settings()
    options = {"title": title, "priority": priority, "tags": tags, "click": click_url}
    query = {name: value for name, value in options.items() if value is not None}
    if no_cache:
        query["cache"] = "no"
    try:
        new = parse_publish(topic, {}, query, message.encode(), max_body=settings.max_body)
    except TandemError as exc:
        raise click.BadParameter(exc.message) from None
    msg = _run(lambda rt: rt.publish(new))
    sys.stdout.buffer.write(message_json(msg) + b"\n")
