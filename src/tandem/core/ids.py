"""Message ids: opaque to clients, a cursor to Tandem.

An id is 12 characters of ``[A-Za-z0-9]``. The first eight encode the message's
sequence number (the first one always a letter, so an id never looks like a
unix time or a duration in ``since=``); the last four are random, so that ids
from two databases do not collide. Because the id carries its sequence number,
``since=<id>`` keeps working after the message itself has been pruned.
"""

from __future__ import annotations

import secrets

_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LETTERS = _DIGITS[10:]
_LOW_WIDTH = 7
_SUFFIX_WIDTH = 4
ID_LENGTH = 1 + _LOW_WIDTH + _SUFFIX_WIDTH
MAX_SEQ = len(_LETTERS) * 62**_LOW_WIDTH - 1
_VALUE = {c: i for i, c in enumerate(_DIGITS)}
# What every id looks like, as a regular expression (for documents, not for decoding).
ID_PATTERN = f"[A-Za-z][0-9A-Za-z]{{{ID_LENGTH - 1}}}"


def encode_id(seq: int) -> str:
    """Return a new id for the message with sequence number ``seq``."""
    if not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"sequence number out of range: {seq}")
    low = []
    for _ in range(_LOW_WIDTH):
        seq, digit = divmod(seq, 62)
        low.append(_DIGITS[digit])
    suffix = "".join(secrets.choice(_DIGITS) for _ in range(_SUFFIX_WIDTH))
    return _LETTERS[seq] + "".join(reversed(low)) + suffix


def decode_id(message_id: str) -> int | None:
    """Return the sequence number inside ``message_id``, or ``None`` if it is not an id."""
    if len(message_id) != ID_LENGTH or message_id[0] not in _LETTERS:
        return None
    if any(char not in _VALUE for char in message_id):
        return None
    seq = _LETTERS.index(message_id[0])
    for char in message_id[1 : 1 + _LOW_WIDTH]:
        seq = seq * 62 + _VALUE[char]
    return seq
