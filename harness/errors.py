"""The harness's failures: one base class, so that a benchmark can catch them all."""

from __future__ import annotations


class HarnessError(RuntimeError):
    """A server, database or client process of the harness failed."""


class ServerError(HarnessError):
    """A server did not start, or a log line did not appear, in time."""


class DatabaseError(HarnessError):
    """A database, a migration or a Redis prefix could not be made or cleaned up."""


class LoadClientError(HarnessError):
    """A load-client process failed, died or did not answer."""
