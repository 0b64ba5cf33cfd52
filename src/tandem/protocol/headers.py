"""Look up ntfy options, which come as headers (any case) or query parameters."""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.header import decode_header, make_header

from tandem.typing import HeaderMap, QueryMap

# RFC 9218's Priority header ("u=3", "u=1, i"), which proxies such as Cloudflare add: it is
# not ntfy's priority, so it counts as absent and the next alias is looked at.
_HTTP_PRIORITY = re.compile(r"u=\d(,\s*(i|\d))?")


class Options:
    """Case-insensitive view over a request's headers and query parameters.

    ntfy lets every option come as a header or as a lowercase query parameter,
    under several aliases; the first alias with a value wins, headers before
    query. As in ntfy, values are trimmed, a blank one counts as absent, and a
    header may be an RFC 2047 encoded word (``=?UTF-8?B?...?=``).
    """

    __slots__ = ("_headers", "_query")

    def __init__(self, headers: HeaderMap, query: QueryMap) -> None:
        self._headers = {key.lower(): value for key, value in headers.items()}
        self._query = query

    def names(self) -> set[str]:
        """Every option name the request carries (header names lowercased), given or blank."""
        return {*self._headers, *self._query}

    def get(self, *names: str) -> str | None:
        # Every header alias before any query alias, as ntfy does: a ``t`` header
        # beats a ``title`` parameter.
        for name in names:
            value = self._headers.get(name)
            if value is not None and (text := _header_text(name, value)):
                return text
        for name in names:
            value = self._query.get(name)
            if value is not None and (text := value.strip()):
                return text
        return None


def _header_text(name: str, value: str) -> str:
    """A header's value as text: UTF-8 bytes and RFC 2047 encoded words decoded, trimmed."""
    text = _utf8(value).strip()
    if "=?" in text:
        text = _encoded_words(text)
    if name == "priority" and _HTTP_PRIORITY.fullmatch(text):
        return ""
    return text


def _utf8(value: str) -> str:
    # WSGI and ASGI servers decode header bytes as latin-1, but curl and ntfy
    # clients send UTF-8 (`-H "Title: café"`): read the bytes again as UTF-8.
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _encoded_words(text: str) -> str:
    """``=?UTF-8?B?w6k=?=`` as ``é``; text that is not validly encoded stays as it is."""
    try:
        return str(make_header(decode_header(text))).strip()
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return text
