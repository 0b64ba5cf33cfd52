"""Type aliases shared across Tandem's layers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol


class HeaderMap(Protocol):
    """What the protocol layer needs of request headers: werkzeug's ``Headers`` fits."""

    def items(self) -> Iterable[tuple[str, str]]: ...

    def get(self, key: str, /) -> str | None: ...


class QueryMap(Protocol):
    """What the protocol layer needs of query parameters: werkzeug's ``MultiDict`` fits."""

    def get(self, key: str, /) -> str | None: ...

    def __iter__(self) -> Iterator[str]: ...
