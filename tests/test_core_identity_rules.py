"""Topic patterns and rule precedence: examples, and properties checked with Hypothesis."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tandem.core.errors import InvalidInput
from tandem.core.identity.rules import (
    ALLOWS,
    RuleSet,
    decide,
    default_permission,
    matches,
    normalize_pattern,
    specificity,
)
from tandem.core.identity.validation import validate_pattern, validate_permission
from tandem.core.schemas import ANONYMOUS, EVERYONE, AccessRule, Action, Identity, Permission

ALICE = Identity("alice", "user")
ADMIN = Identity("root", "admin")
PERMISSIONS: tuple[Permission, ...] = tuple(ALLOWS)
ACTIONS: tuple[Action, ...] = ("read", "write")


# --- patterns --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("alerts", "alerts", True),
        ("alerts", "alerts2", False),
        ("alerts*", "alerts", True),  # * matches the empty run too
        ("alerts*", "alerts-disk", True),
        ("*-disk", "alerts-disk", True),
        ("*-disk", "alerts-disk2", False),
        ("a*b*c", "abc", True),
        ("a*b*c", "axxbyyc", True),
        ("a*b*c", "acb", False),
        ("ab*ba", "aba", False),  # head and tail may not overlap
        ("ab*ba", "abba", True),
        ("*", "anything", True),
        ("**", "x", True),
    ],
)
def test_pattern_examples(pattern: str, topic: str, expected: bool) -> None:
    assert matches(pattern, topic) is expected


def test_many_stars_do_not_backtrack() -> None:
    # A regular expression a.*a.*a... takes exponential time on this; find() does not.
    assert not matches("a*" * 30 + "b", "a" * 64)


def _reference(pattern: str, topic: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, topic, re.DOTALL) is not None


# A small alphabet makes matches likely; few stars keep the reference regex quick.
_topics = st.text("abc", max_size=12)
_patterns = st.lists(st.sampled_from(["a", "b", "c", "*"]), min_size=1, max_size=8).map("".join)


@given(pattern=_patterns, topic=_topics)
def test_matching_agrees_with_a_regular_expression(pattern: str, topic: str) -> None:
    assert matches(pattern, topic) is _reference(pattern, topic)


@given(pattern=_patterns, topic=_topics)
def test_collapsing_stars_changes_nothing(pattern: str, topic: str) -> None:
    assert matches(normalize_pattern(pattern), topic) is matches(pattern, topic)
    assert "**" not in normalize_pattern(pattern)


@given(topic=st.from_regex(r"[-_A-Za-z0-9]{1,64}", fullmatch=True))
def test_a_topic_as_a_pattern_matches_itself_only_and_star_matches_all(topic: str) -> None:
    assert matches(topic, topic)
    assert not matches(topic, topic + "x")
    assert matches("*", topic)
    assert matches(topic[:1] + "*", topic)


def test_pattern_and_permission_validation() -> None:
    assert validate_pattern("alerts-**") == "alerts-*"
    for bad in ("", "has space", "x" * 65, "a/b", "ü"):
        with pytest.raises(InvalidInput):
            validate_pattern(bad)
    assert validate_permission("rw") == "read-write"
    assert validate_permission("RO") == "read-only"
    assert validate_permission("none") == "deny"
    with pytest.raises(InvalidInput):
        validate_permission("maybe")
    assert default_permission("deny-all") == "deny"
    assert default_permission("read-only") == "read-only"


# --- precedence: examples --------------------------------------------------------------------


def _allowed(rules: list[AccessRule], who: Identity, topic: str, default: Permission) -> set[str]:
    return {action for action in ACTIONS if decide(rules, who, topic, action, default)}


def test_precedence_examples() -> None:
    rules = [
        AccessRule(EVERYONE, "public-*", "read-only"),
        AccessRule(EVERYONE, "public-secret", "deny"),
        AccessRule("alice", "alice-*", "read-write"),
        AccessRule("alice", "*", "deny"),
        AccessRule("alice", "alice-archive*", "read-only"),
    ]
    # Anonymous callers see only the everyone rules, then the default.
    assert _allowed(rules, ANONYMOUS, "public-news", "deny") == {"read"}
    assert _allowed(rules, ANONYMOUS, "public-secret", "read-write") == set()
    assert _allowed(rules, ANONYMOUS, "elsewhere", "write-only") == {"write"}
    # Alice's own rules come first, however unspecific; the most specific of them decides.
    assert _allowed(rules, ALICE, "public-news", "read-write") == set()  # her "*" deny
    assert _allowed(rules, ALICE, "alice-todo", "deny") == {"read", "write"}
    assert _allowed(rules, ALICE, "alice-archive-2024", "deny") == {"read"}
    # Another user falls through to the everyone rules.
    assert _allowed(rules, Identity("bob", "user"), "public-news", "deny") == {"read"}
    # Admins may do everything.
    assert _allowed(rules, ADMIN, "public-secret", "deny") == {"read", "write"}


def test_equally_specific_patterns_decide_together() -> None:
    # a* and *a are equally specific; both match "aa". The action needs both to allow it.
    both = [AccessRule("alice", "a*", "read-write"), AccessRule("alice", "*a", "deny")]
    assert _allowed(both, ALICE, "aa", "read-write") == set()
    mixed = [AccessRule("alice", "a*", "read-only"), AccessRule("alice", "*a", "read-write")]
    assert _allowed(mixed, ALICE, "aa", "deny") == {"read"}
    # Where only one matches, that one decides.
    assert _allowed(both, ALICE, "ab", "deny") == {"read", "write"}


# --- precedence: properties ------------------------------------------------------------------

_owners = st.sampled_from(["alice", "bob", EVERYONE])
_rules = st.lists(
    st.builds(AccessRule, _owners, _patterns, st.sampled_from(PERMISSIONS)),
    max_size=8,
    unique_by=lambda rule: (rule.user, normalize_pattern(rule.pattern)),
)
_identities = st.sampled_from([ANONYMOUS, ALICE, Identity("bob", "user"), ADMIN])
_actions = st.sampled_from(ACTIONS)
_defaults = st.sampled_from(PERMISSIONS)


def _matching(rules: list[AccessRule], owner: str, topic: str) -> list[AccessRule]:
    return [r for r in rules if r.user == owner and matches(r.pattern, topic)]


def _spec(
    rules: list[AccessRule], who: Identity, topic: str, action: Action, default: Permission
) -> bool:
    """The precedence rules, written the plain way."""
    if who.is_admin:
        return True
    for owner in ([who.user] if who.user else []) + [EVERYONE]:
        found = _matching(rules, owner, topic)
        if found:
            best = max(specificity(normalize_pattern(r.pattern)) for r in found)
            top = [r for r in found if specificity(normalize_pattern(r.pattern)) == best]
            return all(action in ALLOWS[r.permission] for r in top)
    return action in ALLOWS[default]


@given(rules=_rules, who=_identities, topic=_topics, action=_actions, default=_defaults)
def test_ruleset_follows_the_precedence_rules(
    rules: list[AccessRule], who: Identity, topic: str, action: Action, default: Permission
) -> None:
    assert decide(rules, who, topic, action, default) is _spec(rules, who, topic, action, default)


@given(rules=_rules, topic=_topics, action=_actions, default=_defaults)
def test_admin_is_always_allowed(
    rules: list[AccessRule], topic: str, action: Action, default: Permission
) -> None:
    assert decide(rules, ADMIN, topic, action, default)


@given(rules=_rules, who=_identities, topic=_topics, action=_actions, default=_defaults)
def test_the_default_applies_exactly_when_nothing_matches(
    rules: list[AccessRule], who: Identity, topic: str, action: Action, default: Permission
) -> None:
    assume(not who.is_admin)
    owners = [EVERYONE] + ([who.user] if who.user else [])
    anything_matches = any(_matching(rules, owner, topic) for owner in owners)
    outcomes = {decide(rules, who, topic, action, other) for other in PERMISSIONS}
    if anything_matches:
        assert len(outcomes) == 1  # the default is never consulted
    else:
        assert decide(rules, who, topic, action, default) is (action in ALLOWS[default])


def _pattern_for(topic: str) -> st.SearchStrategy[str]:
    """Patterns that match ``topic``: the topic with a slice of it turned into ``*``."""
    slices = st.tuples(st.integers(0, len(topic)), st.integers(0, len(topic)))
    return st.one_of(
        st.just(topic),
        slices.map(lambda ij: normalize_pattern(topic[: min(ij)] + "*" + topic[max(ij) :])),
    )


@st.composite
def _topic_and_pattern(draw: st.DrawFn) -> tuple[str, str]:
    topic = draw(st.text("abc", min_size=1, max_size=12))
    return topic, draw(_pattern_for(topic))


@given(
    rules=_rules,
    topic_and_pattern=_topic_and_pattern(),
    permission=_defaults,
    shared_permission=_defaults,
    action=_actions,
    default=_defaults,
)
def test_a_users_matching_rule_beats_every_everyone_rule(
    rules: list[AccessRule],
    topic_and_pattern: tuple[str, str],
    permission: Permission,
    shared_permission: Permission,
    action: Action,
    default: Permission,
) -> None:
    topic, pattern = topic_and_pattern
    # An everyone rule that matches too, however specific, loses.
    for shared in (topic, "*"):
        rules = [r for r in rules if r.user != "alice" and r.pattern != shared] + [
            AccessRule("alice", pattern, permission),
            AccessRule(EVERYONE, shared, shared_permission),
        ]
        assert decide(rules, ALICE, topic, action, default) is (action in ALLOWS[permission])


@given(
    topic_and_pattern=_topic_and_pattern(),
    where=st.integers(min_value=0),
    specific_permission=_defaults,
    general_permission=_defaults,
    action=_actions,
)
def test_a_more_specific_pattern_beats_a_less_specific_one(
    topic_and_pattern: tuple[str, str],
    where: int,
    specific_permission: Permission,
    general_permission: Permission,
    action: Action,
) -> None:
    topic, specific = topic_and_pattern
    literals = [i for i, char in enumerate(specific) if char != "*"]
    assume(literals)
    # One literal character less: one more star, or one literal fewer beside a star.
    i = literals[where % len(literals)]
    general = normalize_pattern(specific[:i] + "*" + specific[i + 1 :])
    assert specificity(specific) > specificity(general)
    assert matches(general, topic)
    rules = [
        AccessRule("alice", general, general_permission),
        AccessRule("alice", specific, specific_permission),
    ]
    assert decide(rules, ALICE, topic, action, "deny") is (action in ALLOWS[specific_permission])


@given(rules=_rules, who=_identities, topic=_topics, action=_actions, seed=st.integers())
def test_the_order_of_rules_does_not_matter(
    rules: list[AccessRule], who: Identity, topic: str, action: Action, seed: int
) -> None:
    shuffled = list(rules)
    random.Random(seed).shuffle(shuffled)
    assert decide(shuffled, who, topic, action, "read-only") is decide(
        rules, who, topic, action, "read-only"
    )


@given(rules=_rules, topic=_topics, action=_actions, default=_defaults)
def test_anonymous_callers_see_only_everyone_rules(
    rules: list[AccessRule], topic: str, action: Action, default: Permission
) -> None:
    shared = [r for r in rules if r.user == EVERYONE]
    assert decide(rules, ANONYMOUS, topic, action, default) is decide(
        shared, ANONYMOUS, topic, action, default
    )


def test_a_ruleset_answers_many_questions() -> None:
    rules = RuleSet([AccessRule(EVERYONE, f"t{i}-*", "read-only") for i in range(200)])
    assert rules.allows(ANONYMOUS, "t150-x", "read", "deny")
    assert not rules.allows(ANONYMOUS, "t150-x", "write", "deny")
    assert not rules.allows(ANONYMOUS, "u", "read", "deny")
