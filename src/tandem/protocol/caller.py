"""What a request says about its caller: credentials, session, address and site.

Both doors build a :class:`~tandem.core.gate.Caller` here from their own
request object, and the core decides what it proves.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from tandem.core.gate import Caller
from tandem.core.settings import Settings
from tandem.protocol.auth import parse_credentials
from tandem.protocol.clientip import client_ip
from tandem.typing import HeaderMap, QueryMap

# The keys of the signed session cookie that both apps read and write.
SESSION_USER = "user"
SESSION_VERSION = "ver"

SESSION_COOKIE = "tandem_session"

_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def caller(
    headers: HeaderMap,
    query: QueryMap,
    session: Mapping[str, object],
    remote_addr: str | None,
    settings: Settings,
) -> Caller:
    """Read the caller of one request. Malformed credentials raise :class:`Unauthorized`."""
    user, version = session.get(SESSION_USER), session.get(SESSION_VERSION)
    ref = (user, version) if isinstance(user, str) and isinstance(version, str) else None
    return Caller(
        credentials=parse_credentials(headers.get("Authorization"), query.get("auth")),
        session=ref,
        client_ip=client_ip(remote_addr, headers.get("X-Forwarded-For"), settings.trusted_proxies),
        # Only a cookie makes the site of a request matter (and reading it costs time).
        cross_site=ref is not None and is_cross_site(headers, settings.base_url),
    )


def session_config(settings: Settings) -> dict[str, object]:
    """The session cookie settings that both apps use, so either reads the other's cookie.

    Flask and Quart sign the cookie the same way (itsdangerous, ``SECRET_KEY``).
    """
    return {
        "SECRET_KEY": settings.secret_key,
        "SESSION_COOKIE_NAME": SESSION_COOKIE,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _scheme(settings.base_url or "") == "https",
    }


def is_cross_site(headers: HeaderMap, base_url: str | None) -> bool:
    """Whether the browser says the request comes from another site.

    ``Sec-Fetch-Site: cross-site`` says so outright. Otherwise ``Origin``, when
    sent (always on WebSocket handshakes and cross-origin fetches), must be
    ``TANDEM_BASE_URL``'s origin, or the request's own host when that is unset.
    Requests without either header (curl, same-origin EventSource) are not
    cross-site: they carry no ambient browser credentials of another site.
    """
    if headers.get("Sec-Fetch-Site") == "cross-site":
        return True
    origin = headers.get("Origin")
    if origin is None:
        return False
    if origin == "null":  # sandboxed frames, file: pages
        return True
    if base_url:
        return _origin(origin) != _origin(base_url)
    # Behind a proxy, Host is the proxy's (nginx passes it on): the browser's view.
    host = headers.get("X-Forwarded-Host") or headers.get("Host")
    return host is None or _host_port(origin) != _with_port(host.lower(), _scheme(origin))


def _origin(url: str) -> tuple[str, str]:
    return _scheme(url), _host_port(url)


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


def _host_port(url: str) -> str:
    return _with_port(urlsplit(url).netloc.lower(), _scheme(url))


def _with_port(netloc: str, scheme: str) -> str:
    # "example.com" and "example.com:443" are the same https origin; [::1]:80 keeps its brackets.
    if netloc.rpartition(":")[2].isdigit() and not netloc.endswith("]"):
        return netloc
    return f"{netloc}:{_DEFAULT_PORTS.get(scheme, '')}"
