"""Each pattern of the OpenAPI document accepts exactly what its parser accepts.

For every pattern: any text it matches, the parser takes; any text the parser
takes, it matches. Hypothesis draws texts from the pattern itself (which must
all parse) and arbitrary texts (which must agree both ways).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.core.errors import InvalidInput
from tandem.core.identity import validation
from tandem.protocol import patterns
from tandem.protocol.headers import Options
from tandem.protocol.publish import parse_bool, parse_icon, parse_priority
from tandem.protocol.requests import parse_cursor, parse_limit
from tandem.protocol.subscribe import parse_filter, parse_since
from tandem.protocol.topics import parse_topics, validate_topic


def _accepts(parse: Callable[[str], object]) -> Callable[[str], bool]:
    def accepts(text: str) -> bool:
        try:
            parse(text)
        except InvalidInput:
            return False
        return True

    return accepts


def _since(text: str) -> object:
    # An empty since= is no since at all; parse_since itself only sees non-empty ones.
    return None if text == "" else parse_since(text, now=1_700_000_000)


def _priorities(text: str) -> object:
    return parse_filter(Options({}, {"priority": text}))


def _topics(text: str) -> object:
    # The pattern cannot count distinct topics; lists of 64 or fewer parts are its domain.
    return parse_topics(text)


def _topic(text: str) -> object:
    return validate_topic(text)


def _lifetime(text: str) -> object:
    return validation.validate_lifetime(text)


CASES: dict[str, tuple[str, Callable[[str], object], str | None]] = {
    # name: (pattern, parser, a pattern the text must NOT match too, if any)
    "priority": (patterns.PRIORITY, parse_priority, None),
    "priorities": (patterns.PRIORITIES, _priorities, None),
    "boolean": (patterns.BOOLEAN, lambda t: parse_bool(t, True, "x"), None),
    "since": (patterns.SINCE, _since, None),
    "cursor": (patterns.CURSOR, parse_cursor, None),
    "limit": (patterns.LIMIT, parse_limit, None),
    "topic": (patterns.TOPIC, _topic, patterns.RESERVED_TOPIC),
    "topics": (patterns.TOPICS, _topics, patterns.RESERVED_IN_LIST),
    "user name": (patterns.USER_NAME, validation.validate_user_name, patterns.EVERYONE_ANY_CASE),
    "rule owner": (patterns.RULE_OWNER, validation.validate_owner, None),
    "rule pattern": (patterns.RULE_PATTERN, validation.validate_pattern, None),
    "permission": (patterns.PERMISSION, validation.validate_permission, None),
    "lifetime": (patterns.LIFETIME, _lifetime, None),
    "label": (patterns.LABEL, validation.validate_label, None),
    "icon": (patterns.ICON_URL, parse_icon, None),
}


def _documented(text: str, pattern: str, excluded: str | None) -> bool:
    if re.search(pattern, text) is None:
        return False
    return excluded is None or re.search(excluded, text) is None


@pytest.mark.parametrize("name", CASES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_pattern_and_the_parser_agree(name: str, data: st.DataObject) -> None:
    pattern, parse, excluded = CASES[name]
    accepts = _accepts(parse)
    # Texts the pattern describes, and arbitrary texts (mostly refused by both).
    drawn = data.draw(st.one_of(st.from_regex(pattern, fullmatch=True), st.text(max_size=20)))
    if name == "topics" and len(drawn.split(",")) > 64:
        return
    if name == "rule owner" and drawn.lower() == "everyone" and drawn != "everyone":
        # The document says so with a "not" beside the pattern (see protocol.models).
        assert not accepts(drawn)
        return
    if name == "label" and len(drawn) > validation.MAX_LABEL:
        # The document says so with maxLength.
        assert not accepts(drawn)
        return
    assert _documented(drawn, pattern, excluded) == accepts(drawn), repr(drawn)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (patterns.PRIORITY, " URGENT "),
        (patterns.PRIORITY, ""),
        (patterns.SINCE, "10m"),
        (patterns.SINCE, "Latest"),
        (patterns.LIMIT, "0001000"),
        (patterns.PERMISSION, "Read-Only"),
        (patterns.LIFETIME, "30d"),
        (patterns.TOPICS, "a,b-c,d_e"),
    ],
)
def test_known_good_texts_match(pattern: str, text: str) -> None:
    assert re.search(pattern, text)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (patterns.PRIORITY, "6"),
        (patterns.LIMIT, "1001"),
        (patterns.LIFETIME, "0d"),
        (patterns.LIFETIME, "1234567890"),
        (patterns.TOPIC, "a b"),
        (patterns.LABEL, "line\nbreak"),
    ],
)
def test_known_bad_texts_do_not_match(pattern: str, text: str) -> None:
    assert re.search(pattern, text) is None
