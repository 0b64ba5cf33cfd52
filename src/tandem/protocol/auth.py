"""Credentials from an ``Authorization`` header or an ``auth=`` query parameter, sans-IO.

Accepted, as ntfy accepts them:

- ``Basic base64(user:password)``;
- ``Basic base64(:tk_...)``: an empty user and a token as the password (what
  ntfy's client libraries send);
- ``Bearer tk_...``;
- ``?auth=`` with the base64 (standard or URL-safe alphabet, padded or not) of
  one of the above, for EventSource and WebSocket clients that cannot set
  headers. The header wins when both are given.

Errors never repeat what was sent: it may be a secret.
"""

from __future__ import annotations

import base64
import binascii
import re

from tandem.core.errors import Unauthorized
from tandem.core.schemas import BasicCredentials, Credentials, TokenCredentials

MALFORMED = "malformed credentials"
_BASE64 = re.compile(r"[A-Za-z0-9+/]*")
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")  # visible ASCII, no spaces


def parse_credentials(authorization: str | None, auth_param: str | None) -> Credentials | None:
    """Return the credentials of a request, ``None`` when it carries none.

    Raise :class:`Unauthorized` (``malformed credentials``) for anything that
    is not one of the accepted forms.
    """
    if authorization is not None and authorization.strip():
        return parse_authorization(authorization)
    if auth_param is not None and auth_param.strip():
        return parse_authorization(_decode_text(auth_param))
    return None


def parse_authorization(value: str) -> Credentials:
    """Parse one ``Authorization`` value: ``Basic ...`` or ``Bearer ...``."""
    parts = value.split(None, 1)
    if len(parts) != 2:
        raise Unauthorized(MALFORMED)
    scheme, rest = parts[0].lower(), parts[1].strip()
    if scheme == "bearer":
        if not _TOKEN_CHARS.fullmatch(rest):
            raise Unauthorized(MALFORMED)
        return TokenCredentials(rest)
    if scheme == "basic":
        user, colon, password = _decode_text(rest).partition(":")
        if not colon:
            raise Unauthorized(MALFORMED)
        if not user and password.startswith("tk_"):
            return TokenCredentials(password)
        return BasicCredentials(user, password)
    raise Unauthorized(MALFORMED)


def _decode_text(value: str) -> str:
    """Decode base64 in either alphabet, with or without padding, to UTF-8 text."""
    text = value.strip().rstrip("=").replace("-", "+").replace("_", "/")
    if not _BASE64.fullmatch(text) or len(text) % 4 == 1:
        raise Unauthorized(MALFORMED)
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized(MALFORMED) from None


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` value for a user name and password (or ``""`` and a token)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def auth_param(authorization: str) -> str:
    """The ``auth=`` value for an ``Authorization`` value: URL-safe base64, unpadded."""
    return base64.urlsafe_b64encode(authorization.encode()).decode().rstrip("=")
