"""Access decisions: topic patterns and rule precedence, pure and in memory.

Precedence, in order:

1. an admin may do everything;
2. the caller's own rules, if any of them matches the topic;
3. else the ``everyone`` rules, if any matches;
4. else the default access (``TANDEM_DEFAULT_ACCESS``).

Among the matching rules of one owner the most specific pattern decides: fewer
``*`` first, then more literal characters. Patterns equally specific decide
together: the action is allowed only if every one of them allows it, so a
``deny`` beats an allow and the outcome never depends on the order of rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tandem.core.schemas import EVERYONE, AccessRule, Action, Identity, Permission
from tandem.core.settings import DefaultAccess

ALLOWS: dict[Permission, frozenset[Action]] = {
    "read-write": frozenset({"read", "write"}),
    "read-only": frozenset({"read"}),
    "write-only": frozenset({"write"}),
    "deny": frozenset(),
}


def default_permission(default: DefaultAccess) -> Permission:
    """The permission that ``TANDEM_DEFAULT_ACCESS`` stands for (``deny-all`` is ``deny``)."""
    return "deny" if default == "deny-all" else default


def normalize_pattern(pattern: str) -> str:
    """Collapse runs of ``*``: ``a**b`` matches what ``a*b`` matches."""
    while "**" in pattern:
        pattern = pattern.replace("**", "*")
    return pattern


def specificity(pattern: str) -> tuple[int, int]:
    """Sort key of a normalized pattern: greater is more specific."""
    stars = pattern.count("*")
    return (-stars, len(pattern) - stars)


def matcher(pattern: str) -> Callable[[str], bool]:
    """A function that tells whether a topic matches ``pattern``.

    Linear in the topic for any pattern: the literal parts between stars are
    found left to right with ``str.find``, which is enough for ``*`` alone and
    never backtracks (a regular expression with many ``.*`` can).
    """
    parts = normalize_pattern(pattern).split("*")
    if len(parts) == 1:
        return pattern.__eq__
    head, *middle, tail = parts
    fixed = len(head) + len(tail)
    inner = [part for part in middle if part]

    def match(topic: str) -> bool:
        if len(topic) < fixed or not topic.startswith(head) or not topic.endswith(tail):
            return False
        pos, end = len(head), len(topic) - len(tail)
        for part in inner:
            found = topic.find(part, pos, end)
            if found < 0:
                return False
            pos = found + len(part)
        return True

    return match


def matches(pattern: str, topic: str) -> bool:
    return matcher(pattern)(topic)


@dataclass(frozen=True, slots=True)
class _Wildcard:
    key: tuple[int, int]
    allows: frozenset[Action]
    match: Callable[[str], bool]


class RuleSet:
    """Rules grouped by owner, ready to answer many questions quickly.

    Exact patterns sit in a dict (nothing is more specific than one); patterns
    with ``*`` are kept most specific first, so a lookup stops at the first
    match and its equally specific neighbours.
    """

    def __init__(self, rules: Iterable[AccessRule] = ()) -> None:
        self._exact: dict[str, dict[str, frozenset[Action]]] = {}
        wild: dict[str, list[_Wildcard]] = {}
        for rule in rules:
            pattern = normalize_pattern(rule.pattern)
            allows = ALLOWS[rule.permission]
            if "*" not in pattern:
                exact = self._exact.setdefault(rule.user, {})
                exact[pattern] = exact.get(pattern, allows) & allows
            else:
                wild.setdefault(rule.user, []).append(
                    _Wildcard(specificity(pattern), allows, matcher(pattern))
                )
        self._wild = {
            owner: sorted(found, key=lambda rule: rule.key, reverse=True)
            for owner, found in wild.items()
        }

    def owner_allows(self, owner: str, topic: str, action: Action) -> bool | None:
        """What ``owner``'s rules say about ``action`` on ``topic``; ``None`` if none matches."""
        exact = self._exact.get(owner)
        if exact is not None and topic in exact:
            return action in exact[topic]
        best: tuple[int, int] | None = None
        allowed = True
        for rule in self._wild.get(owner, ()):
            if best is not None and rule.key < best:
                break
            if rule.match(topic):
                best = rule.key
                allowed = allowed and action in rule.allows
        return None if best is None else allowed

    def allows(self, identity: Identity, topic: str, action: Action, default: Permission) -> bool:
        """Tell whether ``identity`` may ``action`` ``topic`` (see the module docstring)."""
        if identity.is_admin:
            return True
        if identity.user is not None:
            own = self.owner_allows(identity.user, topic, action)
            if own is not None:
                return own
        shared = self.owner_allows(EVERYONE, topic, action)
        if shared is not None:
            return shared
        return action in ALLOWS[default]


def decide(
    rules: Iterable[AccessRule],
    identity: Identity,
    topic: str,
    action: Action,
    default: Permission,
) -> bool:
    """One decision over a list of rules; servers keep a :class:`RuleSet` instead."""
    return RuleSet(rules).allows(identity, topic, action, default)
