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
        self._headers = {key.lower(): value for key, value in headers.items()}
        self._query = query

    def get(self, *names: str) -> str | None:
        for name in names:
            value = self._headers.get(name)
            if value is None:
                value = self._query.get(name)
            if value is not None:
                return value
        return None
