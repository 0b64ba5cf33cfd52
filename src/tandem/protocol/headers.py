"""Look up ntfy options, which come as headers (any case) or query parameters."""

from __future__ import annotations

from tandem.typing import HeaderMap, QueryMap


class Options:
    """Case-insensitive view over a request's headers and query parameters.

    ntfy lets every option come as a header or as a lowercase query parameter,
    under several aliases; the first alias found wins, headers before query.
    """

    __slots__ = ("_headers", "_query")

    def __init__(self, headers: HeaderMap, query: QueryMap) -> None:
        self._headers = {key.lower(): _utf8(value) for key, value in headers.items()}
        self._query = query

    def get(self, *names: str) -> str | None:
        # Every header alias before any query alias, as ntfy does: a ``t`` header
        # beats a ``title`` parameter.
        for name in names:
            value = self._headers.get(name)
            if value is not None:
                return value
        for name in names:
            value = self._query.get(name)
            if value is not None:
                return value
        return None


def _utf8(value: str) -> str:
    # WSGI and ASGI servers decode header bytes as latin-1, but curl and ntfy
    # clients send UTF-8 (`-H "Title: café"`): read the bytes again as UTF-8.
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value
