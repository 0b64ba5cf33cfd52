"""CSRF tokens for the pages' forms, exactly as Flask-WTF makes and checks them.

The session cookie is one for both doors, so a form rendered by one door is
posted to the other. The Flask door lets Flask-WTF do it; the Quart door calls
these functions, which follow ``flask_wtf.csrf``: a random value in
``session["csrf_token"]``, handed to the page signed and timestamped with
``URLSafeTimedSerializer(SECRET_KEY, salt="wtf-csrf-token")``, and compared in
constant time on the way back. Tokens of either door pass the other's check.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, MutableMapping

from itsdangerous import BadData, URLSafeTimedSerializer

from tandem.core.errors import InvalidInput

# The form field, and the session key of the raw token (Flask-WTF's WTF_CSRF_FIELD_NAME).
FIELD = "csrf_token"
SALT = "wtf-csrf-token"
# How long a rendered form stays good (WTF_CSRF_TIME_LIMIT on the Flask door): a topic
# page left open for a working day still publishes.
TIME_LIMIT = 12 * 3600

# One message for every failure, on both doors (Flask-WTF words its reasons its own way).
FAILED = (
    "the form's CSRF token is missing, expired or not for this session: "
    "reload the page and submit the form again"
)


def token(session: MutableMapping[str, object], secret_key: str) -> str:
    """A signed token for a form; starts the session's raw token when there is none."""
    raw = session.get(FIELD)
    if not isinstance(raw, str):
        raw = hashlib.sha1(os.urandom(64)).hexdigest()  # noqa: S324  (Flask-WTF's format)
        session[FIELD] = raw
    signed: str = _serializer(secret_key).dumps(raw)
    return signed


def check(
    session: Mapping[str, object],
    secret_key: str,
    data: str | None,
    *,
    time_limit: int = TIME_LIMIT,
) -> None:
    """Raise :class:`InvalidInput` (400) unless ``data`` is a live token of this session."""
    raw = session.get(FIELD)
    if not data or not isinstance(raw, str):
        raise InvalidInput(FAILED)
    try:
        signed = _serializer(secret_key).loads(data, max_age=time_limit)
    except BadData:  # SignatureExpired included
        raise InvalidInput(FAILED) from None
    if not isinstance(signed, str) or not hmac.compare_digest(raw, signed):
        raise InvalidInput(FAILED)


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)
