"""The one error hierarchy of Tandem.

These errors carry no HTTP status: each front door maps them to a status in
one table (``tandem.protocol.errors.STATUS_FOR``).
"""

from __future__ import annotations


class TandemError(Exception):
    """Base class of every error that a client can be told about."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(TandemError):
    """The request is malformed: a bad topic name, priority, cursor or body."""


class PayloadTooLarge(TandemError):
    """The message or request body is over the configured limit."""


class Unauthorized(TandemError):
    """No credentials where they are needed, or credentials that do not check out."""


class Forbidden(TandemError):
    """The caller is known but may not do this."""


class Conflict(TandemError):
    """The thing to create exists already (a user name, say)."""


class NotFound(TandemError):
    """The named thing does not exist."""


class Unsupported(TandemError):
    """This door cannot do what was asked (WebSocket on the WSGI door)."""


class Unavailable(TandemError):
    """A dependency (the database, the broker) cannot serve right now."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyRequests(TandemError):
    """A rate or concurrency limit is reached; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
