"""What a handler sees of a request, and what it may answer.

A handler is a plain function: ``Request`` in, an :data:`Outcome` out. It
never awaits. When it needs the core it returns a :class:`Call`, and the
door's adapter runs the call (across the portal on the WSGI door, with an
``await`` on the ASGI door) and hands the result to ``then``. Parsing and
encoding so stay on the request's own thread under gunicorn, and the one
difference between the doors is how a :class:`Call` is run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeAlias, TypeVar

from tandem.core.gate import Caller
from tandem.core.settings import Settings
from tandem.protocol.caller import caller as read_caller
from tandem.protocol.subscribe import SubscribeRequest
from tandem.typing import HeaderMap, QueryMap

if TYPE_CHECKING:
    from tandem.core.runtime import Runtime
    from tandem.protocol.encode import Format

T = TypeVar("T")

JSON = "application/json"
HTML = "text/html"


class FormData(QueryMap, Protocol):
    """A posted form as WTForms reads it: werkzeug's ``MultiDict`` fits."""

    def getlist(self, key: str, /) -> list[str]: ...

    def __iter__(self) -> Any: ...

    def __contains__(self, key: object, /) -> bool: ...


@dataclass(frozen=True, slots=True)
class StreamUsage:
    """The streams of the serving process: ``slots`` is ``None`` where unbounded."""

    in_use: int
    slots: int | None
    direct: int = 0


class Door(Protocol):
    """What a handler may ask of the door that serves it."""

    @property
    def name(self) -> str:
        """``wsgi`` or ``asgi``."""

    def now(self) -> int:
        """The core's clock, in unix seconds."""

    def stream_usage(self) -> StreamUsage: ...


@dataclass(slots=True)
class Request:
    """One HTTP request, as the door's adapter read it.

    ``endpoint`` is the row's name with its blueprint (``main.topic``).
    ``body`` is read only for rows that declare it, ``form`` only for form rows.
    ``session`` is the framework's signed session; a handler may change it.
    """

    endpoint: str
    method: str
    full_path: str
    args: Mapping[str, str]
    headers: HeaderMap
    query: QueryMap
    session: MutableMapping[str, Any]
    remote_addr: str | None
    settings: Settings
    door: Door
    url_for: Callable[..., str]
    body: bytes = b""
    form: FormData | None = None
    _caller: Caller | None = field(default=None, repr=False)

    @property
    def caller(self) -> Caller:
        """Who the request says it is (read once); malformed credentials raise a 401."""
        if self._caller is None:
            self._caller = read_caller(
                self.headers, self.query, self.session, self.remote_addr, self.settings
            )
        return self._caller


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete answer: bytes with a status, a media type and headers."""

    body: bytes = b""
    status: int = 200
    mimetype: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Page:
    """An HTML page rendered from one of ``tandem/web/templates``."""

    template: str
    context: Mapping[str, Any] = field(default_factory=dict)
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Redirect:
    """A redirect, with an optional note that the next page shows (a flash message)."""

    location: str
    status: int = 303
    flash: str | None = None


@dataclass(frozen=True, slots=True)
class Subscribe:
    """A live stream: the door opens it with its own machinery (threads or the event loop)."""

    caller: Caller
    topics: tuple[str, ...]
    request: SubscribeRequest
    fmt: Format


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """Run ``run`` on the core's event loop, then continue with ``then(result)``."""

    run: Callable[[Runtime], Awaitable[T]]
    then: Callable[[T], Outcome]


Answer: TypeAlias = Reply | Page | Redirect | Subscribe
Outcome: TypeAlias = Answer | Call[Any]
Handler: TypeAlias = Callable[[Request], Outcome]


def json_reply(body: bytes, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(body, status, JSON, headers or {})
