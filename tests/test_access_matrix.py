"""The access matrix: every transport x every credential form x every permission outcome.

Publish and poll run in process against both apps (httpx over ASGI); live streams
and WebSocket run against a real gunicorn and a real hypercorn with real clients.
Everything shares one SQLite file with ``TANDEM_DEFAULT_ACCESS=deny-all`` and
``TANDEM_AUTH_REFRESH=0``, whose users, tokens and rules are made once per module.

Each test topic is ``<class>-<hex>``; the class decides what the rules say about it
(:data:`RULES`). A test asks one transport with one credential form about several
classes and compares ``{class: outcome}`` with :func:`expected`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import flask
import httpx
import pytest
import pytest_asyncio
from flask.sessions import SecureCookieSessionInterface
from harness.databases import copy_sqlite
from harness.serverprocess import ServerProcess
from harness.servers import Doors, serve_doors
from harness.streams import TIMEOUT, Subscription, answered, event_from_sse, http_client, publish
from harness.wire import Kind, StreamEvent, event_from_json, event_from_raw, stream_url
from httpx_sse import EventSource
from tests.conftest import Clock, serving

from tandem.core.identity.service import BAD_TOKEN
from tandem.core.runtime import Runtime
from tandem.core.schemas import Action
from tandem.core.settings import Settings
from tandem.protocol.auth import MALFORMED, basic_authorization
from tandem.protocol.caller import SESSION_COOKIE, SESSION_USER, SESSION_VERSION, session_config
from tandem.protocol.errors import WWW_AUTHENTICATE

# One loop for the module: the apps in process and the shared client live on it.
pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET_KEY = "access-matrix-secret-key-0123456789"
ALICE, ALICE_PASSWORD = "alice", "wonder?land>>"  # its Basic value needs base64 padding
ADMIN, ADMIN_PASSWORD = "root", "root-pass-7"
DAY = 86_400
FOREIGN = "https://evil.example"

# Topic class (the topic's prefix) -> rules. Alice is a user; nothing matches zz-*.
RULES = [
    (ALICE, "rw-*", "read-write"),
    (ALICE, "ro-*", "read-only"),
    (ALICE, "wo-*", "write-only"),
    (ALICE, "no-*", "deny"),
    ("everyone", "pub-*", "read-only"),
    ("everyone", "open-*", "read-write"),
    (ALICE, "open-*", "read-only"),  # a user's rule beats everyone's
    (ALICE, "sp-*", "deny"),
    (ALICE, "sp-ok-*", "read-write"),  # the longer literal wins
    (ALICE, "st-*", "read-write"),
    (ALICE, "st*long*", "deny"),  # more literal characters, but fewer stars win
]
# What each may do on each class: (read, write). Unlisted: nothing (deny-all).
ALICE_MAY = {
    "rw": (True, True),
    "ro": (True, False),
    "wo": (False, True),
    "no": (False, False),
    "zz": (False, False),
    "pub": (True, False),
    "open": (True, False),
    "sp-ok": (True, True),
    "sp": (False, False),
    "st-long": (True, True),
}
EVERYONE_MAY = {"pub": (True, False), "open": (True, True)}
CLASSES = tuple(ALICE_MAY)

Who = Literal["alice", "admin", "anonymous", "bad"]
Outcome = Literal["ok", 401, 403]


def expected(who: Who, cls: str, action: Action) -> Outcome:
    """What the rules say: admin everywhere; 401 for bad credentials and anonymous refusals."""
    if who == "bad":
        return 401
    if who == "admin":
        return "ok"
    read, write = (ALICE_MAY if who == "alice" else EVERYONE_MAY).get(cls, (False, False))
    if read if action == "read" else write:
        return "ok"
    return 403 if who == "alice" else 401


# The forms that meet every class of topic; the other forms meet a few that tell
# allowed from refused for their kind of caller.
FULL_FORMS = ("bearer", "none", "admin-basic")
FEW_CLASSES: dict[Who, tuple[str, ...]] = {
    "alice": ("rw", "ro", "wo", "no"),
    "anonymous": ("pub", "open", "rw"),
    "admin": ("no", "zz"),
    # Refused before access is looked at: open-* shows that bad credentials do not
    # fall back to anonymous, who may read and write it.
    "bad": ("open",),
}


def classes_for(form: str) -> tuple[str, ...]:
    return CLASSES if form in FULL_FORMS else FEW_CLASSES[FORMS[form][0]]


def _topic(cls: str) -> str:
    return f"{cls}-{uuid.uuid4().hex[:8]}"


# --- credential forms ----------------------------------------------------------------------


@dataclass(frozen=True)
class Secrets:
    token: str  # alice's, expires in 30 days
    expired_token: str  # alice's, issued with a clock 10 days back, for 1 day
    admin_token: str
    cookie: str  # alice's signed session cookie
    stale_cookie: str  # alice's name with a session version that is not hers


@dataclass(frozen=True)
class Creds:
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def plus(self, headers: dict[str, str]) -> Creds:
        return Creds({**self.headers, **headers}, self.params)


def _header(value: str) -> Creds:
    return Creds(headers={"Authorization": value})


def _b64(value: str, *, urlsafe: bool = False, padded: bool = True) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text = encode(value.encode()).decode()
    return text if padded else text.rstrip("=")


def _auth(value: str, *, urlsafe: bool = False, padded: bool = True) -> Creds:
    return Creds(params={"auth": _b64(value, urlsafe=urlsafe, padded=padded)})


def _cookie(value: str) -> Creds:
    return Creds(headers={"Cookie": f"{SESSION_COOKIE}={value}"})


ALICE_BASIC = basic_authorization(ALICE, ALICE_PASSWORD)
# Well formed and unknown; its base64 needs the URL-safe alphabet ('~' and '?' give '-', '_').
ODD_TOKEN = "tk_" + "~?>" * 11

FORMS: dict[str, tuple[Who, Callable[[Secrets], Creds]]] = {
    "none": ("anonymous", lambda s: Creds()),
    "basic": ("alice", lambda s: _header(ALICE_BASIC)),
    "basic-empty-user-token": ("alice", lambda s: _header(basic_authorization("", s.token))),
    "bearer": ("alice", lambda s: _header(f"Bearer {s.token}")),
    "auth-basic-padded": ("alice", lambda s: _auth(ALICE_BASIC)),
    "auth-basic-unpadded-urlsafe": (
        "alice",
        lambda s: _auth(ALICE_BASIC, urlsafe=True, padded=False),
    ),
    # RFC 7235 allows several spaces after the scheme; here they make the base64 padded.
    "auth-bearer-padded": ("alice", lambda s: _auth(f"Bearer  {s.token}")),
    "auth-bearer-unpadded-urlsafe": (
        "alice",
        lambda s: _auth(f"Bearer {s.token}", urlsafe=True, padded=False),
    ),
    "auth-basic-token": ("alice", lambda s: _auth(basic_authorization("", s.token), padded=False)),
    "header-beats-auth": (
        "alice",
        lambda s: Creds({"Authorization": f"Bearer {s.token}"}, {"auth": "%%%"}),
    ),
    "session-cookie": ("alice", lambda s: _cookie(s.cookie)),
    "admin-basic": ("admin", lambda s: _header(basic_authorization(ADMIN, ADMIN_PASSWORD))),
    "admin-auth-bearer": ("admin", lambda s: _auth(f"Bearer {s.admin_token}", padded=False)),
    "stale-session-cookie": ("anonymous", lambda s: _cookie(s.stale_cookie)),
    "wrong-password": ("bad", lambda s: _header(basic_authorization(ALICE, "not-her-password"))),
    "unknown-user": ("bad", lambda s: _header(basic_authorization("mallory", ALICE_PASSWORD))),
    "unknown-token": ("bad", lambda s: _header(f"Bearer tk_{'A' * 32}")),
    "expired-token": ("bad", lambda s: _header(f"Bearer {s.expired_token}")),
    "expired-token-as-auth": ("bad", lambda s: _auth(basic_authorization("", s.expired_token))),
    "not-a-token": ("bad", lambda s: _header("Bearer tk_short")),
    "malformed-header": ("bad", lambda s: _header("Basic !!!not-base64")),
    "unknown-scheme": ("bad", lambda s: _header(f"Digest {s.token}")),
    "basic-without-colon": ("bad", lambda s: _header("Basic " + _b64(ALICE))),
    "malformed-auth": ("bad", lambda s: Creds(params={"auth": "A"})),
    "auth-urlsafe-unknown-token": ("bad", lambda s: _auth(f"Bearer {ODD_TOKEN}", urlsafe=True)),
}


def creds_of(form: str, secrets: Secrets) -> tuple[Who, Creds]:
    who, build = FORMS[form]
    return who, build(secrets)


def session_cookie(settings: Settings, user: str, version: str) -> str:
    """A session cookie signed as both apps sign theirs (itsdangerous, SECRET_KEY)."""
    app = flask.Flask(__name__)
    app.config.update(session_config(settings))
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return serializer.dumps({SESSION_USER: user, SESSION_VERSION: version})


# --- one database, its identities, both apps in process, both servers ------------------------


@dataclass(frozen=True)
class Matrix:
    root: Path
    db_url: str
    settings: Settings
    secrets: Secrets


async def _populate(settings: Settings) -> Secrets:
    # The expired token is issued on a clock moved 10 days back, for one day.
    clock = Clock(int(time.time()) - 10 * DAY)
    rt = Runtime(settings, clock=clock)
    await rt.start(follow=False)
    try:
        await rt.users.add(ALICE, ALICE_PASSWORD)
        await rt.users.add(ADMIN, ADMIN_PASSWORD, "admin")
        for owner, pattern, permission in RULES:
            await rt.access.grant(owner, pattern, permission)
        expired = await rt.tokens.add(ALICE, label="expired", expires="1d")
        clock.now = int(time.time())
        token = await rt.tokens.add(ALICE, label="matrix", expires="30d")
        admin_token = await rt.tokens.add(ADMIN)
        version = (await rt.login(ALICE, ALICE_PASSWORD)).session_version
        assert version is not None
    finally:
        await rt.stop()
    return Secrets(
        token=token.token,
        expired_token=expired.token,
        admin_token=admin_token.token,
        cookie=session_cookie(settings, ALICE, version),
        stale_cookie=session_cookie(settings, ALICE, "a-version-long-gone"),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matrix(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Matrix:
    root = tmp_path_factory.mktemp("access-matrix")
    db_url = copy_sqlite(sqlite_template, root / "tandem.db")
    settings = Settings(
        _env_file=None,
        env="testing",
        database_url=db_url,
        rate_limits=False,
        default_access="deny-all",
        auth_refresh=0,
        secret_key=SECRET_KEY,
    )
    return Matrix(root, db_url, settings, await _populate(settings))


@pytest.fixture(scope="module")
def secrets(matrix: Matrix) -> Secrets:
    return matrix.secrets


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["flask", "quart"])
async def client(
    request: pytest.FixtureRequest, matrix: Matrix
) -> AsyncIterator[httpx.AsyncClient]:
    """One door's app in process, for the whole module."""
    async with serving(request.param, matrix.settings) as (_, asgi):
        transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://tandem.test") as c:
            yield c


SERVER_ENV = {
    "TANDEM_DEFAULT_ACCESS": "deny-all",
    "TANDEM_AUTH_REFRESH": "0",
    "TANDEM_SECRET_KEY": SECRET_KEY,
    "TANDEM_KEEPALIVE_INTERVAL": "1s",
    # A closed stream keeps its slot until the next keepalive write fails.
    "TANDEM_WSGI_STREAM_SLOTS": "48",
}


@pytest.fixture(scope="module")
def servers(matrix: Matrix) -> Iterator[Doors]:
    """gunicorn and hypercorn on the module's database."""
    log_dir = matrix.root / "servers"
    with serve_doors(matrix.db_url, log_dir, env=SERVER_ENV, workers=2, threads=64) as doors:
        yield doors


# --- outcomes --------------------------------------------------------------------------------


def _check_error(status: int, headers: httpx.Headers, body: bytes) -> None:
    """Tandem's JSON error; 401 says how to authenticate, 403 does not."""
    error = json.loads(body)
    assert error["code"] == status, body
    if status == 401:
        assert headers["WWW-Authenticate"] == WWW_AUTHENTICATE
    else:
        assert "WWW-Authenticate" not in headers


def outcome(response: httpx.Response) -> Outcome | int:
    if response.status_code in (200, 201):
        return "ok"
    _check_error(response.status_code, response.headers, response.content)
    status: Outcome | int = response.status_code
    return status


def stream(
    server: ServerProcess, kind: Kind, topics: str | Sequence[str], creds: Creds
) -> contextlib.AbstractAsyncContextManager[Subscription]:
    """A stream opened with ``creds``, once the server answered: an event or an error."""
    return answered(kind, server.url, topics, params=creds.params, headers=creds.headers)


def stream_outcome(sub: Subscription) -> Outcome | int:
    if sub.status in (200, 101):
        assert sub.events, sub
        assert sub.events[0].kind == "open", sub
        return "ok"
    assert sub.status is not None, sub
    assert sub.response_headers is not None, sub
    _check_error(sub.status, sub.response_headers, sub.body)
    status: Outcome | int = sub.status
    return status


async def stream_outcome_of(
    http: httpx.AsyncClient,
    server: ServerProcess,
    kind: Kind,
    topics: str | Sequence[str],
    creds: Creds,
) -> Outcome | int:
    """Open a stream, read its answer up to the first event, and hang up.

    HTTP kinds go through the module's one client (a client per stream costs more
    than the stream); WebSocket through :class:`Subscription`.
    """
    if kind == "ws":
        async with stream(server, kind, topics, creds) as sub:
            return stream_outcome(sub)
    headers = {"Accept": "text/event-stream", **creds.headers} if kind == "sse" else creds.headers
    url = stream_url(server.url, topics, kind)
    async with (
        asyncio.timeout(TIMEOUT),
        http.stream("GET", url, params=creds.params, headers=headers) as response,
    ):
        if response.status_code != 200:
            _check_error(response.status_code, response.headers, await response.aread())
            status: Outcome | int = response.status_code
            return status
        if kind == "sse":
            first = event_from_sse(await anext(EventSource(response).aiter_sse()))
        else:
            line = await anext(response.aiter_lines())
            first = event_from_json(line) if kind == "json" else event_from_raw(line, first=True)
        assert first.kind == "open", first
        return "ok"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client() as client:
        yield client


# --- publish and poll, in process, both apps ----------------------------------------------


@dataclass(frozen=True)
class Transport:
    action: Action
    send: Callable[[httpx.AsyncClient, str, Creds], Awaitable[httpx.Response]]


def _poll(kind: str) -> Transport:
    return Transport(
        "read",
        lambda c, t, cr: c.get(
            f"/{t}/{kind}", params={"poll": "1", **cr.params}, headers=cr.headers
        ),
    )


HTTP_TRANSPORTS: dict[str, Transport] = {
    "PUT /<t>": Transport(
        "write",
        lambda c, t, cr: c.put(f"/{t}", content=b"hi", params=cr.params, headers=cr.headers),
    ),
    "POST /<t>": Transport(
        "write",
        lambda c, t, cr: c.post(f"/{t}", content=b"hi", params=cr.params, headers=cr.headers),
    ),
    "GET /<t>/publish": Transport(
        "write",
        lambda c, t, cr: c.get(
            f"/{t}/publish", params={"message": "hi", **cr.params}, headers=cr.headers
        ),
    ),
    "POST / JSON": Transport(
        "write",
        lambda c, t, cr: c.post(
            "/", json={"topic": t, "message": "hi"}, params=cr.params, headers=cr.headers
        ),
    ),
    "POST /api/v1/topics/<t>/messages": Transport(
        "write",
        lambda c, t, cr: c.post(
            f"/api/v1/topics/{t}/messages",
            json={"message": "hi"},
            params=cr.params,
            headers=cr.headers,
        ),
    ),
    "GET /<t>/json?poll=1": _poll("json"),
    "GET /<t>/sse?poll=1": _poll("sse"),
    "GET /<t>/raw?poll=1": _poll("raw"),
    "GET /api/v1/topics/<t>/messages": Transport(
        "read",
        lambda c, t, cr: c.get(
            f"/api/v1/topics/{t}/messages", params=cr.params, headers=cr.headers
        ),
    ),
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("transport", HTTP_TRANSPORTS)
async def test_publish_and_poll(
    client: httpx.AsyncClient, secrets: Secrets, transport: str, form: str
) -> None:
    who, creds = creds_of(form, secrets)
    send = HTTP_TRANSPORTS[transport]
    classes = classes_for(form)
    got = {cls: outcome(await send.send(client, _topic(cls), creds)) for cls in classes}
    assert got == {cls: expected(who, cls, send.action) for cls in classes}


async def test_auth_param_alphabets_and_padding(
    client: httpx.AsyncClient, secrets: Secrets
) -> None:
    """The ``auth=`` forms really differ: padded or not, in either alphabet.

    For the ASCII values that carry real credentials both alphabets give the same
    text (only '>', '?', '~' and DEL encode to '+' or '/'), so the URL-safe alphabet
    is shown with a well-formed unknown token made of those: it must be decoded and
    refused as unknown, not as malformed.
    """
    padded = [
        FORMS[f][1](secrets).params["auth"] for f in ("auth-basic-padded", "auth-bearer-padded")
    ]
    assert all(value.endswith("=") for value in padded)
    unpadded = FORMS["auth-basic-unpadded-urlsafe"][1](secrets).params["auth"]
    assert "=" not in unpadded
    odd = FORMS["auth-urlsafe-unknown-token"][1](secrets).params["auth"]
    standard = _b64(f"Bearer {ODD_TOKEN}")
    assert set(odd) & {"-", "_"}
    assert set(standard) & {"+", "/"}
    for value in (odd, standard):
        response = await client.post(f"/{_topic('rw')}", content=b"x", params={"auth": value})
        assert outcome(response) == 401
        assert response.json()["message"] == BAD_TOKEN
    response = await client.post(f"/{_topic('rw')}", content=b"x", params={"auth": "A"})
    assert response.json()["message"] == MALFORMED


@pytest.mark.parametrize("kind", ["json", "sse", "raw"])
async def test_poll_skips_forbidden_topics(
    client: httpx.AsyncClient, secrets: Secrets, kind: str
) -> None:
    """A multi-topic poll skips and names what may not be read; fails when nothing may."""
    _, alice = creds_of("bearer", secrets)
    _, admin = creds_of("admin-basic", secrets)
    rw, wo, zz = _topic("rw"), _topic("wo"), _topic("zz")
    for topic in (wo, zz, rw):
        response = await client.post(f"/{topic}", content=topic.encode(), headers=admin.headers)
        assert response.status_code == 200, response.text

    response = await client.get(
        f"/{rw},{wo},{zz}/{kind}", params={"poll": "1"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Forbidden-Topics"] == f"{wo},{zz}"
    assert rw in response.text
    assert wo not in response.text
    assert zz not in response.text

    response = await client.get(f"/{rw}/{kind}", params={"poll": "1"}, headers=alice.headers)
    assert "X-Forbidden-Topics" not in response.headers
    response = await client.get(f"/{wo},{zz}/{kind}", params={"poll": "1"}, headers=alice.headers)
    assert outcome(response) == 403
    response = await client.get(f"/{rw},{zz}/{kind}", params={"poll": "1"})
    assert outcome(response) == 401
    pub = _topic("pub")
    response = await client.get(f"/{pub},{zz}/{kind}", params={"poll": "1"})
    assert response.status_code == 200, response.text
    assert response.headers["X-Forbidden-Topics"] == zz


ORIGIN_CASES = [
    # (form, headers added, outcome); "same" stands for the server's own origin.
    ("session-cookie", {"Origin": FOREIGN}, 403),
    ("session-cookie", {"Origin": "null"}, 403),
    ("session-cookie", {"Sec-Fetch-Site": "cross-site"}, 403),
    ("session-cookie", {"Origin": "same", "Sec-Fetch-Site": "same-origin"}, "ok"),
    ("session-cookie", {}, "ok"),
    ("bearer", {"Origin": FOREIGN, "Sec-Fetch-Site": "cross-site"}, "ok"),
    ("basic", {"Origin": FOREIGN}, "ok"),
    ("auth-bearer-unpadded-urlsafe", {"Origin": FOREIGN, "Sec-Fetch-Site": "cross-site"}, "ok"),
    # A cookie that proves nothing is anonymous, and anonymous may not read rw-*.
    ("stale-session-cookie", {"Origin": FOREIGN}, 401),
]


def _origin_headers(headers: dict[str, str], origin: str) -> dict[str, str]:
    return {k: origin if v == "same" else v for k, v in headers.items()}


@pytest.mark.parametrize(("form", "extra", "want"), ORIGIN_CASES)
async def test_cookie_origin_in_process(
    client: httpx.AsyncClient,
    secrets: Secrets,
    form: str,
    extra: dict[str, str],
    want: Outcome,
) -> None:
    """Publish and poll: a session cookie counts only from this site."""
    _, creds = creds_of(form, secrets)
    creds = creds.plus(_origin_headers(extra, "http://tandem.test"))
    for transport in ("POST /<t>", "GET /<t>/json?poll=1"):
        response = await HTTP_TRANSPORTS[transport].send(client, _topic("rw"), creds)
        assert outcome(response) == want, (transport, response.text)


# --- live streams and WebSocket, real servers -------------------------------------------------

STREAMS = [("gunicorn", kind) for kind in ("sse", "json", "raw")] + [
    ("hypercorn", kind) for kind in ("sse", "json", "raw", "ws")
]
STREAM_IDS = [f"{server}-{kind}" for server, kind in STREAMS]


@pytest.mark.e2e
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("server", "kind"), STREAMS, ids=STREAM_IDS)
async def test_stream_credential_forms(
    http: httpx.AsyncClient, servers: Doors, secrets: Secrets, server: str, kind: Kind, form: str
) -> None:
    """Every credential form on every stream kind: one readable class, one not."""
    who, creds = creds_of(form, secrets)
    classes = ("open",) if who == "bad" else ("pub", "wo")
    got = {
        cls: await stream_outcome_of(http, servers.named(server), kind, _topic(cls), creds)
        for cls in classes
    }
    assert got == {cls: expected(who, cls, "read") for cls in classes}


@pytest.mark.e2e
@pytest.mark.parametrize("form", ["bearer", "none", "admin-basic"])
@pytest.mark.parametrize(("server", "kind"), STREAMS, ids=STREAM_IDS)
async def test_stream_permission_outcomes(
    http: httpx.AsyncClient, servers: Doors, secrets: Secrets, server: str, kind: Kind, form: str
) -> None:
    """Every class of topic on every stream kind, as alice, anonymous and admin."""
    who, creds = creds_of(form, secrets)
    got = {
        cls: await stream_outcome_of(http, servers.named(server), kind, _topic(cls), creds)
        for cls in CLASSES
    }
    assert got == {cls: expected(who, cls, "read") for cls in CLASSES}


@pytest.mark.e2e
@pytest.mark.parametrize("form", FORMS)
async def test_websocket_on_the_wsgi_door_is_501(
    servers: Doors, secrets: Secrets, form: str
) -> None:
    """gunicorn answers a WebSocket handshake 501, whatever the credentials."""
    _, creds = creds_of(form, secrets)
    async with stream(servers.wsgi, "ws", _topic("rw"), creds) as sub:
        assert sub.status == 501, sub
        assert sub.response_headers is not None
        _check_error(501, sub.response_headers, sub.body)


def _said(events: Sequence[StreamEvent]) -> str | None:
    data = events[0].data
    return None if data is None else data.get("message")


@pytest.mark.e2e
@pytest.mark.parametrize(("server", "kind"), STREAMS, ids=STREAM_IDS)
async def test_stream_skips_forbidden_topics(
    http: httpx.AsyncClient, servers: Doors, secrets: Secrets, server: str, kind: Kind
) -> None:
    """Forbidden topics are skipped and named (header and ``open`` event); the stream
    fails only when none is readable."""
    door = servers.named(server)
    _, alice = creds_of("bearer", secrets)
    _, admin = creds_of("admin-basic", secrets)
    rw, wo, zz = _topic("rw"), _topic("wo"), _topic("zz")
    async with stream(door, kind, [rw, wo, zz], alice) as sub:
        assert stream_outcome(sub) == "ok"
        if kind != "ws":  # the client does not keep a handshake's headers
            assert sub.response_headers is not None
            assert sub.response_headers["X-Forbidden-Topics"] == f"{wo},{zz}"
        if kind != "raw":  # raw streams carry no event text
            assert _said(sub.events) == f"not allowed to read, skipped: {wo},{zz}"
        # Published first, the skipped topics' messages would arrive first.
        await publish(http, door.url, wo, "skipped", headers=admin.headers)
        await publish(http, door.url, zz, "skipped", headers=admin.headers)
        await publish(http, door.url, rw, "delivered", headers=admin.headers)
        messages = await sub.wait_messages(1)
        assert messages[0].message == "delivered"

    async with stream(door, kind, [rw], alice) as sub:
        assert stream_outcome(sub) == "ok"
        if kind != "raw":
            assert _said(sub.events) is None
        if kind != "ws":
            assert sub.response_headers is not None
            assert "X-Forbidden-Topics" not in sub.response_headers
    assert await stream_outcome_of(http, door, kind, [wo, zz], alice) == 403
    assert await stream_outcome_of(http, door, kind, [rw, zz], Creds()) == 401
    pub = _topic("pub")
    async with stream(door, kind, [pub, zz], Creds()) as sub:
        assert stream_outcome(sub) == "ok"
        if kind != "raw":
            assert _said(sub.events) == f"not allowed to read, skipped: {zz}"


ORIGIN_STREAMS = [("gunicorn", "sse"), ("hypercorn", "sse"), ("hypercorn", "ws")]


@pytest.mark.e2e
@pytest.mark.parametrize(("form", "extra", "want"), ORIGIN_CASES)
@pytest.mark.parametrize(
    ("server", "kind"), ORIGIN_STREAMS, ids=[f"{s}-{k}" for s, k in ORIGIN_STREAMS]
)
async def test_cookie_origin_on_streams(
    http: httpx.AsyncClient,
    servers: Doors,
    secrets: Secrets,
    server: str,
    kind: Kind,
    form: str,
    extra: dict[str, str],
    want: Outcome,
) -> None:
    """A session cookie on a foreign page's EventSource or WebSocket is refused (403);
    credentials that a page must send on purpose are not ambient, so they still work."""
    door = servers.named(server)
    _, creds = creds_of(form, secrets)
    creds = creds.plus(_origin_headers(extra, door.url))
    assert await stream_outcome_of(http, door, kind, _topic("rw"), creds) == want


@pytest.mark.e2e
async def test_websocket_publishes_are_authorised_one_by_one(
    servers: Doors, secrets: Secrets
) -> None:
    """Each publish over a WebSocket is checked like a POST: refused ones get the JSON
    error on the socket, and the subscription goes on."""
    _, alice = creds_of("bearer", secrets)
    rw, ro, wo = _topic("rw"), _topic("ro"), _topic("wo")
    async with stream(servers.asgi, "ws", [rw, ro], alice) as sub:
        assert stream_outcome(sub) == "ok"
        await sub.send({"topic": ro, "message": "refused"})
        await sub.send({"topic": wo, "message": "written, not subscribed"})
        await sub.send({"topic": rw, "message": "mine"})
        await sub.wait_messages(1)
        errors = [event.data for event in sub.events if event.kind == "error"]
        assert [error["code"] for error in errors if error] == [403]
        assert [event.message for event in sub.messages] == ["mine"]
    open_topic, pub = _topic("open"), _topic("pub")
    async with stream(servers.asgi, "ws", open_topic, Creds()) as sub:
        await sub.send({"topic": pub, "message": "refused"})
        await sub.send({"topic": open_topic, "message": "anyone"})
        await sub.wait_messages(1)
        errors = [event.data for event in sub.events if event.kind == "error"]
        assert [error["code"] for error in errors if error] == [401]


@pytest.mark.e2e
async def test_changes_reach_running_servers(
    matrix: Matrix, servers: Doors, http: httpx.AsyncClient
) -> None:
    """Changes made by another process (as the CLI makes them) apply on both servers at
    their next request: TANDEM_AUTH_REFRESH is 0 here."""
    rt = Runtime(matrix.settings)
    await rt.start(follow=False)
    try:
        await rt.users.add("carol", "carol-pass-1")
        token = (await rt.tokens.add("carol")).token
        carol = {"Authorization": f"Bearer {token}"}
        basic = {"Authorization": basic_authorization("carol", "carol-pass-1")}
        late = _topic("late")

        async def statuses(headers: dict[str, str]) -> list[int]:
            doors = (servers.wsgi, servers.asgi)
            return [
                (await http.post(f"{door.url}/{late}", content=b"x", headers=headers)).status_code
                for door in doors
            ]

        assert await statuses(carol) == [403, 403]
        await rt.access.grant("carol", "late-*", "write-only")
        assert await statuses(carol) == [200, 200]
        assert await statuses(basic) == [200, 200]
        await rt.users.change_password("carol", "carol-pass-2")
        assert await statuses(basic) == [401, 401]
        await rt.access.revoke("carol", "late-*")
        assert await statuses(carol) == [403, 403]
        await rt.tokens.remove("carol", token)
        assert await statuses(carol) == [401, 401]
    finally:
        await rt.stop()
