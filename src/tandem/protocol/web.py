"""The web pages' side of the protocol: form fields in, page errors and template helpers out.

Both doors render the same templates in ``tandem/web`` (the forms themselves
are ``tandem.endpoints.forms``), so a page looks and fails the same whichever
door serves it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus

from tandem.core.errors import TandemError, TooManyRequests, Unauthorized
from tandem.core.schemas import Identity, NewMessage
from tandem.protocol.caller import SESSION_USER, SESSION_VERSION
from tandem.protocol.errors import from_exception
from tandem.protocol.publish import parse_publish
from tandem.typing import QueryMap

PRIORITY_LABELS = {1: "min", 2: "low", 3: "default", 4: "high", 5: "max"}
ROLES = ("user", "admin")
PERMISSIONS = ("read-write", "read-only", "write-only", "deny")

LOGIN_FAILED = "Wrong user name or password."

# On every page: scripts, styles and connections from this site only (the pages have no
# inline script), never in a frame of another site (clickjacking of the forms).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


# --- forms ---------------------------------------------------------------------------------


def publish_form(topic: str, form: QueryMap, *, max_body: int) -> NewMessage:
    """The topic page's publish form (message, title, priority, tags), read as a publish.

    The fields have the names of ntfy's publish parameters, so the wire's parser
    reads them with the message as the body; an empty message is ntfy's "triggered".
    """
    message = (form.get("message") or "").replace("\r\n", "\n")
    return parse_publish(topic, {}, form, message.encode("utf-8"), max_body=max_body)


def signed_in(identity: Identity) -> dict[str, str]:
    """The session of a user who has just signed in.

    The doors start it afresh (no CSRF token or flash of the session before).
    """
    if identity.user is None or identity.session_version is None:
        raise ValueError("only a signed-in identity has a session")
    return {SESSION_USER: identity.user, SESSION_VERSION: identity.session_version}


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site, else ``/``.

    ``//host`` and ``/\\host`` are other sites to a browser: never followed.
    """
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)
    ):
        return "/"
    return value


# --- errors --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageError:
    """An error as a page shows it."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


def page_error(exc: TandemError) -> PageError:
    """The status and message of ``exc`` (as the API would answer), for an HTML page.

    No ``WWW-Authenticate``: a browser would answer it with its own password
    dialog over the login form.
    """
    response = from_exception(exc)
    headers = {k: v for k, v in response.headers.items() if k != "WWW-Authenticate"}
    return PageError(response.status, exc.message, headers)


def login_error(exc: Unauthorized | TooManyRequests) -> PageError:
    """Why the login form is shown again: a wrong password (401) or too many tries (429)."""
    if isinstance(exc, Unauthorized):
        return PageError(401, LOGIN_FAILED)
    return page_error(exc)


# --- template helpers ----------------------------------------------------------------------


def shown_time(unix: int | None) -> str:
    """``2024-05-01 12:30:00 UTC``; the page's script shows the same for live messages."""
    if unix is None:
        return "never"
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_time(unix: int | None) -> str:
    """The ``datetime`` attribute of a ``<time>`` element."""
    if unix is None:
        return ""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def priority_name(priority: int | None) -> str:
    return PRIORITY_LABELS.get(priority or 3, "default")


# Registered by both doors' page blueprints.
TEMPLATE_FILTERS: dict[str, Callable[..., str]] = {
    "shown_time": shown_time,
    "iso_time": iso_time,
    "priority_name": priority_name,
}
TEMPLATE_GLOBALS: dict[str, object] = {
    "PRIORITY_LABELS": PRIORITY_LABELS,
    "ROLES": ROLES,
    "PERMISSIONS": PERMISSIONS,
}
