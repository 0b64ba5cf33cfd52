"""Structured logs: one JSON object per line on stdout, tagged with the request id.

Both doors set :data:`request_id` for the duration of a request; every log
line written meanwhile carries it. Query strings are never logged, because
``?auth=`` carries credentials.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

request_id: ContextVar[str | None] = ContextVar("tandem_request_id", default=None)

# Secrets that a message may quote from a request a server could not parse (gunicorn
# logs the whole request line): ``auth=`` values, tokens and Authorization values.
_SECRETS = re.compile(
    r"((?i:\bauth)=)[^&\s'\"]*|\btk_[A-Za-z0-9_-]+|\b(Basic|Bearer)\s+[A-Za-z0-9+/=._~-]+"
)


def redact(text: str) -> str:
    """``text`` with credentials blanked out."""
    return _SECRETS.sub(_blank, text)


def _blank(match: re.Match[str]) -> str:
    prefix = match.group(1) or (match.group(2) and match.group(2) + " ") or ""
    return f"{prefix}[redacted]"


# Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line with time, level, logger, message and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


# An atom in quotes, a bare atom, or an escaped percent sign of a %-style access format.
_ACCESS_ATOM = re.compile(r'"%\(([^)]+)\)s"|%\(([^)]+)\)s|%%')
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class AccessJsonFormatter(logging.Formatter):
    """Fill a server's JSON ``access_log_format`` so that every line stays one JSON object.

    gunicorn and hypercorn paste raw request values into the format: a quote, a
    backslash or a percent-encoded line break in a path or a User-Agent would break
    the line, or forge fields and whole lines. Here an atom in quotes (``"%(a)s"``)
    becomes a JSON string and a bare one (``%(s)s``) a number, or ``null`` when the
    server has none (hypercorn writes ``-`` for a response without Content-Length).

    ``quotes_escaped``: the server already put a backslash before every ``"`` (gunicorn's
    ``SafeAtoms`` does); take it out again before encoding.
    """

    def __init__(self, *, quotes_escaped: bool = False) -> None:
        super().__init__()
        self._quotes_escaped = quotes_escaped

    def format(self, record: logging.LogRecord) -> str:
        atoms = record.args
        if not isinstance(record.msg, str) or not isinstance(atoms, Mapping):
            return record.getMessage()

        def fill(match: re.Match[str]) -> str:
            quoted, bare = match.groups()
            if quoted is not None:
                text = str(atoms[quoted])
                if self._quotes_escaped:
                    text = text.replace('\\"', '"')
                return orjson.dumps(text).decode()
            if bare is not None:
                text = str(atoms[bare])
                return text if _NUMBER.fullmatch(text) else "null"
            return "%"

        return _ACCESS_ATOM.sub(fill, record.msg)


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that formats outside its lock and only serialises the write.

    ``logging.Handler.handle`` holds the handler's lock while it formats *and*
    writes. Under gunicorn's threads every request logs an access line, so the
    threads queued behind each other's formatting: measured with py-spy on a
    worker publishing at ~2,000 req/s, 40% of request-thread time was spent
    waiting for that lock.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.filter(record):
            return False
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return False
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.write(line)
                self.stream.flush()
            except Exception:
                self.handleError(record)
        return True


def configure_logging(level: str = "INFO") -> None:
    """Send Tandem's logs to stdout as JSON lines. Idempotent."""
    logger = logging.getLogger("tandem")
    logger.setLevel(level.upper())
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = LineHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
