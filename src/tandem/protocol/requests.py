"""Small request values shared by both doors: request ids, cursors and limits."""

from __future__ import annotations

import os
import re

from tandem.core.errors import InvalidInput
from tandem.core.ids import decode_id

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def request_id(incoming: str | None) -> str:
    """Keep a caller's ``X-Request-ID`` if it is sane, else make a new one."""
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    # 128 random bits, as hex; building a uuid.UUID object only to print it costs more.
    return os.urandom(16).hex()


def parse_cursor(value: str | None) -> int:
    """Turn a history cursor (a message id) into the sequence number to start after."""
    if not value:
        return 0
    seq = decode_id(value)
    if seq is None:
        raise InvalidInput("invalid cursor: use a message id")
    return seq


def parse_limit(value: str | None) -> int:
    """Parse ``limit=``: 1 to :data:`MAX_PAGE`, :data:`DEFAULT_PAGE` when absent."""
    if value is None or value == "":
        return DEFAULT_PAGE
    # isdigit() alone also admits "²", which int() rejects: that was a 500, not a 400.
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidInput(f"invalid limit: use a whole number from 1 to {MAX_PAGE}")
    return int(value)
