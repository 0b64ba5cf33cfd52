"""JSON bodies of the REST admin API: ``/api/v1/users``, ``/tokens`` and ``/access``."""

from __future__ import annotations

from typing import Any

import orjson

from tandem.core.errors import InvalidInput
from tandem.core.schemas import AccessRule, IssuedToken, Token, User
from tandem.typing import QueryMap


class Fields:
    """The string fields of a JSON body: ``fields["name"]`` (required) or ``fields.get(...)``."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def get(self, name: str) -> str | None:
        return self._values.get(name)


def parse_object(
    body: bytes, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> Fields:
    """A JSON object of string fields: ``required`` ones must be there, unknown ones are refused."""
    try:
        data = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        raise InvalidInput("invalid JSON body") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}")
    missing = [name for name in required if data.get(name) is None]
    if missing:
        raise InvalidInput(f"missing field(s): {', '.join(missing)}")
    for name, value in data.items():
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string")
    return Fields({name: value for name, value in data.items() if value is not None})


def revoke_args(query: QueryMap) -> tuple[str, str | None]:
    """``?user=NAME[&pattern=P]`` of ``DELETE /api/v1/access``: one rule, or all of the user's."""
    user = query.get("user")
    if not user:
        raise InvalidInput("name the rules to remove: ?user=NAME (or everyone), and &pattern=P")
    return user, query.get("pattern") or None


def user_dict(user: User) -> dict[str, Any]:
    return {"name": user.name, "role": user.role, "created": user.created}


def token_dict(token: Token) -> dict[str, Any]:
    """A token as listed: its public prefix, never the token."""
    return {
        "user": token.user,
        "prefix": token.prefix,
        "label": token.label,
        "expires": token.expires,
        "last_used": token.last_used,
        "created": token.created,
    }


def rule_dict(rule: AccessRule) -> dict[str, Any]:
    return {"user": rule.user, "pattern": rule.pattern, "permission": rule.permission}


def users_body(users: list[User]) -> bytes:
    return orjson.dumps({"users": [user_dict(user) for user in users]})


def user_body(user: User) -> bytes:
    return orjson.dumps(user_dict(user))


def tokens_body(tokens: list[Token]) -> bytes:
    return orjson.dumps({"tokens": [token_dict(token) for token in tokens]})


def issued_token_body(issued: IssuedToken) -> bytes:
    """A new token: the only answer that ever carries the token itself."""
    return orjson.dumps({"token": issued.token, **token_dict(issued.info)})


def token_body(token: Token) -> bytes:
    return orjson.dumps(token_dict(token))


def rules_body(rules: list[AccessRule]) -> bytes:
    return orjson.dumps({"rules": [rule_dict(rule) for rule in rules]})


def rule_body(rule: AccessRule) -> bytes:
    return orjson.dumps(rule_dict(rule))


def removed_body(count: int) -> bytes:
    return orjson.dumps({"removed": count})
