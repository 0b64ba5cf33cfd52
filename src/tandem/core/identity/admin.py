"""Administration of users, tokens and access rules (the CLI and the REST API call these).

Each class is a small facade over :mod:`tandem.core.identity.store` that
validates its input and tells the :class:`IdentityService` of this process
that something changed, so the change applies here at once.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from tandem.core.db import database_errors
from tandem.core.errors import Conflict
from tandem.core.identity import store
from tandem.core.identity.credentials import (
    looks_like_token,
    new_session_version,
    new_token,
    token_digest,
    token_prefix,
)
from tandem.core.identity.service import IdentityService
from tandem.core.identity.validation import (
    validate_label,
    validate_lifetime,
    validate_owner,
    validate_password,
    validate_pattern,
    validate_permission,
    validate_role,
    validate_user_name,
)
from tandem.core.schemas import AccessRule, IssuedToken, Token, User


class Users:
    """User accounts: ``rt.users.add("alice", password)``."""

    def __init__(self, service: IdentityService) -> None:
        self._service = service

    async def add(self, name: str, password: str, role: str = "user") -> User:
        """Create a user; :class:`Conflict` when the name is taken."""
        validate_user_name(name)
        validate_password(password)
        valid_role = validate_role(role)
        password_hash = await self._service.passwords.hash(password)
        async with database_errors():
            try:
                user = await store.add_user(
                    engines=self._service.engines,
                    name=name,
                    password_hash=password_hash,
                    role=valid_role,
                    version=new_session_version(),
                    now=self._service.clock(),
                )
            except IntegrityError:  # another process added the same name just now
                raise Conflict(f"user {name!r} exists") from None
        self._service.changed()
        return user

    async def remove(self, name: str) -> None:
        """Remove a user with its tokens and access rules."""
        async with database_errors():
            await store.remove_user(engines=self._service.engines, name=name)
        self._service.changed()

    async def list(self) -> list[User]:
        async with database_errors():
            return await store.list_users(engines=self._service.engines)

    async def get(self, name: str) -> User:
        """One user; :class:`NotFound` if there is none of that name."""
        async with database_errors():
            return await store.get_user(engines=self._service.engines, name=name)

    async def change_password(self, name: str, password: str) -> None:
        """Set a new password; the user's web sessions end."""
        validate_password(password)
        password_hash = await self._service.passwords.hash(password)
        await self._update(name, password_hash=password_hash)

    async def change_role(self, name: str, role: str) -> None:
        """Set a new role; the user's web sessions end."""
        await self._update(name, role=validate_role(role))

    async def _update(self, name: str, **values: str) -> None:
        async with database_errors():
            await store.update_user(
                engines=self._service.engines,
                name=name,
                session_version=new_session_version(),
                **values,
            )
        self._service.changed()


class Tokens:
    """Access tokens: ``rt.tokens.add("alice", label="ci", expires="30d")``."""

    def __init__(self, service: IdentityService) -> None:
        self._service = service

    async def add(
        self, user: str, *, label: str | None = None, expires: str | int | None = None
    ) -> IssuedToken:
        """Issue a token for ``user``. The result holds the token itself, this once.

        ``expires`` is a lifetime: a duration such as ``30d``, or seconds.
        """
        clean_label = validate_label(label)
        lifetime = validate_lifetime(expires)
        now = self._service.clock()
        token = new_token()
        async with database_errors():
            info = await store.add_token(
                engines=self._service.engines,
                user=user,
                digest=token_digest(token),
                prefix=token_prefix(token),
                label=clean_label,
                expires=None if lifetime is None else now + lifetime,
                now=now,
            )
        self._service.changed()
        return IssuedToken(token, info)

    async def list(self, user: str | None = None) -> list[Token]:
        """The tokens of ``user``, or of everybody; :class:`NotFound` for an unknown user."""
        async with database_errors():
            return await store.list_tokens(engines=self._service.engines, user=user)

    async def remove(self, user: str, token: str) -> Token:
        """Remove a token of ``user``, given whole or by its listed prefix (``tk_AbCdEf``)."""
        whole = looks_like_token(token)
        async with database_errors():
            removed = await store.remove_token(
                engines=self._service.engines,
                user=user,
                digest=token_digest(token) if whole else None,
                prefix=None if whole else _shown_prefix(token),
            )
        self._service.changed()
        return removed


class Access:
    """Access rules: ``rt.access.grant("everyone", "public-*", "read-only")``."""

    def __init__(self, service: IdentityService) -> None:
        self._service = service

    async def grant(self, user: str, pattern: str, permission: str) -> AccessRule:
        """Give ``user`` (or ``everyone``) ``permission`` on topics matching ``pattern``.

        A rule for the same user and pattern is replaced.
        """
        rule = AccessRule(
            validate_owner(user), validate_pattern(pattern), validate_permission(permission)
        )
        async with database_errors():
            await store.grant(
                engines=self._service.engines,
                owner=rule.user,
                pattern=rule.pattern,
                permission=rule.permission,
            )
        self._service.changed()
        return rule

    async def revoke(self, user: str, pattern: str) -> None:
        """Remove the rule of ``user`` on exactly ``pattern``; :class:`NotFound` if none."""
        owner, normalized = validate_owner(user), validate_pattern(pattern)
        async with database_errors():
            await store.revoke(engines=self._service.engines, owner=owner, pattern=normalized)
        self._service.changed()

    async def list(self, user: str | None = None) -> list[AccessRule]:
        """Rules by user and pattern; only ``user``'s when given."""
        async with database_errors():
            return await store.list_rules(engines=self._service.engines, owner=user)

    async def reset(self, user: str | None = None) -> int:
        """Remove every rule of ``user``, or every rule at all; return how many."""
        owner = None if user is None else validate_owner(user)
        async with database_errors():
            removed = await store.reset(engines=self._service.engines, owner=owner)
        self._service.changed()
        return removed


def _shown_prefix(value: str) -> str:
    # Listed as tk_AbCdEf; accept it with or without tk_.
    return value if value.startswith("tk_") else "tk_" + value
