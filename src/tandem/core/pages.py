"""What the web pages show and do: the gate and the admin services, one call per page.

Each function returns everything its page needs in one call (one trip
through the portal on the WSGI door), with the signed-in identity for the
page's header. A page is a GET
that a link on another site may open (``Sec-Fetch-Site: cross-site`` on a
top-level navigation); it changes nothing and the other site cannot read the
answer, so it is served as the user. Forms that change something keep the
cross-site check of :func:`tandem.core.gate.identify`, besides their CSRF token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from tandem.core import gate
from tandem.core.administer import require_admin
from tandem.core.errors import Unauthorized
from tandem.core.gate import Caller, identify
from tandem.core.schemas import (
    AccessRule,
    Identity,
    IssuedToken,
    Message,
    Token,
    TopicStat,
    User,
)

if TYPE_CHECKING:
    from tandem.core.runtime import Runtime

log = logging.getLogger(__name__)

# How many of a topic's newest messages its page shows.
HISTORY = 100

AdminSection = Literal["users", "tokens", "access"]


@dataclass(frozen=True, slots=True)
class Home:
    viewer: Identity
    topics: list[TopicStat]


@dataclass(frozen=True, slots=True)
class TopicPage:
    viewer: Identity
    topic: str
    # Newest first.
    messages: list[Message]


@dataclass(frozen=True, slots=True)
class AdminPage:
    """One admin page: what its section lists, and the user names for its forms."""

    viewer: Identity
    users: list[User] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)
    rules: list[AccessRule] = field(default_factory=list)


def _navigation(caller: Caller) -> Caller:
    return replace(caller, cross_site=False)


async def viewer(rt: Runtime, caller: Caller) -> Identity:
    """Who is looking at a page: the signed-in user, or anonymous."""
    return (await identify(rt, _navigation(caller))).identity


async def home(rt: Runtime, caller: Caller) -> Home:
    """The topic list: the topics the caller may read."""
    visitor = await identify(rt, _navigation(caller))
    return Home(visitor.identity, await gate.readable_topics(rt, visitor))


async def topic(rt: Runtime, caller: Caller, name: str) -> TopicPage:
    """A topic's newest messages, if the caller may read it (401 or 403 otherwise)."""
    visitor = await identify(rt, _navigation(caller))
    await rt.authorize(visitor.identity, name, "read")
    return TopicPage(visitor.identity, name, await rt.newest(name, HISTORY))


async def sign_in(rt: Runtime, client_ip: str, username: str, password: str) -> Identity:
    """Check the login form, as a login attempt of ``client_ip`` (:func:`gate.login_attempt`)."""
    try:
        identity = await gate.login_attempt(rt, client_ip, lambda: rt.login(username, password))
    except Unauthorized:
        # Not the name tried: people type their password into it.
        log.warning("web login failed", extra={"client_ip": client_ip})
        raise
    log.info("web login", extra={"user": identity.user, "client_ip": client_ip})
    return identity


async def admin(rt: Runtime, caller: Caller, section: AdminSection) -> AdminPage:
    """One admin page (admins only: 401 when anonymous, 403 for another user)."""
    visitor = await require_admin(rt, _navigation(caller))
    users = await rt.users.list()
    if section == "tokens":
        return AdminPage(visitor.identity, users, tokens=await rt.tokens.list(None))
    if section == "access":
        return AdminPage(visitor.identity, users, rules=await rt.access.list(None))
    return AdminPage(visitor.identity, users)


async def issue_token(
    rt: Runtime, caller: Caller, user: str, *, label: str | None, expires: str | None
) -> IssuedToken:
    """Issue ``user`` a token from the tokens page: admins only, as every admin page."""
    await require_admin(rt, caller)
    return await rt.tokens.add(user, label=label, expires=expires)


async def remove_token(rt: Runtime, caller: Caller, user: str, prefix: str) -> Token:
    """Remove ``user``'s token ``prefix`` from the tokens page (admins only)."""
    await require_admin(rt, caller)
    return await rt.tokens.remove(user, prefix)
