"""Rules for what an operator may name: users, roles, passwords, patterns, permissions.

Messages name the rule, never the rejected value when it may be a secret.
"""

from __future__ import annotations

import re

from tandem.core.durations import parse_duration
from tandem.core.errors import InvalidInput
from tandem.core.identity.rules import ALLOWS, normalize_pattern
from tandem.core.schemas import EVERYONE, Permission, Role

ROLES: tuple[Role, ...] = ("admin", "user")
PERMISSIONS: tuple[Permission, ...] = tuple(ALLOWS)
MAX_PASSWORD = 1024
MAX_LABEL = 128

USER_NAME = r"[A-Za-z0-9][-_.@A-Za-z0-9]{0,63}"
TOPIC_PATTERN = r"[-_A-Za-z0-9*]{1,64}"
# A token label's characters: no control or line-breaking ones.
LABEL_CHARACTERS = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
_LABEL = re.compile(f"{LABEL_CHARACTERS}{{0,{MAX_LABEL}}}")
_USER_NAME = re.compile(USER_NAME)
_PATTERN = re.compile(TOPIC_PATTERN)


def validate_user_name(name: str) -> str:
    """Return ``name`` if it may name a user, else raise :class:`InvalidInput`."""
    if not _USER_NAME.fullmatch(name):
        raise InvalidInput(
            "invalid user name: use 1 to 64 letters, digits, '-', '_', '.' or '@', "
            "starting with a letter or digit"
        )
    if name.lower() == EVERYONE:
        raise InvalidInput(f"invalid user name: {EVERYONE!r} is reserved for rules for everyone")
    return name


def is_user_name(name: str) -> bool:
    """Tell whether ``name`` could name a user (no lookup for names that cannot)."""
    return _USER_NAME.fullmatch(name) is not None and name.lower() != EVERYONE


def validate_owner(name: str) -> str:
    """A rule's owner: ``everyone`` or a user name."""
    return name if name == EVERYONE else validate_user_name(name)


def validate_password(password: str) -> str:
    if not password:
        raise InvalidInput("invalid password: it must not be empty")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"invalid password: at most {MAX_PASSWORD} characters")
    try:
        password.encode()
    except UnicodeEncodeError:
        raise InvalidInput("invalid password: it is not valid text") from None
    return password


def validate_role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidInput("invalid role: use admin or user")
    return role


# ntfy's short forms.
_PERMISSION_ALIASES: dict[str, Permission] = {
    "rw": "read-write",
    "read": "read-only",
    "ro": "read-only",
    "write": "write-only",
    "wo": "write-only",
    "none": "deny",
    "deny-all": "deny",
}


def validate_permission(permission: str) -> Permission:
    """A permission, or one of ntfy's short forms (``rw``, ``ro``, ``wo``, ``none`` ...)."""
    value = permission.strip().lower()
    if value in PERMISSIONS:
        return value
    if value in _PERMISSION_ALIASES:
        return _PERMISSION_ALIASES[value]
    raise InvalidInput("invalid permission: use " + ", ".join(PERMISSIONS))


def validate_pattern(pattern: str) -> str:
    """Return the normalized topic pattern (runs of ``*`` collapsed), or raise."""
    if not _PATTERN.fullmatch(pattern):
        raise InvalidInput(
            "invalid topic pattern: use 1 to 64 characters of letters, digits, '-', '_' and '*'"
        )
    return normalize_pattern(pattern)


def validate_label(label: str | None) -> str | None:
    """A token label: at most :data:`MAX_LABEL` characters, none of them control or
    line-breaking ones; trimmed, and empty is none."""
    if label is None:
        return None
    if not _LABEL.fullmatch(label):
        raise InvalidInput(
            f"invalid label: at most {MAX_LABEL} characters, without control characters"
        )
    return label.strip() or None


def validate_lifetime(expires: str | int | None) -> int | None:
    """A token's lifetime in seconds, from a duration (``30d``) or a number of seconds."""
    if expires is None:
        return None
    if isinstance(expires, str):
        try:
            expires = parse_duration(expires)
        except ValueError:
            raise InvalidInput(
                "invalid expiry: use a duration such as 12h or 30d (s, m, h or d)"
            ) from None
    if expires <= 0:
        raise InvalidInput("invalid expiry: it must be longer than zero")
    return expires
