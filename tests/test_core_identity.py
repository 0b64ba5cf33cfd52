"""Users, tokens, access rules and sessions through the Runtime, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from harness.waiting import describe, eventually_async
from tests.conftest import Clock

from tandem.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TandemError,
    Unauthorized,
)
from tandem.core.identity.credentials import Passwords
from tandem.core.identity.service import TOUCH_INTERVAL
from tandem.core.runtime import Runtime
from tandem.core.schemas import (
    ANONYMOUS,
    AccessRule,
    BasicCredentials,
    Identity,
    TokenCredentials,
    User,
)
from tandem.core.settings import Settings
from tandem.protocol.auth import basic_authorization, parse_credentials

PASSWORD = "correct horse battery staple"
TOKEN_SHAPE = re.compile(r"tk_[A-Za-z0-9_-]{32}")


@pytest.fixture
def verifies(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The outcome of every argon2 verification in this test, in order."""
    outcomes: list[bool] = []
    original = Passwords.verify

    async def counting(self: Passwords, stored: str | None, password: str) -> bool:
        outcome = await original(self, stored, password)
        outcomes.append(outcome)
        return outcome

    monkeypatch.setattr(Passwords, "verify", counting)
    return outcomes


@pytest.fixture
async def other(db_settings: Settings, clock: Clock) -> AsyncIterator[Runtime]:
    """A second runtime on the same database: another process, such as the CLI."""
    runtime = Runtime(db_settings, clock=clock)
    await runtime.start(follow=False)
    yield runtime
    await runtime.stop()


async def _runtime(settings: Settings, clock: Clock, **overrides: object) -> Runtime:
    runtime = Runtime(settings.model_copy(update=overrides), clock=clock)
    await runtime.start(follow=False)
    return runtime


async def _raises(kind: type[TandemError], call: Awaitable[object]) -> TandemError:
    with pytest.raises(kind) as caught:
        await call
    return caught.value


# --- users -----------------------------------------------------------------------------------


async def test_users_add_list_change_and_remove(rt: Runtime, clock: Clock) -> None:
    admin = await rt.users.add("root", PASSWORD, "admin")
    clock.now += 5
    await rt.users.add("alice", PASSWORD)
    assert (admin.name, admin.role, admin.created) == ("root", "admin", clock.now - 5)
    assert [(u.name, u.role) for u in await rt.users.list()] == [
        ("alice", "user"),
        ("root", "admin"),
    ]
    await rt.users.change_role("alice", "admin")
    assert await rt.users.get("alice") == User("alice", "admin", clock.now)
    await rt.users.remove("alice")
    assert [u.name for u in await rt.users.list()] == ["root"]


async def test_user_errors(rt: Runtime) -> None:
    await rt.users.add("alice", PASSWORD)
    assert "exists" in (await _raises(Conflict, rt.users.add("alice", "other"))).message
    for bad_name in ("", "has space", "everyone", "Everyone", "a:b", "x" * 65, "-dash"):
        await _raises(InvalidInput, rt.users.add(bad_name, PASSWORD))
    await _raises(InvalidInput, rt.users.add("bob", ""))
    await _raises(InvalidInput, rt.users.add("bob", PASSWORD, "root"))
    for call in (
        rt.users.remove("nobody"),
        rt.users.get("nobody"),
        rt.users.change_password("nobody", PASSWORD),
        rt.users.change_role("nobody", "admin"),
        rt.tokens.add("nobody"),
        rt.tokens.list("nobody"),
        rt.access.grant("nobody", "x", "read-only"),
    ):
        await _raises(NotFound, call)


# --- authentication --------------------------------------------------------------------------


async def test_basic_authentication(rt: Runtime, verifies: list[bool]) -> None:
    await rt.users.add("alice", PASSWORD)
    identity = await rt.authenticate(BasicCredentials("alice", PASSWORD))
    assert identity == Identity("alice", "user")
    assert identity.session_version
    assert await rt.authenticate(None) == ANONYMOUS
    for wrong in (BasicCredentials("alice", "wrong"), BasicCredentials("Alice", PASSWORD)):
        error = await _raises(Unauthorized, rt.authenticate(wrong))
        assert error.message == "invalid user name or password"
    assert (await rt.login("alice", PASSWORD)).user == "alice"
    await _raises(Unauthorized, rt.login("alice", "wrong"))


async def test_unknown_users_still_pay_one_verification(rt: Runtime, verifies: list[bool]) -> None:
    for name in ("ghost", "", "not a valid name", "x" * 500):
        await _raises(Unauthorized, rt.authenticate(BasicCredentials(name, PASSWORD)))
    assert verifies == [False] * 4


async def test_basic_successes_are_remembered_until_something_changes(
    rt: Runtime, verifies: list[bool]
) -> None:
    await rt.users.add("alice", PASSWORD)
    creds = BasicCredentials("alice", PASSWORD)
    for _ in range(5):
        assert (await rt.authenticate(creds)).user == "alice"
    assert verifies == [True]  # argon2 ran once, not five times
    # A wrong password is never served from the cache.
    await _raises(Unauthorized, rt.authenticate(BasicCredentials("alice", PASSWORD + "!")))
    assert verifies == [True, False]
    # A new password: the old one stops working at once, in this process.
    await rt.users.change_password("alice", "new password")
    await _raises(Unauthorized, rt.authenticate(creds))
    assert (await rt.authenticate(BasicCredentials("alice", "new password"))).user == "alice"


async def test_tokens(rt: Runtime, clock: Clock) -> None:
    await rt.users.add("alice", PASSWORD)
    issued = await rt.tokens.add("alice", label="  phone  ")
    assert TOKEN_SHAPE.fullmatch(issued.token)
    assert issued.token not in repr(issued)
    info = issued.info
    assert (info.user, info.label, info.expires, info.last_used, info.created) == (
        "alice",
        "phone",
        None,
        None,
        clock.now,
    )
    assert info.prefix == issued.token[:9]
    assert await rt.authenticate(TokenCredentials(issued.token)) == Identity("alice", "user")
    # The ways a client sends it: Bearer, and Basic with an empty user.
    for header in ("Bearer " + issued.token, basic_authorization("", issued.token)):
        creds = parse_credentials(header, None)
        assert (await rt.authenticate(creds)).user == "alice"
    # A token is not a password, and a near miss is not a token.
    await _raises(Unauthorized, rt.authenticate(BasicCredentials("alice", issued.token)))
    for wrong in (issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B"), "tk_short", ""):
        error = await _raises(Unauthorized, rt.authenticate(TokenCredentials(wrong)))
        assert error.message == "invalid token"
    # Listed by prefix, never whole.
    listed = await rt.tokens.list("alice")
    assert [t.prefix for t in listed] == [info.prefix]
    assert await rt.tokens.list() == listed


async def test_token_expiry(rt: Runtime, clock: Clock) -> None:
    await rt.users.add("alice", PASSWORD)
    issued = await rt.tokens.add("alice", expires="1h")
    assert issued.info.expires == clock.now + 3600
    creds = TokenCredentials(issued.token)
    clock.now += 3599
    assert (await rt.authenticate(creds)).user == "alice"
    clock.now += 1
    error = await _raises(Unauthorized, rt.authenticate(creds))
    assert error.message == "the token has expired"
    # Seconds work too; nothing or less is refused.
    assert (await rt.tokens.add("alice", expires=60)).info.expires == clock.now + 60
    for bad in ("0s", "soon", 0, -5):
        await _raises(InvalidInput, rt.tokens.add("alice", expires=bad))


async def test_token_last_use_is_recorded_at_most_once_a_minute(rt: Runtime, clock: Clock) -> None:
    await rt.users.add("alice", PASSWORD)
    issued = await rt.tokens.add("alice")
    creds = TokenCredentials(issued.token)

    async def last_used() -> int | None:
        await rt.identity.flush()
        (token,) = await rt.tokens.list("alice")
        return token.last_used

    first = clock.now
    await rt.authenticate(creds)
    assert await last_used() == first
    clock.now += TOUCH_INTERVAL - 1
    await rt.authenticate(creds)
    assert await last_used() == first
    clock.now += 1
    await rt.authenticate(creds)
    assert await last_used() == clock.now


async def test_removing_tokens(rt: Runtime) -> None:
    await rt.users.add("alice", PASSWORD)
    await rt.users.add("bob", PASSWORD)
    one, two, bobs = (
        await rt.tokens.add("alice"),
        await rt.tokens.add("alice"),
        await rt.tokens.add("bob"),
    )
    # Another user's token, or one that does not exist, is not found.
    await _raises(NotFound, rt.tokens.remove("alice", bobs.token))
    await _raises(NotFound, rt.tokens.remove("alice", "tk_zzzzzz"))
    # Whole, or by the listed prefix (with or without tk_).
    assert (await rt.tokens.remove("alice", one.token)).prefix == one.info.prefix
    assert (await rt.tokens.remove("alice", two.info.prefix[3:])).prefix == two.info.prefix
    for token in (one, two):
        await _raises(Unauthorized, rt.authenticate(TokenCredentials(token.token)))
    assert (await rt.authenticate(TokenCredentials(bobs.token))).user == "bob"
    # Removing a user removes its tokens and rules.
    await rt.access.grant("bob", "bobs-*", "read-write")
    await rt.users.remove("bob")
    await _raises(Unauthorized, rt.authenticate(TokenCredentials(bobs.token)))
    assert await rt.tokens.list() == []
    assert await rt.access.list() == []


# --- sessions --------------------------------------------------------------------------------


async def test_session_versions(rt: Runtime) -> None:
    await rt.users.add("alice", PASSWORD)
    alice = await rt.login("alice", PASSWORD)
    version = alice.session_version
    assert version is not None
    assert await rt.identity_for_session("alice", version) == alice
    assert await rt.identity_for_session("alice", version + "x") == ANONYMOUS
    assert await rt.identity_for_session("bob", version) == ANONYMOUS
    # A password change ends the session, and so does a role change.
    await rt.users.change_password("alice", "new password")
    assert await rt.identity_for_session("alice", version) == ANONYMOUS
    version = (await rt.login("alice", "new password")).session_version or ""
    await rt.users.change_role("alice", "admin")
    assert await rt.identity_for_session("alice", version) == ANONYMOUS
    # A user removed and added again under the same name does not get the old sessions back.
    version = (await rt.login("alice", "new password")).session_version or ""
    assert (await rt.identity_for_session("alice", version)).is_admin
    await rt.users.remove("alice")
    await rt.users.add("alice", "new password", "admin")
    assert await rt.identity_for_session("alice", version) == ANONYMOUS


# --- access ----------------------------------------------------------------------------------


async def test_grant_revoke_list_and_reset(rt: Runtime) -> None:
    await rt.users.add("alice", PASSWORD)
    assert await rt.access.grant("alice", "alerts-**", "rw") == AccessRule(
        "alice", "alerts-*", "read-write"
    )
    await rt.access.grant("everyone", "public", "read-only")
    # Granting again replaces the permission.
    await rt.access.grant("alice", "alerts-*", "deny")
    assert await rt.access.list() == [
        AccessRule("alice", "alerts-*", "deny"),
        AccessRule("everyone", "public", "read-only"),
    ]
    assert await rt.access.list("everyone") == [AccessRule("everyone", "public", "read-only")]
    await _raises(NotFound, rt.access.revoke("alice", "public"))
    await rt.access.revoke("alice", "alerts-**")
    assert [r.user for r in await rt.access.list()] == ["everyone"]
    await rt.access.grant("alice", "a", "deny")
    assert await rt.access.reset("alice") == 1
    assert await rt.access.reset() == 1
    assert await rt.access.reset() == 0
    for bad in (
        rt.access.grant("alice", "has space", "deny"),
        rt.access.grant("alice", "x", "maybe"),
        rt.access.grant("bad name", "x", "deny"),
    ):
        await _raises(InvalidInput, bad)


async def test_authorize_and_readable(db_settings: Settings, clock: Clock) -> None:
    rt = await _runtime(db_settings, clock, default_access="deny-all")
    try:
        await rt.users.add("root", PASSWORD, "admin")
        await rt.users.add("alice", PASSWORD)
        await rt.access.grant("everyone", "public-*", "read-only")
        await rt.access.grant("alice", "alice-*", "read-write")
        alice = await rt.login("alice", PASSWORD)
        root = await rt.login("root", PASSWORD)

        await rt.authorize(ANONYMOUS, "public-news", "read")
        error = await _raises(Unauthorized, rt.authorize(ANONYMOUS, "public-news", "write"))
        assert "public-news" in error.message
        await _raises(Unauthorized, rt.authorize(ANONYMOUS, "private", "read"))
        await rt.authorize(alice, "alice-todo", "write")
        await rt.authorize(alice, "public-news", "read")  # falls through to everyone
        await _raises(Forbidden, rt.authorize(alice, "private", "read"))
        await rt.authorize(root, "private", "write")

        topics = ("alice-todo", "private", "public-news")
        assert await rt.readable(alice, topics) == (("alice-todo", "public-news"), ("private",))
        assert await rt.readable(ANONYMOUS, topics) == (
            ("public-news",),
            ("alice-todo", "private"),
        )
        assert await rt.readable(root, topics) == (topics, ())
        await _raises(Forbidden, rt.readable(alice, ("private", "other")))
        await _raises(Unauthorized, rt.readable(ANONYMOUS, ("private",)))
    finally:
        await rt.stop()


async def test_changes_elsewhere_are_seen_after_the_refresh_interval(
    db_settings: Settings, clock: Clock, other: Runtime
) -> None:
    # A server that checks for changes only once an hour...
    slow = await _runtime(db_settings, clock, default_access="deny-all", auth_refresh=3600)
    # ...and one that checks on every request.
    eager = await _runtime(db_settings, clock, default_access="deny-all", auth_refresh=0)
    try:
        for rt in (slow, eager):
            await _raises(Unauthorized, rt.authorize(ANONYMOUS, "news", "read"))
        await other.access.grant("everyone", "news", "read-only")  # as the CLI would
        await eager.authorize(ANONYMOUS, "news", "read")
        await _raises(Unauthorized, slow.authorize(ANONYMOUS, "news", "read"))
        # A change made in a process is seen there at once, with every change before it.
        await slow.access.grant("everyone", "other", "read-only")
        await slow.authorize(ANONYMOUS, "news", "read")
    finally:
        await slow.stop()
        await eager.stop()


async def test_changes_elsewhere_apply_within_about_a_second(
    db_settings: Settings, clock: Clock, other: Runtime
) -> None:
    rt = await _runtime(db_settings, clock, default_access="deny-all")  # the default refresh
    try:
        await other.users.add("alice", PASSWORD)
        issued = await other.tokens.add("alice")
        alice = await rt.authenticate(TokenCredentials(issued.token))
        await _raises(Forbidden, rt.authorize(alice, "news", "write"))
        await other.access.grant("alice", "news", "write-only")
        await _eventually(lambda: rt.authorize(alice, "news", "write"))
        await other.tokens.remove("alice", issued.token)
        await _eventually(
            lambda: _expect(Unauthorized, rt.authenticate(TokenCredentials(issued.token)))
        )
    finally:
        await rt.stop()


async def _expect(kind: type[TandemError], call: Awaitable[object]) -> None:
    try:
        await call
    except kind:
        return
    raise AssertionError(f"expected {kind.__name__}")


async def _eventually(check: Callable[[], Awaitable[object]], timeout: float = 10.0) -> None:
    """Wait until ``check`` passes (settings.auth_refresh is 1 s); fail after ``timeout``."""

    async def passed() -> bool:
        await check()
        return True

    await eventually_async(
        passed, timeout, what=describe(check), ignoring=(TandemError, AssertionError)
    )


# --- secrets ---------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def tandem_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record of Tandem's own loggers, at every level, during the test.

    A handler on the ``tandem`` logger itself: an app built earlier in the
    session may have stopped it from propagating to pytest's capture.
    """
    logger = logging.getLogger("tandem")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_no_secret_in_logs_or_errors(
    tandem_logs: list[logging.LogRecord], rt: Runtime, clock: Clock
) -> None:
    password = "Pa55word-that-must-not-leak"
    await rt.users.add("alice", password)
    issued = await rt.tokens.add("alice", expires="1m")
    token = issued.token
    texts: list[str] = [repr(issued), repr(BasicCredentials("alice", password))]

    async def failing(call: Awaitable[object]) -> None:
        with pytest.raises(TandemError) as caught:
            await call
        texts.extend([str(caught.value), repr(caught.value), caught.value.message])

    wrong_token = token[:-2] + "xy"
    await failing(rt.authenticate(BasicCredentials("alice", password + "x")))
    await failing(rt.authenticate(BasicCredentials(password, password)))
    await failing(rt.authenticate(TokenCredentials(wrong_token)))
    await failing(rt.tokens.remove("alice", wrong_token))
    await failing(rt.users.add("alice", password))
    for header in ("Basic " + password, "Bearer " + password + " x", "Bearer " + token + " x"):
        with pytest.raises(Unauthorized) as caught:
            parse_credentials(header, None)
        texts.append(str(caught.value))
    clock.now += 120
    await failing(rt.authenticate(TokenCredentials(token)))
    await rt.identity.flush()
    # Tandem's own log lines, at every level, carry none either.
    assert tandem_logs  # at least "runtime started"
    texts.extend(record.getMessage() for record in tandem_logs)
    texts.extend(str(record.__dict__) for record in tandem_logs)
    for secret in (password, token, wrong_token, token[3:]):
        leaks = [text for text in texts if secret in text]
        assert not leaks, leaks
