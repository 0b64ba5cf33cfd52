"""Parse ntfy publish requests: ``PUT/POST /<topic>``, ``GET /<topic>/publish`` and
``POST /`` with a JSON body.

Options ntfy knows but Tandem does not implement yet (``Email``, ``Delay``,
``Attach``, ...) are accepted and ignored; they are never an error.
"""

from __future__ import annotations

import base64
import re

import orjson

from tandem.core.errors import InvalidInput, PayloadTooLarge
from tandem.core.schemas import MessageAction, NewMessage
from tandem.protocol.actions import actions_from_json, parse_actions
from tandem.protocol.headers import Options
from tandem.protocol.models import NOT_OFFERED, MessageIn, TopicMessageIn, parse_body
from tandem.protocol.patterns import FALSE_WORDS, PRIORITY_NAMES, TRUE_WORDS
from tandem.protocol.topics import validate_topic
from tandem.typing import HeaderMap, QueryMap

EMPTY_MESSAGE = "triggered"


MESSAGE = ("x-message", "message", "m")
TITLE = ("x-title", "title", "ti", "t")
PRIORITY = ("x-priority", "priority", "prio", "p")
TAGS = ("x-tags", "tags", "tag", "ta")
CLICK = ("x-click", "click")
ICON = ("x-icon", "icon")
ACTIONS = ("x-actions", "actions", "action")
MARKDOWN = ("x-markdown", "markdown", "md")
CONTENT_TYPE = ("content-type", "content_type")
MARKDOWN_TYPE = "text/markdown"

# ntfy's options for features this server does not offer (models.NOT_OFFERED says why).
UNSUPPORTED: tuple[tuple[tuple[str, ...], str], ...] = (
    (("x-email", "x-e-mail", "email", "e-mail", "mail", "e"), NOT_OFFERED["email"]),
    (("x-call", "call"), NOT_OFFERED["call"]),
    (("x-attach", "attach", "a", "x-filename", "filename", "file", "f"), NOT_OFFERED["attach"]),
    (("x-delay", "delay", "x-at", "at", "x-in", "in"), NOT_OFFERED["delay"]),
)
TEMPLATE = ("x-template", "template", "tpl")
UNIFIEDPUSH = ("x-unifiedpush", "unifiedpush", "up")
# ntfy takes any http(s) URL as an icon, and refuses anything else.
_ICON_URL = re.compile(r"^https?://", re.IGNORECASE)
CACHE = ("x-cache", "cache")


def parse_publish(
    topic: str,
    headers: HeaderMap,
    query: QueryMap,
    body: bytes,
    *,
    max_body: int,
) -> NewMessage:
    """Parse ``PUT/POST /<topic>`` or ``GET /<topic>/publish?message=...``.

    The message is the body; when the body is empty, the ``message`` option;
    when that is empty too, ntfy's ``"triggered"``.
    """
    topic = validate_topic(topic)
    if len(body) > max_body:
        raise PayloadTooLarge(f"message too large: the limit is {max_body} bytes")
    options = Options(headers, query)
    _refuse_unsupported(options)
    if parse_bool(options.get(*UNIFIEDPUSH), default=False, name="up"):
        # UnifiedPush: the body as it came (not trimmed), base64 when it is not text.
        text, encoding = _push_payload(body)
    else:
        text, encoding = _decode(body).strip(), None
    if not text:
        # ntfy lets a one-line client write "\n" for a line break in the parameter.
        text = (options.get(*MESSAGE) or "").replace("\\n", "\n").strip()
    return _new_message(
        topic=topic,
        message=text,
        title=options.get(*TITLE),
        priority=parse_priority(options.get(*PRIORITY)),
        tags=parse_tags(options.get(*TAGS)),
        click=options.get(*CLICK),
        icon=parse_icon(options.get(*ICON)),
        content_type=_content_type(
            parse_bool(options.get(*MARKDOWN), default=False, name="markdown"),
            options.get(*CONTENT_TYPE),
        ),
        actions=parse_actions(options.get(*ACTIONS)),
        encoding=encoding,
        cache=parse_bool(options.get(*CACHE), default=True, name="cache"),
        max_body=max_body,
    )


def parse_json_publish(body: bytes, *, max_body: int, topic: str | None = None) -> NewMessage:
    """Parse a JSON publish (:class:`~tandem.protocol.models.MessageIn`).

    ``topic`` is given when the URL names it (the REST API); otherwise the body must.
    """
    if len(body) > max_body:
        raise PayloadTooLarge(f"request body too large: the limit is {max_body} bytes")
    data = parse_body(TopicMessageIn if topic is None else MessageIn, body, empty=False)
    # The model checked the actions' shape; their own parser builds them, with ntfy's rules.
    raw_actions = data.model_dump(include={"actions"}, exclude_none=True).get("actions")
    topic = topic or data.topic
    if topic is None:  # TopicMessageIn requires it
        raise InvalidInput("missing field 'topic'")
    priority = data.priority if isinstance(data.priority, str | None) else int(data.priority)
    cache = data.cache
    return _new_message(
        topic=validate_topic(topic),
        message=(data.message or "").strip(),
        title=data.title,
        priority=parse_priority(None if priority is None else str(priority)),
        tags=tuple(tag.strip() for tag in data.tags or () if tag.strip()),
        click=data.click,
        icon=parse_icon(data.icon),
        content_type=_content_type(bool(data.markdown), None),
        actions=actions_from_json(raw_actions) if raw_actions is not None else (),
        cache=cache if isinstance(cache, bool) else parse_bool(cache, True, "cache"),
        max_body=max_body,
    )


def parse_priority(value: str | None) -> int | None:
    """Parse ``1``-``5`` or a priority name; ``None`` or blank means not given."""
    if value is None or not value.strip():
        return None
    value = value.strip().lower()
    if value in PRIORITY_NAMES:
        return PRIORITY_NAMES[value]
    if value in {"1", "2", "3", "4", "5"}:
        return int(value)
    raise InvalidInput("invalid priority: use 1-5 or min, low, default, high, max, urgent")


def parse_tags(value: str | None) -> tuple[str, ...]:
    """Parse a comma-separated tag list, dropping blanks."""
    if not value:
        return ()
    return tuple(tag for tag in (part.strip() for part in value.split(",")) if tag)


def parse_bool(value: str | None, default: bool, name: str) -> bool:
    """Parse ntfy's boolean options (``yes``/``no``, ``1``/``0``, ``true``/``false``)."""
    if value is None or not value.strip():
        return default
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise InvalidInput(f"invalid value for {name!r}: use yes or no")


_REFUSABLE = frozenset(alias for aliases, _ in UNSUPPORTED for alias in aliases) | set(TEMPLATE)


def _refuse_unsupported(options: Options) -> None:
    # Every publish passes here: one set intersection, and the lookups only when it hits.
    if _REFUSABLE.isdisjoint(options.names()):
        return
    for aliases, why in UNSUPPORTED:
        if options.get(*aliases) is not None:
            raise InvalidInput(why)
    template = options.get(*TEMPLATE)
    if template is not None and template.lower() not in FALSE_WORDS:
        raise InvalidInput(NOT_OFFERED["template"])


def parse_icon(value: str | None) -> str | None:
    """An icon's URL: ``http(s)://`` only, as ntfy has it; blank means none."""
    if value is None or not value.strip():
        return None
    if not _ICON_URL.match(value.strip()):
        raise InvalidInput("invalid icon URL: use an http:// or https:// URL")
    return value.strip()


def _content_type(markdown: bool, content_type: str | None) -> str | None:
    # ntfy: the markdown option, or a request sent as text/markdown (parameters aside).
    declared = (content_type or "").split(";")[0].strip().lower()
    return MARKDOWN_TYPE if markdown or declared == MARKDOWN_TYPE else None


def _new_message(
    *,
    topic: str,
    message: str,
    title: str | None,
    priority: int | None,
    tags: tuple[str, ...],
    click: str | None,
    cache: bool,
    max_body: int,
    icon: str | None = None,
    content_type: str | None = None,
    actions: tuple[MessageAction, ...] = (),
    encoding: str | None = None,
) -> NewMessage:
    message = message or EMPTY_MESSAGE
    # A base64 message stands for a body that was within the limit, and is a third longer.
    if encoding is None and len(message.encode()) > max_body:
        raise PayloadTooLarge(f"message too large: the limit is {max_body} bytes")
    return NewMessage(
        topic=topic,
        message=message,
        title=title.strip() or None if title else None,
        priority=priority,
        tags=tags,
        click=click.strip() or None if click else None,
        icon=icon,
        content_type=content_type,
        actions=actions,
        encoding=encoding,
        cache=cache,
    )


def _push_payload(body: bytes) -> tuple[str, str | None]:
    try:
        return body.decode(), None
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


def _decode(body: bytes) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError:
        raise InvalidInput("the message body must be UTF-8 text") from None


def parse_ws_publish(data: str | bytes, *, topics: tuple[str, ...], max_body: int) -> NewMessage:
    """Parse a publish sent over a WebSocket: the JSON body of ``POST /``.

    ``topic`` may be left out when the socket subscribes to exactly one topic.
    """
    body = data.encode() if isinstance(data, str) else data
    default = topics[0] if len(topics) == 1 else None
    try:
        named = orjson.loads(body).get("topic") if body.lstrip().startswith(b"{") else None
    except orjson.JSONDecodeError:
        named = None
    if named is None and default is None:
        raise InvalidInput("missing field 'topic': this socket subscribes to several topics")
    return parse_json_publish(body, max_body=max_body, topic=None if named is not None else default)
