"""Plain data objects that cross every boundary: portal, protocol and views.

The core never hands out ORM instances; it hands out these frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SinceKind = Literal["all", "latest", "none", "time", "seq"]


@dataclass(frozen=True, slots=True)
class MessageAction:
    """An action button of a message (ntfy's ``view``, ``broadcast`` or ``http``)."""

    id: str
    action: str
    label: str
    clear: bool = False
    url: str | None = None
    method: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    intent: str | None = None
    extras: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message as a client asked to publish it, already validated."""

    topic: str
    message: str
    title: str | None = None
    priority: int | None = None
    tags: tuple[str, ...] = ()
    click: str | None = None
    icon: str | None = None
    # None is plain text; "text/markdown" asks clients to render markdown.
    content_type: str | None = None
    actions: tuple[MessageAction, ...] = ()
    # None: the message is the text; "base64": binary, base64-encoded (UnifiedPush).
    encoding: str | None = None
    cache: bool = True


@dataclass(frozen=True, slots=True)
class Message:
    """A published message. ``seq`` orders it; ``id`` is its opaque public cursor."""

    id: str
    seq: int
    time: int
    expires: int
    topic: str
    message: str
    title: str | None = None
    priority: int | None = None
    tags: tuple[str, ...] = ()
    click: str | None = None
    icon: str | None = None
    content_type: str | None = None
    actions: tuple[MessageAction, ...] = ()
    encoding: str | None = None


@dataclass(frozen=True, slots=True)
class Since:
    """Where a subscription or poll starts.

    ``time`` keeps messages published at or after ``value`` (unix seconds);
    ``seq`` keeps messages after the sequence number ``value``.
    """

    kind: SinceKind
    value: int = 0


SINCE_ALL = Since("all")
SINCE_NONE = Since("none")
SINCE_LATEST = Since("latest")


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """ntfy's subscription filters. An empty filter matches everything.

    ``priorities`` matches the effective priority (3 when none was given),
    ``tags`` must all be present, ``title`` and ``message`` match exactly.
    """

    priorities: frozenset[int] = frozenset()
    tags: frozenset[str] = frozenset()
    title: str | None = None
    message: str | None = None

    def matches(self, msg: Message) -> bool:
        if self.priorities and (msg.priority or 3) not in self.priorities:
            return False
        if self.tags and not self.tags.issubset(msg.tags):
            return False
        if self.title is not None and msg.title != self.title:
            return False
        return self.message is None or msg.message == self.message


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Stored messages of ``topics`` from ``since`` on, oldest first."""

    topics: tuple[str, ...]
    since: Since = SINCE_ALL
    filter: MessageFilter = field(default_factory=MessageFilter)
    limit: int | None = None
    # Also return live-only (X-Cache: no) messages after this sequence number:
    # a stream catching up reads what it would otherwise have received live.
    live_after: int | None = None


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of a topic's history; ``next_cursor`` is ``None`` on the last page."""

    messages: list[Message]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class TopicStat:
    """A topic that has stored messages."""

    name: str
    messages: int
    last_time: int | None


@dataclass(frozen=True, slots=True)
class Stats:
    """ntfy's public server figures: messages ever published, and per second lately."""

    messages: int
    messages_rate: float


# --- identity and access ----------------------------------------------------------------

Role = Literal["admin", "user"]
Permission = Literal["read-write", "read-only", "write-only", "deny"]
Action = Literal["read", "write"]

# The owner name of access rules that apply to every caller, signed in or not.
EVERYONE = "everyone"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling. ``user`` is ``None`` for anonymous callers.

    ``session_version`` is the user's current version for the web session
    cookie; it changes when the password or role changes, and is not compared.
    """

    user: str | None
    role: Role | None
    session_version: str | None = field(default=None, repr=False, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_anonymous(self) -> bool:
        return self.user is None


ANONYMOUS = Identity(None, None)


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    """A user name and password (``Authorization: Basic``)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TokenCredentials:
    """An access token (``Bearer``, or Basic with an empty user)."""

    token: str = field(repr=False)


Credentials = BasicCredentials | TokenCredentials


@dataclass(frozen=True, slots=True)
class User:
    """A user account, without its password hash."""

    name: str
    role: Role
    created: int


@dataclass(frozen=True, slots=True)
class Token:
    """An access token as listed: never the token, only its public ``prefix`` (``tk_abcdef``)."""

    user: str
    prefix: str
    label: str | None
    expires: int | None
    last_used: int | None
    created: int


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: ``token`` is the secret, shown to its owner this once."""

    token: str = field(repr=False)
    info: Token


@dataclass(frozen=True, slots=True)
class AccessRule:
    """``user`` (a user name or ``everyone``) gets ``permission`` on topics matching ``pattern``.

    ``*`` in a pattern matches any run of characters, the empty one included.
    """

    user: str
    pattern: str
    permission: Permission
