"""Topic names and topic lists (``alerts,backups``)."""

from __future__ import annotations

import re

from tandem.core.errors import InvalidInput

TOPIC_NAME = r"[-_A-Za-z0-9]{1,64}"
TOPIC_PATTERN = re.compile(f"^{TOPIC_NAME}$")
MAX_TOPICS = 64

# First path segments that belong to Tandem itself, or to ntfy's own endpoints and apps,
# and so cannot name a topic. ntfy refuses the same (its default disallowed topics, "v1"
# among them); "app" holds the topic pages (/app/<topic>).
RESERVED = frozenset(
    {"api", "static", "login", "logout", "admin", "docs", "app"}
    | {"file", "metrics", "account", "settings", "signup", "v1"}
)


def validate_topic(name: str) -> str:
    """Return ``name`` if it is a valid topic name, else raise :class:`InvalidInput`."""
    # fullmatch: with match(), "$" also matches before a trailing newline ("abc\n").
    if not TOPIC_PATTERN.fullmatch(name):
        raise InvalidInput(
            "invalid topic name: use 1 to 64 characters of letters, digits, '-' and '_'"
        )
    if name in RESERVED:
        raise InvalidInput(f"invalid topic name: {name!r} is reserved")
    return name


def parse_topics(value: str) -> tuple[str, ...]:
    """Parse a comma-separated topic list, keeping first occurrences in order."""
    names = tuple(dict.fromkeys(validate_topic(part) for part in value.split(",")))
    if len(names) > MAX_TOPICS:
        raise InvalidInput(f"too many topics: at most {MAX_TOPICS} per subscription")
    return names
