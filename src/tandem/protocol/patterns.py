"""What each text option accepts, as regular expressions for the OpenAPI document.

Each pattern says exactly what the parser beside it accepts (the parsers stay
the authority; ``tests/test_protocol_patterns.py`` holds the two together), so
that the document promises neither more nor less than the doors do. They use
only what JSON Schema's, Python's and pydantic's regular expressions share: no
lookaround, no inline flags. Case-insensitive words are spelled out per letter.
"""

from __future__ import annotations

from tandem.core.identity.validation import LABEL_CHARACTERS
from tandem.core.identity.validation import TOPIC_PATTERN as RULE_PATTERN_BODY
from tandem.core.identity.validation import USER_NAME as USER_NAME_BODY
from tandem.core.ids import ID_PATTERN
from tandem.core.schemas import EVERYONE
from tandem.protocol.topics import RESERVED, TOPIC_NAME

_SPACE = r"\s*"

# ntfy's words for priorities and booleans (the parsers in ``publish`` read them).
PRIORITY_NAMES = {"min": 1, "low": 2, "default": 3, "high": 4, "max": 5, "urgent": 5}
TRUE_WORDS = frozenset({"1", "yes", "true", "on"})
FALSE_WORDS = frozenset({"0", "no", "false", "off"})


def any_case(word: str) -> str:
    """``ab`` as ``[aA][bB]``: the word in any case."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


def one_of(*words: str) -> str:
    return "(" + "|".join(words) + ")"


def whole(body: str) -> str:
    return f"^{body}$"


def spaced(body: str) -> str:
    """``body`` with white space around it, as the parsers strip it."""
    return f"{_SPACE}{body}{_SPACE}"


# ntfy's priorities: blank (not given), 1-5, or a name in any case.
_PRIORITY = one_of("", "[1-5]", *(any_case(name) for name in PRIORITY_NAMES))
PRIORITY = whole(spaced(_PRIORITY))
# The priority filter: a comma-separated list of priorities.
PRIORITIES = whole(f"{spaced(_PRIORITY)}(,{spaced(_PRIORITY)})*")
# ntfy's booleans: blank (the default), or a word in any case.
BOOLEAN = whole(spaced(one_of("", *(any_case(w) for w in sorted(TRUE_WORDS | FALSE_WORDS)))))
# since= and the resume cursor: a word, a duration, a unix time or a message id; empty: unset.
SINCE = whole(
    one_of(
        "",
        spaced(
            one_of(
                *(any_case(word) for word in ("all", "latest", "none")),
                "[0-9]{1,9}[sSmMhHdD]",
                "[0-9]{1,11}",
                ID_PATTERN,
            )
        ),
    )
)
MESSAGE_ID = whole(ID_PATTERN)
# A history cursor: a message id, or empty for the start.
CURSOR = whole(one_of("", ID_PATTERN))
# A page size: 1 to 1000, leading zeros allowed; empty for the default.
LIMIT = whole(one_of("", "0*([1-9][0-9]{0,2}|1000)"))
TOPIC = whole(TOPIC_NAME)
# A topic list; at most MAX_TOPICS different ones (repeats count once), which a pattern
# cannot say.
TOPICS = whole(f"{TOPIC_NAME}(,{TOPIC_NAME})*")
# A reserved name alone, or as one of a list: what TOPIC and TOPICS must not match.
RESERVED_TOPIC = whole(one_of(*sorted(RESERVED)))
RESERVED_IN_LIST = f"(^|,){one_of(*sorted(RESERVED))}(,|$)"
USER_NAME = whole(USER_NAME_BODY)
EVERYONE_ANY_CASE = whole(any_case(EVERYONE))
RULE_OWNER = whole(one_of(EVERYONE, USER_NAME_BODY))
RULE_PATTERN = whole(RULE_PATTERN_BODY)
PERMISSION = whole(
    spaced(
        one_of(
            *(
                any_case(word)
                for word in (
                    "read-write",
                    "read-only",
                    "write-only",
                    "deny",
                    "rw",
                    "read",
                    "ro",
                    "write",
                    "wo",
                    "none",
                    "deny-all",
                )
            )
        )
    )
)
# A lifetime: a positive number of seconds, or with a unit (30d).
# 1 to 9 digits, not all zeros (the parsers refuse a lifetime of zero and longer numbers).
_POSITIVE_9_DIGITS = one_of(*(f"0{{{k}}}[1-9][0-9]{{0,{8 - k}}}" for k in range(9)))
LIFETIME = whole(spaced(f"{_POSITIVE_9_DIGITS}[sSmMhHdD]?"))
LABEL = whole(LABEL_CHARACTERS + "*")
# An icon: what parse_icon takes (an http(s) URL; blank is no icon).
ICON_URL = r"^\s*(|[hH][tT][tT][pP][sS]?://[\s\S]*)$"
# Any text with something in it besides white space (a required form field).
NOT_BLANK = r"\S"
