"""The ``tandem`` command: database, retention, publishing, subscribing, users and access."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import click
from pydantic import ValidationError

from tandem.core.errors import InvalidInput, TandemError
from tandem.core.identity.validation import (
    ROLES,
    validate_lifetime,
    validate_owner,
    validate_password,
    validate_pattern,
    validate_permission,
    validate_user_name,
)
from tandem.core.runtime import Runtime
from tandem.core.schemas import HistoryQuery, Message, MessageFilter, Since
from tandem.core.settings import Settings
from tandem.protocol.encode import message_json
from tandem.protocol.publish import parse_publish
from tandem.protocol.subscribe import parse_since
from tandem.protocol.topics import parse_topics

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise click.ClickException(f"invalid configuration: {errors}") from None


def _run(fn: Callable[[Runtime], Awaitable[T]], *, follow: bool = False) -> T:
    async def main() -> T:
        runtime = Runtime(_settings())
        await runtime.start(follow=follow)
        try:
            return await fn(runtime)
        finally:
            await runtime.stop()

    try:
        return asyncio.run(main())
    except InvalidInput as exc:
        raise click.UsageError(exc.message) from None
    except TandemError as exc:
        raise click.ClickException(exc.message) from None


def _checked(
    validate: Callable[[str], object],
) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """A click callback that runs a core validator and reports its message as a bad parameter."""

    def callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is None:  # an optional argument left out
            return None
        try:
            validate(value)
        except TandemError as exc:
            raise click.BadParameter(exc.message) from None
        return value

    return callback


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


@main.command()
@click.argument("topics", metavar="TOPIC")
@click.option(
    "--since",
    help="Where to start: all, latest, none, a duration (10m), a unix time or a message id. "
    "Default: none, or all with --poll.",
)
@click.option("--poll", is_flag=True, help="Print the stored messages and exit.")
def subscribe(topics: str, since: str | None, poll: bool) -> None:
    """Print the messages of TOPIC as JSON lines as they arrive, until Ctrl-C.

    TOPIC may be a comma-separated list (alerts,backups).
    """
    try:
        names = parse_topics(topics)
    except TandemError as exc:
        raise click.BadParameter(exc.message, param_hint="TOPIC") from None
    try:
        start = parse_since(since or ("all" if poll else "none"), now=int(time.time()))
    except TandemError as exc:
        raise click.BadParameter(exc.message, param_hint="--since") from None
    try:
        if poll:
            _run(lambda rt: _poll(rt, names, start))
        else:
            _run(lambda rt: _follow(rt, names, start), follow=True)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a subscription ends
    except BrokenPipeError:
        # The reader went away (`| head -1`): stop quietly, and keep Python's
        # final flush of stdout from failing again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


async def _poll(rt: Runtime, topics: tuple[str, ...], since: Since) -> None:
    _print_messages(await rt.history(HistoryQuery(topics, since)))


async def _follow(rt: Runtime, topics: tuple[str, ...], since: Since) -> None:
    stream = rt.open_stream(topics, since, MessageFilter())
    try:
        async for batch in stream.batches():
            _print_messages(
                [event.envelope.message for event in batch if event.envelope is not None]
            )
            for event in batch:
                if event.kind == "gap":
                    click.echo(f"gap: {event.detail}", err=True)
                elif event.kind == "close":
                    raise click.ClickException(f"subscription closed: {event.detail}")
    finally:
        stream.close()


def _print_messages(messages: Sequence[Message]) -> None:
    if messages:
        sys.stdout.buffer.write(b"".join(message_json(msg) + b"\n" for msg in messages))
        sys.stdout.buffer.flush()


# --- users ---------------------------------------------------------------------------------

PASSWORD_VARIABLE = "TANDEM_PASSWORD"  # noqa: S105  (the name of a variable)


def _new_password() -> str:
    """The password from TANDEM_PASSWORD, or asked twice on a terminal."""
    password = os.environ.get(PASSWORD_VARIABLE)
    if not password:
        if not sys.stdin.isatty():
            raise click.UsageError(
                f"no password: set {PASSWORD_VARIABLE}, or run on a terminal to be asked for one"
            )
        password = str(
            click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
        )
    try:
        return validate_password(password)
    except TandemError as exc:
        raise click.UsageError(exc.message) from None


def _when(value: int | None, none: str = "never") -> str:
    if value is None:
        return none
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)
    ]
    for row in (headers, *rows):
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@main.group()
def user() -> None:
    """Manage users. Passwords come from TANDEM_PASSWORD, or are asked for on a terminal."""


@user.command("add")
@click.argument("name", callback=_checked(validate_user_name))
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="user",
    show_default=True,
    help="An admin may do everything.",
)
def user_add(name: str, role: str) -> None:
    """Add the user NAME, with the password from TANDEM_PASSWORD or typed twice."""
    password = _new_password()
    added = _run(lambda rt: rt.users.add(name, password, role))
    click.echo(f"user {added.name} added ({added.role})")


@user.command("remove")
@click.argument("name")
def user_remove(name: str) -> None:
    """Remove the user NAME, with its tokens and access rules."""
    _run(lambda rt: rt.users.remove(name))
    click.echo(f"user {name} removed")


@user.command("list")
def user_list() -> None:
    """List users and their roles."""
    users = _run(lambda rt: rt.users.list())
    _table(("USER", "ROLE", "CREATED"), [(u.name, u.role, _when(u.created)) for u in users])


@user.command("change-pass")
@click.argument("name")
def user_change_pass(name: str) -> None:
    """Set a new password for NAME; its web sessions end."""
    password = _new_password()
    _run(lambda rt: rt.users.change_password(name, password))
    click.echo(f"password of {name} changed")


@user.command("change-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
def user_change_role(name: str, role: str) -> None:
    """Make NAME an admin or a user; its web sessions end."""
    _run(lambda rt: rt.users.change_role(name, role))
    click.echo(f"{name} is now {'an admin' if role == 'admin' else 'a user'}")


# --- tokens --------------------------------------------------------------------------------


@main.group()
def token() -> None:
    """Manage access tokens (tk_...), used as Bearer tokens or as a Basic password."""


@token.command("add")
@click.argument("user_name", metavar="USER")
@click.option("--label", help="What the token is for.")
@click.option(
    "--expires",
    callback=_checked(validate_lifetime),
    help="Lifetime, such as 12h or 30d. Default: never expires.",
)
def token_add(user_name: str, label: str | None, expires: str | None) -> None:
    """Issue a token for USER and print it. It is shown this once."""
    issued = _run(lambda rt: rt.tokens.add(user_name, label=label, expires=expires))
    click.echo(issued.token)
    click.echo(
        f"token {issued.info.prefix} for {user_name}, expires: {_when(issued.info.expires)}. "
        "It is not shown again.",
        err=True,
    )


@token.command("list")
@click.argument("user_name", metavar="[USER]", required=False)
def token_list(user_name: str | None) -> None:
    """List the tokens of USER, or of every user, by their prefix."""
    tokens = _run(lambda rt: rt.tokens.list(user_name))
    rows = [
        (
            t.user,
            t.prefix,
            t.label or "",
            _when(t.expires),
            _when(t.last_used),
            _when(t.created),
        )
        for t in tokens
    ]
    _table(("USER", "TOKEN", "LABEL", "EXPIRES", "LAST USED", "CREATED"), rows)


@token.command("remove")
@click.argument("user_name", metavar="USER")
@click.argument("token_value", metavar="TOKEN-OR-PREFIX")
def token_remove(user_name: str, token_value: str) -> None:
    """Remove a token of USER, given whole or by the prefix that `token list` shows."""
    removed = _run(lambda rt: rt.tokens.remove(user_name, token_value))
    click.echo(f"token {removed.prefix} of {user_name} removed")


# --- access --------------------------------------------------------------------------------


@main.group()
def access() -> None:
    """Manage access rules: who may read or write which topics.

    A rule's PATTERN is a topic name in which * matches any run of characters.
    Admins may do everything. Otherwise a user's own rules come first, then
    the rules for everyone, then TANDEM_DEFAULT_ACCESS. Among one owner's
    matching rules, the most specific pattern wins (fewest *, then longest).
    Servers see changes within TANDEM_AUTH_REFRESH seconds (default 1).
    """


@access.command("grant")
@click.argument("owner", metavar="USER|everyone", callback=_checked(validate_owner))
@click.argument("pattern", callback=_checked(validate_pattern))
@click.argument("permission", callback=_checked(validate_permission))
def access_grant(owner: str, pattern: str, permission: str) -> None:
    """Let USER (or everyone) read and/or write the topics matching PATTERN.

    PERMISSION is read-write, read-only, write-only or deny. A rule for the
    same USER and PATTERN is replaced.
    """
    rule = _run(lambda rt: rt.access.grant(owner, pattern, permission))
    click.echo(f"{rule.user}: {rule.permission} on {rule.pattern}")


@access.command("revoke")
@click.argument("owner", metavar="USER|everyone", callback=_checked(validate_owner))
@click.argument("pattern", callback=_checked(validate_pattern))
def access_revoke(owner: str, pattern: str) -> None:
    """Remove the rule of USER (or everyone) for exactly PATTERN."""
    _run(lambda rt: rt.access.revoke(owner, pattern))
    click.echo(f"rule of {owner} on {pattern} removed")


@access.command("list")
@click.argument("owner", metavar="[USER|everyone]", required=False)
def access_list(owner: str | None) -> None:
    """List access rules, of USER only when given, and the default access."""
    settings = _settings()
    rules = _run(lambda rt: rt.access.list(owner))
    _table(("USER", "PATTERN", "PERMISSION"), [(r.user, r.pattern, r.permission) for r in rules])
    click.echo(f"everything else: {settings.access_default} (TANDEM_DEFAULT_ACCESS)", err=True)


@access.command("reset")
@click.argument(
    "owner", metavar="[USER|everyone]", required=False, callback=_checked(validate_owner)
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def access_reset(owner: str | None, yes: bool) -> None:
    """Remove every rule of USER, or every rule of everybody when no USER is given."""
    whose = f"of {owner}" if owner is not None else "of every user and of everyone"
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("not on a terminal: add --yes to confirm")
        click.confirm(f"Remove every access rule {whose}?", abort=True)
    removed = _run(lambda rt: rt.access.reset(owner))
    click.echo(f"removed {removed} rule(s)")
