"""Parse durations written the ntfy way: ``30s``, ``10m``, ``12h``, ``3d``."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^([0-9]{1,9})(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Return the number of seconds in ``text``, or raise :class:`ValueError`.

    A bare number counts as seconds, so ``"90"`` and ``"90s"`` are the same.
    """
    value = text.strip().lower()
    if value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use a number with s, m, h or d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def is_duration(text: str) -> bool:
    """Tell whether ``text`` has the shape of a duration with a unit (``10m``)."""
    return _DURATION.match(text) is not None
