"""Authentication and authorisation for one process, from an in-memory snapshot.

Users and access rules are held in memory and reloaded when the ``identity``
counter moves; that counter is read at most once per ``TANDEM_AUTH_REFRESH``
seconds, and only when a request needs an answer. A change made in this
process is seen at once; one made elsewhere (the CLI, another server) within
that interval.

Basic credentials that checked out are remembered for :data:`BASIC_TTL`
seconds under an HMAC of the name and password with a key of this process, so
that a client sending Basic auth on every publish pays argon2 once; every
change to identities empties that memory. Tokens found by their digest are
remembered the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from argon2 import PasswordHasher

from tandem.core.db import Engines, database_errors
from tandem.core.errors import Forbidden, TandemError, Unauthorized
from tandem.core.identity import store
from tandem.core.identity.credentials import Passwords, looks_like_token, same, token_digest
from tandem.core.identity.rules import RuleSet, default_permission
from tandem.core.identity.store import Account, Snapshot, TokenMatch
from tandem.core.identity.validation import is_user_name
from tandem.core.schemas import (
    ANONYMOUS,
    Action,
    Credentials,
    Identity,
    TokenCredentials,
)
from tandem.core.settings import Settings

log = logging.getLogger(__name__)
K = TypeVar("K")
V = TypeVar("V")

BASIC_TTL = 60.0
# Entries per cache; a full cache starts over rather than tracking age.
CACHE_SIZE = 4096
# A token's last use is written at most this often (seconds).
TOUCH_INTERVAL = 60
# Error messages (S105: these are not secrets).
BAD_CREDENTIALS = "invalid user name or password"
BAD_TOKEN = "invalid token"  # noqa: S105
EXPIRED_TOKEN = "the token has expired"  # noqa: S105


class _State:
    """One generation's snapshot with what was derived from it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.generation = snapshot.generation
        self.accounts = snapshot.accounts
        self.rules = RuleSet(snapshot.rules)
        self.basic: dict[bytes, tuple[Identity, float]] = {}
        self.tokens: dict[str, TokenMatch] = {}


class IdentityService:
    """Who a caller is and what it may do; shared by both doors and every transport."""

    def __init__(
        self,
        settings: Settings,
        *,
        engines: Callable[[], Engines],
        clock: Callable[[], int],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engines = engines
        self.clock = clock
        self._monotonic = monotonic
        self._refresh = settings.auth_refresh
        self.default = default_permission(settings.access_default)
        # The test suite hashes hundreds of passwords: there, argon2id with small costs.
        # A hash records its own costs, so either kind verifies anywhere.
        testing = settings.env == "testing"
        self.passwords = Passwords(
            PasswordHasher(time_cost=1, memory_cost=1024) if testing else None
        )
        self._state: _State | None = None
        self._checked_at = 0.0
        self._changes = 0
        self._lock = asyncio.Lock()
        self._cache_key = secrets.token_bytes(32)
        self._touched: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def engines(self) -> Engines:
        return self._engines()

    def changed(self) -> None:
        """Read the counter again on the next request (after a change made here)."""
        self._changes += 1
        self._checked_at = float("-inf")

    async def _current(self) -> _State:
        state = self._state
        if state is not None and self._monotonic() - self._checked_at < self._refresh:
            return state
        async with self._lock:
            state = self._state
            if state is not None and self._monotonic() - self._checked_at < self._refresh:
                return state  # another request reloaded it meanwhile
            started, changes = self._monotonic(), self._changes
            known = None if state is None else state.generation
            async with database_errors():
                snapshot = await store.load(engines=self.engines, known=known)
            if snapshot is not None:
                state = self._state = _State(snapshot)
            if state is None:  # load() returns a snapshot whenever none is known
                raise RuntimeError("no identity snapshot")
            if changes == self._changes:  # else a change made here may postdate this read
                self._checked_at = started
            return state

    # --- authentication --------------------------------------------------------------------

    async def authenticate(self, creds: Credentials | None) -> Identity:
        """The identity that ``creds`` prove; ``None`` is anonymous. Raise :class:`Unauthorized`."""
        if creds is None:
            return ANONYMOUS
        if isinstance(creds, TokenCredentials):
            return await self._token(creds.token)
        return await self.login(creds.username, creds.password)

    async def login(self, username: str, password: str) -> Identity:
        """Check a user name and password; raise :class:`Unauthorized` when they do not match."""
        state = await self._current()
        key = self._basic_key(username, password)
        cached = state.basic.get(key)
        if cached is not None and cached[1] > self._monotonic():
            return cached[0]
        found = None
        if is_user_name(username):
            async with database_errors():
                found = await store.find_login(engines=self.engines, name=username)
        stored = None if found is None else found.password_hash
        if not await self.passwords.verify(stored, password) or found is None:
            raise Unauthorized(BAD_CREDENTIALS)
        identity = _identity(found.account)
        if self._state is state:  # no change since: the answer is still current
            _remember(state.basic, key, (identity, self._monotonic() + BASIC_TTL))
        return identity

    def _basic_key(self, username: str, password: str) -> bytes:
        # Length-prefixed, so that no other name and password give the same bytes.
        name = username.encode("utf-8", "surrogatepass")
        data = b"%d:%s%s" % (len(name), name, password.encode("utf-8", "surrogatepass"))
        return hmac.new(self._cache_key, data, hashlib.sha256).digest()

    async def _token(self, token: str) -> Identity:
        if not looks_like_token(token):
            raise Unauthorized(BAD_TOKEN)
        digest = token_digest(token)
        state = await self._current()
        match = state.tokens.get(digest)
        if match is None:
            async with database_errors():
                match = await store.find_token(engines=self.engines, digest=digest)
            if match is None:
                raise Unauthorized(BAD_TOKEN)
            if self._state is state:
                _remember(state.tokens, digest, match)
        if not same(match.digest, digest):
            raise Unauthorized(BAD_TOKEN)
        now = self.clock()
        if match.expires is not None and match.expires <= now:
            raise Unauthorized(EXPIRED_TOKEN)
        self._touch(match, now)
        return _identity(match.account)

    async def identity_for_session(self, username: str, session_version: str) -> Identity:
        """The user of a web session, or anonymous when the user or its version is gone."""
        state = await self._current()
        account = state.accounts.get(username)
        if account is None or not same(account.session_version, session_version):
            return ANONYMOUS
        return _identity(account)

    # --- token use -------------------------------------------------------------------------

    def _touch(self, match: TokenMatch, now: int) -> None:
        # In the background: the request does not wait for the write.
        last = self._touched.get(match.id, match.last_used)
        if last is not None and now - last < TOUCH_INTERVAL:
            return
        self._touched[match.id] = now
        task = asyncio.get_running_loop().create_task(self._record_use(match.id, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record_use(self, token_id: int, now: int) -> None:
        try:
            async with database_errors():
                await store.touch_token(engines=self.engines, token_id=token_id, now=now)
        except TandemError as exc:
            log.warning("could not record a token's use: %s", exc.message)

    async def flush(self) -> None:
        """Wait for the token uses being written (at shutdown, and in tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- authorisation ---------------------------------------------------------------------

    async def authorize(self, identity: Identity, topic: str, action: Action) -> None:
        """Raise :class:`Unauthorized` (anonymous) or :class:`Forbidden` unless allowed."""
        if identity.is_admin:
            return
        state = await self._current()
        if not state.rules.allows(identity, topic, action, self.default):
            raise _denied(identity, f"not allowed to {action} topic {topic!r}")

    async def readable(
        self, identity: Identity, topics: Sequence[str]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Split ``topics`` into those ``identity`` may read and the others.

        Raise like :meth:`authorize` when there were topics and none is readable.
        """
        if identity.is_admin:
            return tuple(topics), ()
        state = await self._current()
        allowed: list[str] = []
        forbidden: list[str] = []
        for topic in topics:
            ok = state.rules.allows(identity, topic, "read", self.default)
            (allowed if ok else forbidden).append(topic)
        if forbidden and not allowed:
            names = ", ".join(repr(topic) for topic in forbidden)
            noun = "topic" if len(forbidden) == 1 else "topics"
            raise _denied(identity, f"not allowed to read {noun} {names}")
        return tuple(allowed), tuple(forbidden)


def _identity(account: Account) -> Identity:
    return Identity(account.name, account.role, account.session_version)


def _denied(identity: Identity, message: str) -> TandemError:
    if identity.is_anonymous:
        return Unauthorized(f"{message}: sign in first")
    return Forbidden(message)


def _remember(cache: dict[K, V], key: K, value: V) -> None:
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value
