"""The JSON bodies of the REST API as pydantic models: what validates them documents them.

Request models validate what clients send (:func:`parse_body`); answer models
describe what the doors send back. The OpenAPI document takes its schemas from
both, so the document and the validation cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo

from tandem.core.errors import InvalidInput
from tandem.core.identity.validation import MAX_LABEL, MAX_PASSWORD
from tandem.core.schemas import EVERYONE
from tandem.protocol import patterns
from tandem.protocol.actions import ActionList

M = TypeVar("M", bound=BaseModel)

TopicName = Annotated[
    str,
    Field(pattern=patterns.TOPIC, json_schema_extra={"not": {"pattern": patterns.RESERVED_TOPIC}}),
]
UserName = Annotated[
    str,
    Field(
        pattern=patterns.USER_NAME,
        json_schema_extra={"not": {"pattern": patterns.EVERYONE_ANY_CASE}},
    ),
]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]
# A rule's owner: a user name, or exactly "everyone" (any other case of it is refused).
RuleOwner = Annotated[
    str,
    Field(
        pattern=patterns.RULE_OWNER,
        json_schema_extra={
            "not": {"pattern": patterns.EVERYONE_ANY_CASE, "not": {"const": EVERYONE}}
        },
    ),
]


# ntfy's features that this server does not offer: asking for one is refused with these
# words (ntfy's own where ntfy has them, for a server without the feature configured),
# never answered 200 and dropped.
NOT_OFFERED = {
    "email": "e-mail notifications are not enabled on this server",
    "call": "phone calls are not enabled on this server",
    "attach": "attachments are not enabled on this server",
    "filename": "attachments are not enabled on this server",
    "delay": "scheduled delivery (delay, at, in) is not offered by this server",
    "template": "message templates are not offered by this server",
}


def _refuse(value: str | None, info: ValidationInfo) -> str | None:
    if value:
        raise ValueError(NOT_OFFERED[info.field_name or ""])
    return value


# A JSON field for a feature not offered here: it may only be absent, null or empty.
NotOffered = Annotated[
    str | None, AfterValidator(_refuse), Field(json_schema_extra={"maxLength": 0})
]


def _not_offered(name: str) -> Any:
    return Field(default=None, description=f"Not offered by this server: {NOT_OFFERED[name]}")


class _Body(BaseModel):
    # Strict: a number is not a string, true is not 1. Unknown fields are refused.
    model_config = ConfigDict(strict=True, extra="forbid")


class NewUser(_Body):
    """``POST /api/v1/users``."""

    name: UserName
    password: Password
    role: Literal["admin", "user"] | None = None


class UserChange(_Body):
    """``PATCH /api/v1/users/{name}``: a new password, a new role, or both."""

    password: Password | None = None
    role: Literal["admin", "user"] | None = None


class NewToken(_Body):
    """``POST /api/v1/tokens``: for yourself, or (admins) for ``user``."""

    user: UserName | None = None
    label: Annotated[str, Field(max_length=MAX_LABEL, pattern=patterns.LABEL)] | None = None
    expires: Annotated[str, Field(pattern=patterns.LIFETIME)] | None = Field(
        default=None, description="A lifetime such as 30d, or seconds; none: never"
    )


class NewRule(_Body):
    """``POST /api/v1/access``."""

    user: RuleOwner = Field(description="A user name, or everyone")
    pattern: Annotated[str, Field(pattern=patterns.RULE_PATTERN)] = Field(
        description="Topic names; * matches any run of characters"
    )
    permission: Annotated[str, Field(pattern=patterns.PERMISSION)] = Field(
        description="read-write, read-only, write-only or deny (or ntfy's rw, ro, wo, none)"
    )


class MessageIn(BaseModel):
    """A JSON publish to ``POST /api/v1/topics/{topic}/messages``: the URL names the topic.

    Fields that Tandem does not know are ignored, as ntfy's JSON publishing does.
    """

    model_config = ConfigDict(strict=True)

    topic: TopicName | None = None
    message: str | None = None
    title: str | None = None
    # A whole number, not an int: JSON (and so the document's "integer") cannot tell 4.0
    # from 4, and a bool must not pass for one, as it would with pydantic's lax int.
    priority: (
        Annotated[float, Field(ge=1, le=5, multiple_of=1, json_schema_extra={"type": "integer"})]
        | Annotated[str, Field(pattern=patterns.PRIORITY)]
        | None
    ) = Field(default=None, description="1-5, or min, low, default, high, max, urgent")
    tags: list[str] | None = None
    click: str | None = None
    icon: Annotated[str, Field(pattern=patterns.ICON_URL)] | None = Field(
        default=None, description="The notification's icon: an http(s) URL"
    )
    markdown: bool | None = Field(default=None, description="true: the message is markdown")
    actions: ActionList | None = Field(default=None, description="Up to three action buttons")
    email: NotOffered = _not_offered("email")
    call: NotOffered = _not_offered("call")
    attach: NotOffered = _not_offered("attach")
    filename: NotOffered = _not_offered("filename")
    delay: NotOffered = _not_offered("delay")
    cache: bool | Annotated[str, Field(pattern=patterns.BOOLEAN)] | None = Field(
        default=None, description="false or 'no': deliver live only"
    )


class TopicMessageIn(MessageIn):
    """A JSON publish to ``POST /``, which must name its topic."""

    topic: TopicName


# --- answers ----------------------------------------------------------------------------


class ActionOut(BaseModel):
    """An action button as the message carries it."""

    id: str
    action: Literal["view", "broadcast", "http"]
    label: str
    clear: bool
    url: str | None = None
    method: str | None = None
    headers: dict[str, str] | None = None
    body: str | None = None
    intent: str | None = None
    extras: dict[str, str] | None = None


class Message(BaseModel):
    """A stored message, as every transport carries it."""

    id: str = Field(description="Opaque id; also a resume cursor")
    time: int = Field(description="Unix seconds")
    expires: int = Field(description="Unix seconds")
    event: Literal["message"]
    topic: str
    message: str
    title: str | None = None
    priority: Annotated[int, Field(ge=1, le=5)] | None = None
    tags: list[str] | None = None
    click: str | None = None
    icon: str | None = None
    content_type: Literal["text/markdown"] | None = Field(
        default=None, description="text/markdown, or absent for plain text"
    )
    actions: list[ActionOut] | None = None
    encoding: Literal["base64"] | None = Field(
        default=None, description="base64: the message is binary, base64-encoded (UnifiedPush)"
    )


class MessagePage(BaseModel):
    messages: list[Message]
    next_cursor: str | None = Field(
        description="Pass as cursor= for the next page; null at the end"
    )


class Topic(BaseModel):
    name: str
    messages: int
    last_time: int | None


class Topics(BaseModel):
    topics: list[Topic]


class Health(BaseModel):
    healthy: bool
    database: str


class NtfyHealth(BaseModel):
    healthy: bool


class Stats(BaseModel):
    messages: int = Field(description="Messages published so far")
    messages_rate: float = Field(description="Messages per second over the last minute")


class Success(BaseModel):
    success: bool


class UnifiedPushVersion(BaseModel):
    version: int


class UnifiedPush(BaseModel):
    unifiedpush: UnifiedPushVersion


class Streams(BaseModel):
    door: Literal["wsgi", "asgi"]
    pid: int
    in_use: int
    slots: int | None = Field(description="Streams this process may hold; null: no fixed bound")
    direct: int = Field(description="Streams whose messages the hub writes straight to the socket")


class User(BaseModel):
    name: str
    role: Literal["admin", "user"]
    created: int


class Users(BaseModel):
    users: list[User]


class Token(BaseModel):
    """A token as listed: its public prefix, never the token."""

    user: str
    prefix: str = Field(description="tk_ and the first characters")
    label: str | None
    expires: int | None
    last_used: int | None
    created: int


class Tokens(BaseModel):
    tokens: list[Token]


class IssuedToken(Token):
    """A new token: the only answer that ever carries the token itself."""

    token: str


class Rule(BaseModel):
    user: str = Field(description="A user name, or everyone")
    pattern: str
    permission: Literal["read-write", "read-only", "write-only", "deny"]


class Rules(BaseModel):
    rules: list[Rule]


class Removed(BaseModel):
    removed: int


class Error(BaseModel):
    """Every error, from either door."""

    error: str = Field(description="The HTTP reason phrase")
    message: str = Field(description="What went wrong, for a person")
    code: int = Field(description="The HTTP status")


def parse_body(model: type[M], body: bytes, *, empty: bool = True) -> M:
    """Validate a JSON body with ``model``; any mismatch is :class:`InvalidInput` (400).

    With ``empty``, a body of only white space is an empty object.
    """
    try:
        data: Any = orjson.loads(body) if body.strip() or not empty else {}
    except orjson.JSONDecodeError:
        raise InvalidInput("malformed JSON body") from None
    if not isinstance(data, dict):
        raise InvalidInput("the JSON body must be an object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    problem = exc.errors(include_url=False)[0]
    # The field's name; a union's or a list's inner locations say nothing more to a client.
    where = str(problem["loc"][0]) if problem["loc"] else "body"
    if problem["type"] == "extra_forbidden":
        return f"unknown field: {where}"
    if problem["type"] == "missing":
        return f"missing field: {where}"
    if problem["type"] == "value_error":
        return str(problem["ctx"]["error"])
    return f"invalid {where}: {problem['msg']}"
