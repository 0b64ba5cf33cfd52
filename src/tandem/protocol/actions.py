"""ntfy's action buttons: ``view``, ``broadcast`` and ``http``, in either of ntfy's formats.

A header carries them in the simple format (``view, Open, https://x; http, Ping,
https://y, method=PUT``) or as a JSON array; a JSON publish carries the array. Both
end as the same :class:`~tandem.core.schemas.MessageAction` tuples, validated as ntfy does:
at most three, a known action, a label, a URL where the action opens one, no body on
an ``http`` GET or HEAD.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tandem.core.errors import InvalidInput
from tandem.core.schemas import MessageAction
from tandem.protocol.patterns import any_case

MAX_ACTIONS = 3
KINDS = ("view", "broadcast", "http")
_WITH_URL = frozenset({"view", "http"})
_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 10
_KEY = re.compile(r"([-.\w]+)\s*=\s*")
_SPACES = " \t\r\n"
_TRUE, _FALSE = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})
# The fields a section may name; "headers.X" and "extras.X" fill those maps.
_FIELDS = frozenset({"action", "label", "clear", "url", "method", "body", "intent"})


def _kind(name: str) -> Any:
    return Field(pattern=f"^{any_case(name)}$", description=f"{name} (in any case)")


_LABEL = Field(min_length=1, description="The button's text")
_URL = Field(min_length=1)


class _ActionIn(BaseModel):
    # Fields ntfy does not know are ignored, as ntfy ignores them.
    model_config = ConfigDict(strict=True)

    label: str = _LABEL
    clear: bool = Field(default=False, description="Dismiss the notification once done")


class ViewAction(_ActionIn):
    """Open a website or app."""

    action: str = _kind("view")
    url: str = _URL


class BroadcastAction(_ActionIn):
    """Send an Android broadcast intent."""

    action: str = _kind("broadcast")
    intent: str | None = None
    extras: dict[str, str] | None = None


class HttpAction(_ActionIn):
    """Send an HTTP request (POST when no method is given); GET and HEAD carry no body."""

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "not": {
                "required": ["method", "body"],
                "properties": {
                    "method": {
                        "type": "string",
                        "pattern": f"^({any_case('get')}|{any_case('head')})$",
                    },
                    "body": {"type": "string", "minLength": 1},
                },
            }
        },
    )

    action: str = _kind("http")
    url: str = _URL
    method: str | None = None
    headers: dict[str, str] | None = None
    body: str | None = None


ActionIn = ViewAction | BroadcastAction | HttpAction
ActionList = Annotated[list[ActionIn], Field(max_length=MAX_ACTIONS)]
_ACTIONS = TypeAdapter(ActionList)


def parse_actions(text: str | None) -> tuple[MessageAction, ...]:
    """The actions of an ``X-Actions`` header (either format); blank means none."""
    if text is None or not text.strip():
        return ()
    text = text.strip()
    if text.startswith("["):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise InvalidInput("invalid actions: malformed JSON array") from None
        return actions_from_json(data)
    return _validated([_simple_action(part) for part in _SimpleParser(text).actions()])


def actions_from_json(data: Any) -> tuple[MessageAction, ...]:
    """The actions of a JSON array (a JSON publish's ``actions``, or a header's)."""
    if not isinstance(data, list):
        raise InvalidInput("invalid actions: use a JSON array of actions")
    return _validated(data)


def _validated(given_actions: list[Any]) -> tuple[MessageAction, ...]:
    """ntfy's rules, said plainly; then the models (:data:`ActionList`) for the types."""
    if len(given_actions) > MAX_ACTIONS:
        raise InvalidInput(f"invalid actions: at most {MAX_ACTIONS} actions")
    for given in given_actions:
        if not isinstance(given, dict):
            raise InvalidInput("invalid actions: each action is an object")
        kind = str(given.get("action") or "").lower()
        method = str(given.get("method") or "").upper()
        if kind not in KINDS:
            raise InvalidInput(f"invalid actions: the action must be one of {', '.join(KINDS)}")
        if not given.get("label"):
            raise InvalidInput("invalid actions: every action needs a label")
        if kind in _WITH_URL and not given.get("url"):
            raise InvalidInput(f"invalid actions: a {kind} action needs a url")
        if kind == "http" and method in ("GET", "HEAD") and given.get("body"):
            raise InvalidInput(f"invalid actions: an http action with {method} has no body")
    try:
        models = _ACTIONS.validate_python(given_actions)
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in problem["loc"][2:]) or "action"
        raise InvalidInput(f"invalid actions: {where}: {problem['msg']}") from None
    actions = []
    for model in models:
        given = model.model_dump()
        kind = given["action"].lower()
        verb = (given.get("method") or "").upper() or None
        actions.append(
            MessageAction(
                id="".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH)),
                action=kind,
                label=given["label"],
                clear=bool(given.get("clear")),
                url=given.get("url") or None,
                method=verb,
                headers=tuple(sorted((given.get("headers") or {}).items())),
                body=given.get("body") or None,
                intent=given.get("intent") or None,
                extras=tuple(sorted((given.get("extras") or {}).items())),
            )
        )
    return tuple(actions)


def _simple_action(sections: list[tuple[str, str]]) -> dict[str, Any]:
    """Name the sections of one simple-format action: the first three may go unnamed."""
    fields: dict[str, Any] = {}
    for index, (key, value) in enumerate(sections):
        if not key:
            if index == 0:
                key = "action"
            elif index == 1:
                key = "label"
            elif index == 2 and (fields.get("action") or "").lower() in _WITH_URL:
                key = "url"
            else:
                raise InvalidInput(f"invalid actions: term {value!r} has no name")
        if key.startswith(("headers.", "extras.")):
            group, _, name = key.partition(".")
            fields.setdefault(group, {})[name] = value
        elif key.lower() in _FIELDS:
            fields[key.lower()] = _clear(value) if key.lower() == "clear" else value
        else:
            raise InvalidInput(f"invalid actions: unknown key {key!r}")
    return fields


def _clear(value: str) -> bool:
    lowered = value.lower()
    if lowered not in _TRUE | _FALSE:
        raise InvalidInput("invalid actions: clear takes true, yes, 1, false, no or 0")
    return lowered in _TRUE


class _SimpleParser:
    """ntfy's simple format: actions split by ``;``, sections by ``,``, values may be quoted."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def actions(self) -> list[list[tuple[str, str]]]:
        found = []
        while self.pos < len(self.text):
            sections, last = [], False
            while not last:
                key, value, last = self._section()
                sections.append((key, value))
            found.append(sections)
            self._skip_spaces()
        return found

    def _section(self) -> tuple[str, str, bool]:
        """One ``key=value`` (or bare value); ``last`` when it ended the action."""
        self._skip_spaces()
        key = ""
        if match := _KEY.match(self.text, self.pos):
            key, self.pos = match.group(1), match.end()
        char = self._peek()
        if char in ("'", '"'):
            return (key, *self._quoted(char))
        end = self.pos
        while end < len(self.text) and self.text[end] not in ",;":
            end += 1
        value, last = (
            self.text[self.pos : end].strip(),
            end >= len(self.text) or self.text[end] == ";",
        )
        self.pos = end + 1
        return key, value, last

    def _quoted(self, quote: str) -> tuple[str, bool]:
        start = self.pos + 1
        end = start
        while True:
            if end >= len(self.text):
                raise InvalidInput(f"invalid actions: the quote at position {start} never ends")
            if self.text[end] == quote and self.text[end - 1] != "\\":
                break
            end += 1
        value = self.text[start:end].replace("\\" + quote, quote)
        self.pos = end + 1
        self._skip_spaces()
        char = self._peek()
        if char not in ("", ",", ";"):
            raise InvalidInput(f"invalid actions: unexpected {char!r} at position {self.pos}")
        self.pos += 1
        return value, char in ("", ";")

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _SPACES:
            self.pos += 1


def action_dict(action: MessageAction) -> dict[str, Any]:
    """An action as the message JSON carries it (ntfy's fields; unset ones left out)."""
    data: dict[str, Any] = {
        "id": action.id,
        "action": action.action,
        "label": action.label,
        "clear": action.clear,
    }
    for name in ("url", "method", "body", "intent"):
        if (value := getattr(action, name)) is not None:
            data[name] = value
    if action.headers:
        data["headers"] = dict(action.headers)
    if action.extras:
        data["extras"] = dict(action.extras)
    return data
