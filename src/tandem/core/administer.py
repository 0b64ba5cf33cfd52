"""The REST admin API's services: who may administer, then the same calls as the CLI.

Users and access rules are for admins only. Tokens are a user's own: anyone
signed in may list, create and remove their own; an admin may do so for anyone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tandem.core.errors import Forbidden, Unauthorized
from tandem.core.gate import Caller, Visitor, identify
from tandem.core.schemas import AccessRule, IssuedToken, Token, User

if TYPE_CHECKING:
    from tandem.core.runtime import Runtime


async def require_admin(rt: Runtime, caller: Caller) -> Visitor:
    """The caller, if an admin: else 401 (anonymous) or 403."""
    visitor = await identify(rt, caller)
    if visitor.identity.is_anonymous:
        raise Unauthorized("sign in as an admin first")
    if not visitor.identity.is_admin:
        raise Forbidden("only an admin may do this")
    return visitor


async def token_owner(rt: Runtime, caller: Caller, user: str | None) -> tuple[Visitor, str]:
    """The caller, and whose tokens it names: its own, or ``user``'s for an admin."""
    visitor = await identify(rt, caller)
    me = visitor.identity.user
    if me is None:
        raise Unauthorized("sign in to manage your tokens")
    if user is not None and user != me and not visitor.identity.is_admin:
        raise Forbidden("only an admin may manage another user's tokens")
    return visitor, user or me


# --- users ---------------------------------------------------------------------------------


async def list_users(rt: Runtime, caller: Caller) -> list[User]:
    await require_admin(rt, caller)
    return await rt.users.list()


async def add_user(rt: Runtime, caller: Caller, name: str, password: str, role: str) -> User:
    await require_admin(rt, caller)
    return await rt.users.add(name, password, role)


async def update_user(
    rt: Runtime, caller: Caller, name: str, *, password: str | None, role: str | None
) -> User:
    """Change a user's password and/or role; return the user as it is now."""
    await require_admin(rt, caller)
    if password is not None:
        await rt.users.change_password(name, password)
    if role is not None:
        await rt.users.change_role(name, role)
    return await rt.users.get(name)


async def remove_user(rt: Runtime, caller: Caller, name: str) -> None:
    visitor = await require_admin(rt, caller)
    if name == visitor.identity.user:
        raise Forbidden("an admin cannot remove themselves: ask another admin")
    await rt.users.remove(name)


# --- tokens --------------------------------------------------------------------------------


async def list_tokens(rt: Runtime, caller: Caller, user: str | None) -> list[Token]:
    """The caller's tokens, or ``user``'s; an admin naming nobody gets everyone's."""
    visitor, owner = await token_owner(rt, caller, user)
    everyone = user is None and visitor.identity.is_admin
    return await rt.tokens.list(None if everyone else owner)


async def add_token(
    rt: Runtime, caller: Caller, user: str | None, *, label: str | None, expires: str | None
) -> IssuedToken:
    _, owner = await token_owner(rt, caller, user)
    return await rt.tokens.add(owner, label=label, expires=expires)


async def remove_token(rt: Runtime, caller: Caller, user: str | None, token: str) -> Token:
    _, owner = await token_owner(rt, caller, user)
    return await rt.tokens.remove(owner, token)


# --- access rules --------------------------------------------------------------------------


async def list_rules(rt: Runtime, caller: Caller, user: str | None) -> list[AccessRule]:
    await require_admin(rt, caller)
    return await rt.access.list(user)


async def grant(
    rt: Runtime, caller: Caller, user: str, pattern: str, permission: str
) -> AccessRule:
    await require_admin(rt, caller)
    return await rt.access.grant(user, pattern, permission)


async def revoke(rt: Runtime, caller: Caller, user: str, pattern: str | None) -> int:
    """Remove ``user``'s rule on ``pattern``, or all of ``user``'s rules; return how many."""
    await require_admin(rt, caller)
    if pattern is None:
        return await rt.access.reset(user)
    await rt.access.revoke(user, pattern)
    return 1
