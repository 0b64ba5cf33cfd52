"""Storage of users, tokens and access rules: the only module that writes SQL for them.

Every write runs in one transaction that also raises the ``identity`` counter,
which is how every process learns, with one cheap read, that it must reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from tandem.core.db import Engines
from tandem.core.errors import Conflict, InvalidInput, NotFound
from tandem.core.models import access_rules, counters, tokens, users
from tandem.core.schemas import EVERYONE, AccessRule, Permission, Role, Token, User

MAX_TOKENS_PER_USER = 100

_GENERATION = select(counters.c.value).where(counters.c.name == "identity")
_BUMP = update(counters).where(counters.c.name == "identity").values(value=counters.c.value + 1)
_TOKEN_COLUMNS = (
    users.c.name,
    tokens.c.prefix,
    tokens.c.label,
    tokens.c.expires,
    tokens.c.last_used,
    tokens.c.created,
)


@dataclass(frozen=True, slots=True)
class Account:
    """What a process keeps about a user: enough for sessions and decisions, no hash."""

    name: str
    role: Role
    session_version: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Users and rules as of ``generation``."""

    generation: int
    accounts: dict[str, Account]
    rules: list[AccessRule]


@dataclass(frozen=True, slots=True)
class Login:
    """A user row with its password hash, for verification only."""

    account: Account
    password_hash: str


@dataclass(frozen=True, slots=True)
class TokenMatch:
    """A token found by its digest, with its owner."""

    id: int
    digest: str
    account: Account
    expires: int | None
    last_used: int | None


# --- reads ---------------------------------------------------------------------------------


async def load(*, engines: Engines, known: int | None) -> Snapshot | None:
    """The users and rules, or ``None`` when the generation is still ``known``.

    The generation is read first: a change committed between the reads makes
    the snapshot newer than its generation says, never older, so the next
    check reloads rather than keeping stale rules.
    """
    async with engines.read.connect() as conn:
        generation = int((await conn.execute(_GENERATION)).scalar_one())
        if generation == known:
            return None
        user_rows = await conn.execute(select(users.c.name, users.c.role, users.c.session_version))
        rule_rows = await conn.execute(
            select(access_rules.c.owner, access_rules.c.pattern, access_rules.c.permission)
        )
        accounts = {row.name: Account(row.name, row.role, row.session_version) for row in user_rows}
        rules = [AccessRule(row.owner, row.pattern, row.permission) for row in rule_rows]
    return Snapshot(generation, accounts, rules)


async def find_login(*, engines: Engines, name: str) -> Login | None:
    stmt = select(users.c.name, users.c.role, users.c.session_version, users.c.password_hash)
    async with engines.read.connect() as conn:
        row = (await conn.execute(stmt.where(users.c.name == name))).first()
    if row is None:
        return None
    return Login(Account(row.name, row.role, row.session_version), row.password_hash)


async def find_token(*, engines: Engines, digest: str) -> TokenMatch | None:
    stmt = (
        select(
            tokens.c.id,
            tokens.c.token_hash,
            tokens.c.expires,
            tokens.c.last_used,
            users.c.name,
            users.c.role,
            users.c.session_version,
        )
        .join(users, users.c.id == tokens.c.user_id)
        .where(tokens.c.token_hash == digest)
    )
    async with engines.read.connect() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    account = Account(row.name, row.role, row.session_version)
    return TokenMatch(row.id, row.token_hash, account, row.expires, row.last_used)


async def list_users(*, engines: Engines) -> list[User]:
    stmt = select(users.c.name, users.c.role, users.c.created).order_by(users.c.name)
    async with engines.read.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [User(row.name, row.role, row.created) for row in rows]


async def get_user(*, engines: Engines, name: str) -> User:
    stmt = select(users.c.name, users.c.role, users.c.created).where(users.c.name == name)
    async with engines.read.connect() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"no user {name!r}")
    return User(row.name, row.role, row.created)


async def list_tokens(*, engines: Engines, user: str | None) -> list[Token]:
    stmt = select(*_TOKEN_COLUMNS).join(users, users.c.id == tokens.c.user_id)
    if user is not None:
        stmt = stmt.where(users.c.name == user)
    async with engines.read.connect() as conn:
        if user is not None:
            found = await conn.execute(select(users.c.id).where(users.c.name == user))
            _user_id(found.scalar_one_or_none(), user)
        rows = (await conn.execute(stmt.order_by(users.c.name, tokens.c.created))).all()
    return [_to_token(row) for row in rows]


async def list_rules(*, engines: Engines, owner: str | None) -> list[AccessRule]:
    stmt = select(access_rules.c.owner, access_rules.c.pattern, access_rules.c.permission)
    if owner is not None:
        stmt = stmt.where(access_rules.c.owner == owner)
    async with engines.read.connect() as conn:
        rows = await conn.execute(stmt.order_by(access_rules.c.owner, access_rules.c.pattern))
    return [AccessRule(row.owner, row.pattern, row.permission) for row in rows]


# --- writes --------------------------------------------------------------------------------


async def add_user(
    *, engines: Engines, name: str, password_hash: str, role: Role, version: str, now: int
) -> User:
    def write(conn: Connection) -> User:
        if _find_user_id(conn, name) is not None:
            raise Conflict(f"user {name!r} exists")
        conn.execute(
            insert(users).values(
                name=name,
                password_hash=password_hash,
                role=role,
                session_version=version,
                created=now,
            )
        )
        conn.execute(_BUMP)
        return User(name, role, now)

    return await engines.run_write(write)


async def remove_user(*, engines: Engines, name: str) -> None:
    """Remove ``name`` with its tokens and its access rules."""

    def write(conn: Connection) -> None:
        user_id = _user_id(_find_user_id(conn, name), name)
        conn.execute(delete(tokens).where(tokens.c.user_id == user_id))
        conn.execute(delete(access_rules).where(access_rules.c.owner == name))
        conn.execute(delete(users).where(users.c.id == user_id))
        conn.execute(_BUMP)

    await engines.run_write(write)


async def update_user(*, engines: Engines, name: str, **values: Any) -> None:
    """Set ``values`` (a new hash or role, with a new session version) on ``name``."""

    def write(conn: Connection) -> None:
        done = conn.execute(update(users).where(users.c.name == name).values(**values))
        if not done.rowcount:
            raise NotFound(f"no user {name!r}")
        conn.execute(_BUMP)

    await engines.run_write(write)


async def add_token(
    *,
    engines: Engines,
    user: str,
    digest: str,
    prefix: str,
    label: str | None,
    expires: int | None,
    now: int,
) -> Token:
    def write(conn: Connection) -> Token:
        user_id = _user_id(_find_user_id(conn, user), user)
        count = conn.execute(
            select(func.count()).select_from(tokens).where(tokens.c.user_id == user_id)
        ).scalar_one()
        if count >= MAX_TOKENS_PER_USER:
            raise InvalidInput(
                f"user {user!r} has {MAX_TOKENS_PER_USER} tokens already: remove some first"
            )
        conn.execute(
            insert(tokens).values(
                user_id=user_id,
                token_hash=digest,
                prefix=prefix,
                label=label,
                expires=expires,
                created=now,
            )
        )
        conn.execute(_BUMP)
        return Token(user, prefix, label, expires, None, now)

    return await engines.run_write(write)


async def remove_token(
    *, engines: Engines, user: str, digest: str | None, prefix: str | None
) -> Token:
    """Remove one token of ``user``, named by its digest or by its unique shown prefix."""

    def write(conn: Connection) -> Token:
        user_id = _user_id(_find_user_id(conn, user), user)
        stmt = select(tokens.c.id, *_TOKEN_COLUMNS).join(users, users.c.id == tokens.c.user_id)
        stmt = stmt.where(tokens.c.user_id == user_id)
        if digest is not None:
            stmt = stmt.where(tokens.c.token_hash == digest)
        else:
            stmt = stmt.where(tokens.c.prefix == prefix)
        rows = conn.execute(stmt.limit(2)).all()
        if not rows:
            raise NotFound(f"no such token of user {user!r}")
        if len(rows) > 1:
            raise InvalidInput("more than one token has that prefix: give the whole token")
        conn.execute(delete(tokens).where(tokens.c.id == rows[0].id))
        conn.execute(_BUMP)
        return _to_token(rows[0])

    return await engines.run_write(write)


async def touch_token(*, engines: Engines, token_id: int, now: int) -> None:
    """Record a use of a token. Not a change that other processes need to see."""

    def write(conn: Connection) -> None:
        conn.execute(update(tokens).where(tokens.c.id == token_id).values(last_used=now))

    await engines.run_write(write)


async def grant(*, engines: Engines, owner: str, pattern: str, permission: Permission) -> None:
    """Set ``owner``'s permission on ``pattern``, replacing the one it had."""

    def write(conn: Connection) -> None:
        if owner != EVERYONE:
            _user_id(_find_user_id(conn, owner), owner)
        done = conn.execute(
            update(access_rules)
            .where(access_rules.c.owner == owner, access_rules.c.pattern == pattern)
            .values(permission=permission)
        )
        if not done.rowcount:
            conn.execute(
                insert(access_rules).values(owner=owner, pattern=pattern, permission=permission)
            )
        conn.execute(_BUMP)

    await engines.run_write(write)


async def revoke(*, engines: Engines, owner: str, pattern: str) -> None:
    def write(conn: Connection) -> None:
        done = conn.execute(
            delete(access_rules).where(
                access_rules.c.owner == owner, access_rules.c.pattern == pattern
            )
        )
        if not done.rowcount:
            raise NotFound(f"no rule for {owner!r} on {pattern!r}")
        conn.execute(_BUMP)

    await engines.run_write(write)


async def reset(*, engines: Engines, owner: str | None) -> int:
    """Remove every rule of ``owner``, or every rule at all; return how many went."""

    def write(conn: Connection) -> int:
        stmt = delete(access_rules)
        if owner is not None:
            stmt = stmt.where(access_rules.c.owner == owner)
        removed = int(conn.execute(stmt).rowcount)
        if removed:
            conn.execute(_BUMP)
        return removed

    return await engines.run_write(write)


# --- helpers -------------------------------------------------------------------------------


def _find_user_id(conn: Connection, name: str) -> int | None:
    found = conn.execute(select(users.c.id).where(users.c.name == name)).scalar_one_or_none()
    return cast(int | None, found)


def _user_id(found: int | None, name: str) -> int:
    if found is None:
        raise NotFound(f"no user {name!r}")
    return found


def _to_token(row: Any) -> Token:
    return Token(row.name, row.prefix, row.label, row.expires, row.last_used, row.created)
