"""Action buttons, as ntfy's publishing docs define them: both formats, and ntfy's rules."""

from __future__ import annotations

from typing import Any

import pytest

from tandem.core.errors import InvalidInput
from tandem.protocol.actions import action_dict, actions_from_json, parse_actions


def parsed(text: str) -> list[dict[str, Any]]:
    """The actions of ``text`` as the message JSON has them, without their random ids."""
    found = []
    for action in parse_actions(text):
        data = action_dict(action)
        assert len(data.pop("id")) == 10
        found.append(data)
    return found


def test_the_docs_example_in_the_short_format() -> None:
    text = (
        "view, Open portal, https://home.nest.com/, clear=true; "
        "http, Turn down, https://api.nest.com/, body='{\"temperature\": 65}'"
    )
    assert parsed(text) == [
        {"action": "view", "label": "Open portal", "clear": True, "url": "https://home.nest.com/"},
        {
            "action": "http",
            "label": "Turn down",
            "clear": False,
            "url": "https://api.nest.com/",
            "body": '{"temperature": 65}',
        },
    ]


def test_the_long_format_with_headers_and_extras() -> None:
    text = (
        "action=http, label=Open door, url=https://api.example.com/door, method=put, "
        "headers.Authorization=Bearer zAzsx1sk, headers.X-Other=1; "
        "action=broadcast, label=Take picture, intent=io.heckel.ntfy.USER_ACTION, "
        "extras.cmd=pic, extras.camera=front"
    )
    assert parsed(text) == [
        {
            "action": "http",
            "label": "Open door",
            "clear": False,
            "url": "https://api.example.com/door",
            "method": "PUT",
            "headers": {"Authorization": "Bearer zAzsx1sk", "X-Other": "1"},
        },
        {
            "action": "broadcast",
            "label": "Take picture",
            "clear": False,
            "intent": "io.heckel.ntfy.USER_ACTION",
            "extras": {"camera": "front", "cmd": "pic"},
        },
    ]


@pytest.mark.parametrize(
    ("text", "label"),
    [
        (
            'view, "Look ma, commas and \\"quotes\\" too", https://x',
            'Look ma, commas and "quotes" too',
        ),
        ("view, 'semi; colons', https://x", "semi; colons"),
        ("  VIEW ,  spaced label  , https://x  ", "spaced label"),
        ("view, Ünïcödé ✓, https://x", "Ünïcödé ✓"),
    ],
)
def test_quotes_spaces_case_and_unicode(text: str, label: str) -> None:
    (action,) = parsed(text)
    assert (action["action"], action["label"], action["url"]) == ("view", label, "https://x")


def test_the_json_array_format_in_a_header() -> None:
    text = '[{"action": "view", "label": "Open", "url": "https://x", "clear": true}]'
    assert parsed(text) == [{"action": "view", "label": "Open", "clear": True, "url": "https://x"}]


def test_a_json_array_of_a_json_publish() -> None:
    data = [{"action": "http", "label": "Ping", "url": "https://x", "method": "get"}]
    (action,) = actions_from_json(data)
    assert (action.action, action.method, action.body) == ("http", "GET", None)


def test_every_action_gets_its_own_id() -> None:
    ids = {action.id for action in parse_actions("view, A, https://x; view, B, https://y")}
    assert len(ids) == 2


@pytest.mark.parametrize("text", [None, "", "   "])
def test_no_actions(text: str | None) -> None:
    assert parse_actions(text) == ()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("jump, Go", "one of view, broadcast, http"),
        ("view", "label"),
        ("view, ", "label"),
        ("view, Open", "needs a url"),
        ("http, Ping", "needs a url"),
        ("http, Ping, https://x, method=GET, body=x", "no body"),
        ("http, Ping, https://x, method=head, body=x", "no body"),
        (
            "view, A, https://x; view, B, https://x; view, C, https://x; view, D, https://x",
            "at most 3",
        ),
        ("view, A, https://x, bogus=1", "unknown key"),
        ("view, A, https://x, surplus", "no name"),
        ("view, A, https://x, clear=maybe", "clear"),
        ('view, "unterminated, https://x', "never ends"),
        ('view, "A" B, https://x', "unexpected"),
        ("[", "malformed JSON"),
        ('[{"action": "view", "label": "A"}]', "needs a url"),
        ('[{"action": "view", "label": "A", "url": 5}]', "url"),
        ('[{"action": "view", "label": "A", "url": "https://x", "clear": "yes"}]', "clear"),
        ("[1]", "object"),
    ],
)
def test_ntfys_rules(text: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        parse_actions(text)


@pytest.mark.parametrize("data", [{"action": "view"}, "view, A, https://x", 3])
def test_a_json_publish_must_give_an_array(data: object) -> None:
    with pytest.raises(InvalidInput, match="array"):
        actions_from_json(data)
