"""A log scan that fails if a secret appears: passwords, tokens and ``auth=`` values.

Real gunicorn and hypercorn servers log at DEBUG, as JSON lines on stdout, while
requests carry good, wrong and malformed credentials in headers and in the query
string, and meet 200, 400, 401, 403 and 429 answers on publish, poll, streams and
WebSocket. Then nothing that the servers wrote may hold any secret sent, in any of
the forms it travelled in (plain, base64 in either alphabet, URL-encoded). The CLI
is run in process the same way: ``tandem user add`` and ``tandem token add``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import secrets
import uuid
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
from click.testing import CliRunner
from harness.serverprocess import ServerProcess
from harness.servers import ServerPool, gunicorn, hypercorn
from harness.streams import Subscription, http_client
from harness.wire import Kind
from tests.conftest import SettingsFactory

from tandem.cli import main as cli
from tandem.core.runtime import Runtime
from tandem.core.settings import Settings


class Secrets:
    """Every secret sent, with the forms it travelled in; :meth:`find` looks for them."""

    def __init__(self) -> None:
        self.needles: set[str] = set()

    def secret(self, value: str) -> str:
        """Note a secret and its URL-encoded form; a token also by the part never shown."""
        self.needles.update({value, quote(value, safe="")})
        if value.startswith("tk_"):
            self.needles.add(value[9:])  # `token list` shows tk_ and 6 characters
        return value

    def authorization(self, value: str) -> dict[str, str]:
        """An Authorization header carrying ``value``; its base64 part is a secret too."""
        self.secret(value)
        self.secret(value.partition(" ")[2].strip())
        return {"Authorization": value}

    def basic(self, user: str, password: str) -> dict[str, str]:
        self.secret(password)
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        return self.authorization(f"Basic {encoded}")

    def auth_param(self, authorization: str, *, urlsafe: bool, padded: bool) -> dict[str, str]:
        """``?auth=`` for an Authorization value, in the chosen base64 form."""
        self.secret(authorization)
        self.secret(authorization.partition(" ")[2].strip())
        encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
        value = encode(authorization.encode()).decode()
        value = value if padded else value.rstrip("=")
        self.secret(value)
        self.secret(value.rstrip("="))
        return {"auth": value}

    def find(self, text: str) -> list[str]:
        return sorted(needle for needle in self.needles if needle and needle in text)


def _random(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(12)


USER, OTHER = "alice", "bob"


@pytest.fixture
def sent() -> Secrets:
    return Secrets()


async def _add_identities(settings: Settings, sent: Secrets) -> tuple[str, str]:
    """alice (read-write on ok-*) with a token; bob, who may do nothing. Returns
    alice's password and token."""
    password = sent.secret(_random("pw-"))
    rt = Runtime(settings)
    await rt.start(follow=False)
    try:
        await rt.users.add(USER, password)
        await rt.users.add(OTHER, sent.secret(_random("pw-")))
        await rt.access.grant(USER, "ok-*", "read-write")
        token = sent.secret((await rt.tokens.add(USER, label="logs")).token)
    finally:
        await rt.stop()
    return password, token


SERVER_ENV = {
    "TANDEM_DEFAULT_ACCESS": "deny-all",
    "TANDEM_AUTH_REFRESH": "0",
    "TANDEM_LOG_LEVEL": "debug",
    "TANDEM_RATE_LIMITS": "on",
    "TANDEM_PUBLISH_BURST": "3",
    "TANDEM_PUBLISH_REFILL": "1h",
    "TANDEM_LOGIN_FAILURES": "3 per 15 minutes",
    "TANDEM_TRUSTED_PROXIES": "127.0.0.1",
    "TANDEM_KEEPALIVE_INTERVAL": "1s",
}


async def _stream(server: ServerProcess, kind: Kind, topic: str, params: dict[str, str]) -> int:
    """Open a stream, take its answer (first event or error) and hang up; its status."""
    sub = Subscription(kind, server.url, topic, params=params)
    try:
        await sub.start(wait_open=False)
        await sub.wait_for(lambda events: bool(events) or sub.ended, what="an answer")
    finally:
        await sub.aclose()
    assert sub.status is not None, sub
    return sub.status


async def _exercise(server: ServerProcess, sent: Secrets, password: str, token: str) -> None:
    """Requests with credentials of every kind, good and bad, meeting every error."""
    ok, denied = f"ok-{uuid.uuid4().hex[:8]}", f"no-{uuid.uuid4().hex[:8]}"
    wrong = sent.secret(_random("wrong-"))
    unknown_token = sent.secret("tk_" + secrets.token_urlsafe(24))
    garbage = sent.secret(_random("garbage-"))
    bearer = f"Bearer {token}"
    basic_token = f"Basic {base64.b64encode(f':{token}'.encode()).decode()}"
    async with http_client(server.url) as http:

        async def expect(
            status: int,
            method: str,
            path: str,
            headers: dict[str, str] | None = None,
            query: dict[str, str] | None = None,
            body: bytes | None = None,
        ) -> None:
            url = f"{path}?{urlencode(query)}" if query else path
            # A client of its own, so that the failures do not add up to a 429 yet.
            client = {"X-Forwarded-For": f"198.51.100.{next(addresses)}"}
            response = await http.request(
                method, url, headers={**client, **(headers or {})}, content=body
            )
            assert response.status_code == status, (method, path, response.text)
            assert not sent.find(response.text), response.text

        addresses = itertools.count(1)
        poll = {"poll": "1"}
        alice_basic = sent.basic(USER, password)
        await expect(200, "POST", f"/{ok}", alice_basic, body=b"basic")
        await expect(200, "PUT", f"/{ok}", sent.authorization(basic_token), body=b"token")
        await expect(
            200, "POST", "/", sent.authorization(bearer), body=b'{"topic":"%s"}' % ok.encode()
        )
        await expect(
            200,
            "GET",
            f"/{ok}/json",
            query={**poll, **sent.auth_param(bearer, urlsafe=True, padded=False)},
        )
        await expect(
            200,
            "GET",
            f"/{ok}/sse",
            query={
                **poll,
                **sent.auth_param(alice_basic["Authorization"], urlsafe=False, padded=True),
            },
        )
        await expect(200, "GET", f"/api/v1/topics/{ok}/messages", sent.authorization(bearer))
        # 401: wrong, unknown, malformed; in headers and in the query string.
        await expect(401, "POST", f"/{ok}", sent.basic(USER, wrong), body=b"x")
        await expect(401, "POST", f"/{ok}", sent.basic("mallory", wrong), body=b"x")
        await expect(401, "POST", f"/{ok}", sent.authorization(f"Bearer {unknown_token}"))
        await expect(401, "POST", f"/{ok}", sent.authorization(f"Basic {garbage}!"))
        await expect(401, "POST", f"/{ok}", sent.authorization(f"Bearer {garbage} {garbage}"))
        await expect(401, "POST", f"/{ok}", sent.authorization(f"Token {garbage}"))
        await expect(401, "GET", f"/{ok}/json", query={**poll, "auth": sent.secret(garbage + "%")})
        await expect(
            401,
            "GET",
            f"/{ok}/raw",
            query={**poll, **sent.auth_param(f"Bearer {unknown_token}", urlsafe=True, padded=True)},
        )
        await expect(
            401,
            "GET",
            f"/{ok}/json",
            query={**poll, **sent.auth_param(f"Basic {garbage}", urlsafe=False, padded=False)},
        )
        # 403: good credentials on a topic they may not use.
        await expect(403, "GET", f"/{denied}/json", alice_basic, poll)
        await expect(
            403, "POST", f"/api/v1/topics/{denied}/messages", sent.authorization(bearer), body=b"{}"
        )
        # 400: a bad topic or priority, with credentials in the query string and the header.
        await expect(
            400,
            "GET",
            "/bad.topic/json",
            sent.authorization(bearer),
            {**poll, **sent.auth_param(bearer, urlsafe=False, padded=True)},
        )
        await expect(400, "POST", f"/{ok}", sent.authorization(bearer), {"priority": "9"}, b"x")
        # 429 after failed logins, from an address of its own; then a good password too.
        locked = {"X-Forwarded-For": "203.0.113.20"}
        statuses = []
        for _ in range(12):
            headers = {**locked, **sent.basic(USER, _random("wrong-"))}
            response = await http.post(f"/{ok}", content=b"x", headers=headers)
            statuses.append(response.status_code)
            if response.status_code == 429:
                break
        assert statuses[-1] == 429, statuses
        response = await http.post(
            f"/{ok}", content=b"x", headers={**locked, **sent.basic(USER, password)}
        )
        assert response.status_code == 429, response.text
        # 429 once alice's publish bucket is empty.
        for _ in range(20):
            response = await http.post(f"/{ok}", content=b"x", headers=sent.authorization(bearer))
            if response.status_code == 429:
                break
        assert response.status_code == 429, response.text
    # Streams and WebSocket with auth= (what EventSource and browsers' WebSocket send).
    good = sent.auth_param(bearer, urlsafe=True, padded=False)
    bad = sent.auth_param(f"Bearer {unknown_token}", urlsafe=False, padded=True)
    assert await _stream(server, "sse", ok, good) == 200
    assert await _stream(server, "json", ok, bad) == 401
    ws_ok, ws_bad = (101, 401) if server.name == "hypercorn" else (501, 501)
    assert await _stream(server, "ws", ok, good) == ws_ok
    assert await _stream(server, "ws", ok, bad) == ws_bad
    await _wait_logged(server)


async def _wait_logged(server: ServerProcess) -> None:
    """Wait until ``server`` logged every request so far: the access line of a last one."""
    marker = uuid.uuid4().hex
    async with http_client(server.url) as http:
        await http.get("/api/v1/health", headers={"X-Request-ID": marker})
    server.wait_for_log(lambda line: marker in line and "access" in line)


@pytest.mark.e2e
async def test_no_secret_in_server_logs(
    server_pool: ServerPool,
    migrated_sqlite_url: str,
    make_settings: SettingsFactory,
    sent: Secrets,
) -> None:
    db = migrated_sqlite_url
    settings = make_settings(database_url=db)
    password, token = await _add_identities(settings, sent)
    wsgi, asgi = server_pool.start(
        gunicorn(db, workers=1, env=SERVER_ENV), hypercorn(db, env=SERVER_ENV)
    )
    for server in (wsgi, asgi):
        await _exercise(server, sent, password, token)
    server_pool.close()  # what they write while stopping counts too
    for server in (wsgi, asgi):
        text = server.log_text()
        for status in (400, 401, 403, 429):  # the scan saw the errors
            assert f'"status": {status}' in text
        assert sent.find(text) == [], f"{server.name} logged a secret"


@pytest.mark.e2e
@pytest.mark.parametrize(
    "name",
    [
        "gunicorn",
        "hypercorn",
    ],
)
async def test_no_secret_from_unparsable_requests(
    server_pool: ServerPool,
    migrated_sqlite_url: str,
    make_settings: SettingsFactory,
    sent: Secrets,
    name: str,
) -> None:
    """Requests the server cannot even parse are logged without their credentials, as
    ``curl 'http://host/alerts/publish?auth=...&message=café'`` sends them."""
    db = migrated_sqlite_url
    settings = make_settings(database_url=db)
    _, token = await _add_identities(settings, sent)
    auth = sent.auth_param(f"Bearer {token}", urlsafe=True, padded=False)["auth"]
    lines = [
        f"GET /ok-x/publish?auth={auth}&message=café HTTP/1.1",
        f"GET /ok-x/json?poll=1&auth={auth}&x=a\tb HTTP/1.1",
        f"GET /ok-x/json?auth={auth} HTTP/1.1 trailing",
    ]
    make = gunicorn if name == "gunicorn" else hypercorn
    (server,) = server_pool.start(make(db, env=SERVER_ENV))
    for line in lines:
        answer = await _raw_request(server, f"{line}\r\nHost: x\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 4"), answer
    await _wait_logged(server)
    server_pool.close()  # what it writes while stopping counts too
    assert sent.find(server.log_text()) == [], server.log_tail()


async def _raw_request(server: ServerProcess, data: bytes) -> bytes:
    """Send bytes as they are (no client would let us send a broken request line)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(64), 10)
    finally:
        writer.close()
        await writer.wait_closed()


# --- the CLI, in process ---------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every log record of the process meanwhile, at DEBUG, with tracebacks."""
    handler = _Collect()
    loggers = [logging.getLogger(), logging.getLogger("tandem")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def test_cli_user_and_token_keep_secrets_out_of_stderr_and_logs(
    migrated_sqlite_url: str, sent: Secrets, log_lines: list[str]
) -> None:
    db = migrated_sqlite_url
    env = {"TANDEM_ENV": "testing", "TANDEM_DATABASE_URL": db, "TANDEM_LOG_LEVEL": "debug"}
    runner = CliRunner()

    def run(*args: str, password: str | None = None, code: int = 0) -> tuple[str, str]:
        extra = {} if password is None else {"TANDEM_PASSWORD": password}
        result = runner.invoke(cli, list(args), env={**env, **extra}, catch_exceptions=False)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result.stdout, result.stderr

    password = sent.secret(_random("pw-"))
    stdout, stderr = run("user", "add", USER, password=password)
    assert not sent.find(stdout + stderr)
    run("user", "add", "--role", "admin", "root", password=sent.secret(_random("pw-")))
    # Refused passwords are not repeated either: too long (a usage error), or for a
    # user that exists.
    for name, refused, code in (
        ("carol", sent.secret(_random("long-") * 80), 2),
        ("root", sent.secret(_random("dup-")), 1),
    ):
        stdout, stderr = run("user", "add", name, password=refused, code=code)
        assert not sent.find(stdout + stderr)
    run("user", "change-pass", USER, password=sent.secret(_random("pw-")))

    stdout, stderr = run("token", "add", "--label", "ci", "--expires", "30d", USER)
    token = stdout.strip()
    assert token.startswith("tk_")  # printed once, on stdout: the only place allowed
    sent.secret(token)
    assert not sent.find(stderr)
    stdout, stderr = run("token", "list", USER)
    assert not sent.find(stdout + stderr)
    stdout, stderr = run("token", "remove", USER, token)
    assert not sent.find(stdout + stderr)
    stdout, stderr = run("token", "remove", USER, token, code=1)  # gone: an error now
    assert not sent.find(stdout + stderr)
    stdout, stderr = run("token", "add", "nobody", code=1)
    assert not sent.find(stdout + stderr)
    assert sent.find("\n".join(log_lines)) == []
