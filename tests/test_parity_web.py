"""Parity: the web pages, through both doors, with real cookie jars and real forms.

Tests that take ``client`` run once per door. The session is one signed cookie
that both doors read and write, so the tests that cross doors serve both apps
on one database behind :class:`OneOrigin` (one origin in front of both, like
nginx), and the last one runs a real gunicorn and hypercorn.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import flask
import httpx
import pytest
from flask.sessions import SecureCookieSessionInterface
from tests.conftest import SettingsFactory, serving
from tests.servers import ServerPool, gunicorn, hypercorn
from tests.streamclients import Subscription, http_client

from tandem.core import migrate
from tandem.core.runtime import Runtime
from tandem.core.settings import Settings
from tandem.endpoints import forms
from tandem.protocol.caller import SESSION_COOKIE, SESSION_USER, SESSION_VERSION

BASE = "http://tandem.test"
ADMIN, ADMIN_PASSWORD = "root", "root-pass-1"
ALICE, ALICE_PASSWORD = "alice", "alice-pass-1"
FOREIGN = "https://evil.example"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


async def populate(settings: Settings) -> None:
    """An admin, a user, and rules: alice reads ro-* only; nobody anonymous reads private-*."""
    rt = Runtime(settings)
    await rt.start(follow=False)
    try:
        await rt.users.add(ADMIN, ADMIN_PASSWORD, "admin")
        await rt.users.add(ALICE, ALICE_PASSWORD)
        await rt.access.grant(ALICE, "ro-*", "read-only")
        await rt.access.grant(ALICE, "no-*", "deny")
        await rt.access.grant("everyone", "private-*", "deny")
        await rt.access.grant(ALICE, "private-*", "read-write")
    finally:
        await rt.stop()


@pytest.fixture
async def settings(make_settings: SettingsFactory) -> Settings:
    """Overrides conftest's: migrated, with users and rules (read by the ``client`` fixture)."""
    value = make_settings(auth_refresh=0)
    migrate.upgrade(value)
    await populate(value)
    return value


# --- helpers ---------------------------------------------------------------------------------


def csrf_of(response: httpx.Response) -> str:
    match = CSRF_FIELD.search(response.text)
    assert match is not None, response.text
    return match.group(1)


def session_of(settings: Settings, client: httpx.AsyncClient) -> dict[str, Any]:
    """What the client's session cookie holds (decoded and verified, as Flask does)."""
    value = client.cookies.get(SESSION_COOKIE)
    if value is None:
        return {}
    app = flask.Flask(__name__)
    app.secret_key = settings.secret_key
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    data: dict[str, Any] = serializer.loads(value)
    return data


async def login(
    client: httpx.AsyncClient, user: str, password: str, *, next: str | None = None
) -> httpx.Response:
    page = await client.get("/login", params={"next": next} if next else None)
    assert page.status_code == 200, page.text
    form = {"username": user, "password": password, "csrf_token": csrf_of(page)}
    if next is not None:
        form["next"] = next
    return await client.post("/login", data=form)


async def signed_in(client: httpx.AsyncClient, user: str, password: str) -> None:
    response = await login(client, user, password)
    assert response.status_code == 303, response.text


async def form_token(client: httpx.AsyncClient, page: str = "/app/alerts") -> str:
    response = await client.get(page)
    assert response.status_code == 200, response.text
    return csrf_of(response)


async def stored(client: httpx.AsyncClient, topic: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/topics/{topic}/messages", auth=(ADMIN, ADMIN_PASSWORD))
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def sibling(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another browser (its own cookie jar) on the same app."""
    return httpx.AsyncClient(transport=client._transport, base_url=BASE)


def message_ids(html: str) -> list[str]:
    return re.findall(r'<li class="message[^"]*" data-id="([^"]+)"', html)


# --- sign in and out ---------------------------------------------------------------------------


async def test_login_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/login")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>Sign in · Tandem</title>" in response.text
    for element in ('id="login-form"', 'id="username"', 'id="password"', 'name="csrf_token"'):
        assert element in response.text


@pytest.mark.parametrize("path", ["/", "/login", "/app/alerts", "/app/bad.name", "/admin/users"])
async def test_pages_refuse_frames_and_foreign_scripts(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text  # no inline script for the policy to block


async def test_login_with_a_wrong_password_fails(
    client: httpx.AsyncClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "not-alices-password-123"
    response = await login(client, ALICE, secret)
    assert response.status_code == 401
    assert "Wrong user name or password." in response.text
    assert 'id="login-form"' in response.text  # the form again, the name kept
    assert f'value="{ALICE}"' in response.text
    assert secret not in response.text
    assert "www-authenticate" not in response.headers  # no browser password dialog
    assert SESSION_USER not in session_of(settings, client)
    assert secret not in caplog.text
    unknown = await login(client, "nobody", secret)
    assert unknown.status_code == 401
    assert "Wrong user name or password." in unknown.text


async def test_login_starts_a_session(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await login(client, ALICE, ALICE_PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    session = session_of(settings, client)
    assert session[SESSION_USER] == ALICE
    assert isinstance(session[SESSION_VERSION], str)
    assert forms.SESSION_KEY not in session  # a fresh session: the anonymous form token is gone
    index = await client.get("/")
    assert f'<strong id="signed-in-user">{ALICE}</strong>' in index.text
    assert 'id="logout-form"' in index.text
    assert 'id="nav-users"' not in index.text  # not an admin


@pytest.mark.parametrize(
    ("next", "location"),
    [
        ("/app/alerts", "/app/alerts"),
        ("/admin/users?x=1", "/admin/users?x=1"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
    ],
)
async def test_login_goes_back_only_to_this_site(
    client: httpx.AsyncClient, next: str, location: str
) -> None:
    response = await login(client, ADMIN, ADMIN_PASSWORD, next=next)
    assert response.status_code == 303
    assert response.headers["location"] == location


async def test_too_many_failed_logins_is_429(make_settings: SettingsFactory) -> None:
    settings = make_settings(auth_refresh=0, rate_limits=True, login_failures="2 per 15 minutes")
    migrate.upgrade(settings)
    await populate(settings)
    for door in ("flask", "quart"):
        async with serving(door, settings) as (_, asgi):
            transport = httpx.ASGITransport(app=asgi, client=(f"192.0.2.{len(door)}", 5000))  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                for _ in range(2):
                    assert (await login(client, ALICE, "wrong-password")).status_code == 401
                # Refused before the password is checked, even the right one.
                refused = await login(client, ALICE, ALICE_PASSWORD)
                assert refused.status_code == 429, door
                assert int(refused.headers["retry-after"]) > 0
                assert 'id="login-error"' in refused.text
                assert SESSION_USER not in session_of(settings, client)


async def test_logout_ends_the_session(client: httpx.AsyncClient, settings: Settings) -> None:
    await signed_in(client, ADMIN, ADMIN_PASSWORD)
    assert (await client.get("/admin/users")).status_code == 200
    response = await client.post("/logout", data={"csrf_token": await form_token(client, "/")})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert SESSION_USER not in session_of(settings, client)
    again = await client.get("/admin/users")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/login")


@pytest.mark.parametrize(("base_url", "secure"), [(None, False), ("https://tandem.test", True)])
async def test_session_cookie_flags(
    make_settings: SettingsFactory, door: str, base_url: str | None, secure: bool
) -> None:
    settings = make_settings(auth_refresh=0, base_url=base_url)
    migrate.upgrade(settings)
    await populate(settings)
    async with serving(door, settings) as (_, asgi):
        transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
        # A Secure cookie comes back over https only.
        async with httpx.AsyncClient(transport=transport, base_url=base_url or BASE) as client:
            page = await client.get("/login")
            response = await client.post(
                "/login",
                data={"username": ALICE, "password": ALICE_PASSWORD, "csrf_token": csrf_of(page)},
                # The browser names its own origin on a form POST.
                headers={"Origin": base_url or BASE},
            )
    assert response.status_code == 303
    [cookie] = response.headers.get_list("set-cookie")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in attributes
    assert "samesite=lax" in cookie.lower()
    assert ("secure" in attributes) is secure


@pytest.fixture(params=["flask", "quart"])
def door(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


# --- CSRF ------------------------------------------------------------------------------------

FORMS = [
    ("/login", {"username": ALICE, "password": ALICE_PASSWORD}),
    ("/logout", {}),
    ("/app/alerts", {"message": "not published"}),
    ("/admin/users", {"name": "mallory", "password": "mallory-pass-1"}),
    ("/admin/access", {"user": "everyone", "pattern": "*", "permission": "read-write"}),
]


@pytest.mark.parametrize(("path", "fields"), FORMS, ids=[path for path, _ in FORMS])
async def test_a_form_without_a_good_csrf_token_is_400(
    client: httpx.AsyncClient, settings: Settings, path: str, fields: dict[str, str]
) -> None:
    await signed_in(client, ADMIN, ADMIN_PASSWORD)
    good = await form_token(client)
    async with sibling(client) as other:
        another_sessions = await form_token(other)
    tokens = {
        "missing": None,
        "empty": "",
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "another session's": another_sessions,
    }
    for kind, token in tokens.items():
        form = fields if token is None else {**fields, "csrf_token": token}
        response = await client.post(path, data=form)
        assert response.status_code == 400, (kind, response.text)
        assert "CSRF token" in response.text, kind
    assert session_of(settings, client)[SESSION_USER] == ADMIN  # still signed in as before
    assert await stored(client, "alerts") == []
    users = await client.get("/admin/users")
    assert "mallory" not in users.text
    rules = (await client.get("/api/v1/access", auth=(ADMIN, ADMIN_PASSWORD))).json()["rules"]
    assert len(rules) == 4
    # The good token still works: the failures above were the tokens' only.
    assert (await client.post(path, data={**fields, "csrf_token": good})).status_code in (200, 303)


class OneOrigin(httpx.AsyncBaseTransport):
    """Both apps behind one origin, as behind nginx: :attr:`door` answers the next request."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.transports = {name: httpx.ASGITransport(app=app) for name, app in apps.items()}
        self.door = "flask"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.transports[self.door].handle_async_request(request)


@contextlib.asynccontextmanager
async def one_origin(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, OneOrigin]]:
    async with serving("flask", settings) as (_, wsgi), serving("quart", settings) as (_, asgi):
        transport = OneOrigin({"flask": wsgi, "quart": asgi})
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield client, transport


@pytest.mark.parametrize(("first", "second"), [("flask", "quart"), ("quart", "flask")])
async def test_forms_of_one_door_post_to_the_other(
    settings: Settings, first: str, second: str
) -> None:
    """One session cookie: sign in with one door's form on the other door, then stay
    signed in on both, and publish with a form token of the other door."""
    async with one_origin(settings) as (client, doors):
        doors.door = first
        page = await client.get("/login")
        doors.door = second
        response = await client.post(
            "/login",
            data={"username": ALICE, "password": ALICE_PASSWORD, "csrf_token": csrf_of(page)},
        )
        assert response.status_code == 303, response.text
        for door in (first, second):
            doors.door = door
            index = await client.get("/")
            assert f'<strong id="signed-in-user">{ALICE}</strong>' in index.text, door

        doors.door = second
        token = await form_token(client, "/app/notes")
        doors.door = first
        response = await client.post(
            "/app/notes", data={"message": f"from {second} to {first}", "csrf_token": token}
        )
        assert response.status_code == 303, response.text
        [message] = await stored(client, "notes")
        assert message["message"] == f"from {second} to {first}"

        doors.door = second
        response = await client.post("/logout", data={"csrf_token": await form_token(client)})
        assert response.status_code == 303
        doors.door = first
        assert 'id="login-link"' in (await client.get("/")).text


# --- access to the pages -----------------------------------------------------------------------

ADMIN_PAGES = ["/admin/users", "/admin/tokens", "/admin/access"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
async def test_an_admin_page_as_a_user_is_403(client: httpx.AsyncClient, path: str) -> None:
    await signed_in(client, ALICE, ALICE_PASSWORD)
    response = await client.get(path)
    assert response.status_code == 403
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "only an admin" in response.text


ADMIN_FORMS = [
    ("/admin/users", {"name": "mallory", "password": "mallory-pass-1", "role": "admin"}),
    ("/admin/users/root", {"role": "user"}),
    ("/admin/users/root/remove", {}),
    ("/admin/tokens", {"user": ADMIN}),
    ("/admin/access", {"user": ALICE, "pattern": "*", "permission": "read-write"}),
    ("/admin/access/revoke", {"user": ALICE, "pattern": "no-*"}),
]


@pytest.mark.parametrize(("path", "fields"), ADMIN_FORMS, ids=[path for path, _ in ADMIN_FORMS])
async def test_an_admin_form_as_a_user_is_403_and_changes_nothing(
    client: httpx.AsyncClient, path: str, fields: dict[str, str]
) -> None:
    await signed_in(client, ALICE, ALICE_PASSWORD)
    response = await client.post(path, data={**fields, "csrf_token": await form_token(client)})
    assert response.status_code == 403, response.text
    assert "tk_" not in response.text
    users = (await client.get("/api/v1/users", auth=(ADMIN, ADMIN_PASSWORD))).json()["users"]
    assert {(user["name"], user["role"]) for user in users} == {(ADMIN, "admin"), (ALICE, "user")}
    tokens = (await client.get("/api/v1/tokens", auth=(ADMIN, ADMIN_PASSWORD))).json()["tokens"]
    assert tokens == []
    rules = (await client.get("/api/v1/access", auth=(ADMIN, ADMIN_PASSWORD))).json()["rules"]
    assert len(rules) == 4


@pytest.mark.parametrize("path", [*ADMIN_PAGES, "/app/private-notes"])
async def test_a_page_for_signed_in_users_sends_the_anonymous_to_login(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 303
    location = httpx.URL(response.headers["location"])
    assert (location.path, dict(location.params)) == ("/login", {"next": path})
    # ... and back after signing in.
    user, password = (ADMIN, ADMIN_PASSWORD) if "admin" in path else (ALICE, ALICE_PASSWORD)
    back = await login(client, user, password, next=path)
    assert back.headers["location"] == path
    assert (await client.get(path)).status_code == 200


async def test_an_anonymous_post_goes_to_login(client: httpx.AsyncClient) -> None:
    token = await form_token(client, "/login")
    response = await client.post(
        "/admin/users", data={"name": "x", "password": "x-pass-123", "csrf_token": token}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


async def test_a_topic_page_a_user_may_not_read_is_403(client: httpx.AsyncClient) -> None:
    await signed_in(client, ALICE, ALICE_PASSWORD)
    response = await client.get("/app/no-entry")
    assert response.status_code == 403
    assert 'id="error-message"' in response.text


@pytest.mark.parametrize("topic", ["bad.topic", "app", "x" * 65])
async def test_a_page_of_an_invalid_topic_is_400(client: httpx.AsyncClient, topic: str) -> None:
    response = await client.get(f"/app/{topic}")
    assert response.status_code == 400
    assert "invalid topic name" in response.text


async def test_open_a_topic(client: httpx.AsyncClient) -> None:
    response = await client.get("/app", params={"topic": "alerts"})
    assert response.status_code == 303
    assert response.headers["location"] == "/app/alerts"
    assert (await client.get("/app", params={"topic": "a/b"})).status_code == 400


# --- the topic list and a topic's page ---------------------------------------------------------


async def test_index_links_admins_to_the_admin_pages(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/")
    assert 'id="login-link"' in anonymous.text
    assert 'id="nav-users"' not in anonymous.text
    await signed_in(client, ADMIN, ADMIN_PASSWORD)
    admin = await client.get("/")
    for link in ('href="/admin/users"', 'href="/admin/tokens"', 'href="/admin/access"'):
        assert link in admin.text
    assert 'id="login-link"' not in admin.text


async def test_index_lists_only_readable_topics(client: httpx.AsyncClient) -> None:
    for topic in ("alerts", "no-way", "private-notes"):
        await client.post(f"/{topic}", content=b"x", auth=(ADMIN, ADMIN_PASSWORD))
    listed = re.compile(r'<a href="/app/([^"]+)">')
    assert listed.findall((await client.get("/")).text) == ["alerts", "no-way"]
    await signed_in(client, ALICE, ALICE_PASSWORD)
    assert listed.findall((await client.get("/")).text) == ["alerts", "private-notes"]


async def test_topic_page_history_newest_first(client: httpx.AsyncClient) -> None:
    sent = []
    for index, (title, tags, priority) in enumerate(
        [("Backup", "disk,ok", "2"), ("", "", ""), ("Disk full", "warning", "5")]
    ):
        response = await client.post(
            "/alerts",
            content=f"message {index}".encode(),
            headers={"Title": title, "Tags": tags, "Priority": priority},
        )
        sent.append(response.json())
    response = await client.get("/app/alerts")
    assert response.status_code == 200
    assert "<title>alerts · Tandem</title>" in response.text
    html = response.text
    assert message_ids(html) == [msg["id"] for msg in reversed(sent)]
    assert html.index("Disk full") < html.index("message 1") < html.index("Backup")
    assert '<span class="tag">warning</span>' in html
    assert '<span class="priority">max</span>' in html
    assert '<span class="priority">low</span>' in html
    assert '<time datetime="' in html
    # The live view: EventSource on the topic's SSE endpoint, after the newest shown.
    assert 'data-stream-url="/alerts/sse"' in html
    assert 'data-poll-url="/alerts/json"' in html
    assert f'data-since="{sent[-1]["id"]}"' in html
    assert 'id="status" role="status" data-state="connecting"' in html
    assert '<script src="/static/topic.js" defer></script>' in html


async def test_topic_page_of_an_empty_topic(client: httpx.AsyncClient) -> None:
    response = await client.get("/app/quiet")
    assert response.status_code == 200
    assert message_ids(response.text) == []
    assert 'data-since="all"' in response.text
    assert '<p id="empty">No messages yet.</p>' in response.text


async def test_topic_page_escapes_what_was_published(client: httpx.AsyncClient) -> None:
    attack = "<script>alert(1)</script>"
    await client.post(
        "/alerts",
        content=attack.encode(),
        headers={"Title": '"><img src=x onerror=alert(2)>', "Tags": "<b>bold</b>"},
    )
    html = (await client.get("/app/alerts")).text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<b>bold</b>" not in html


async def test_the_live_view_falls_back_to_polling_and_says_so(client: httpx.AsyncClient) -> None:
    """On the WSGI door a full set of stream slots answers the SSE request 503: the
    script then polls, and the page's status says so."""
    html = (await client.get("/app/alerts")).text
    match = re.search(r'data-text-polling="([^"]+)"', html)
    assert match is not None
    assert "stream slots are all busy" in match.group(1)
    assert "polls for new messages every 5 seconds" in match.group(1)
    script = await client.get("/static/topic.js")
    assert script.status_code == 200
    js = script.text
    assert "new EventSource(" in js
    assert "EventSource.CONNECTING" in js  # a blip: EventSource resumes by Last-Event-ID
    assert "response.status === 503" in js
    assert 'setState("polling"' in js
    assert '"?poll=1&" + since()' in js
    assert ".textContent" in js
    assert "innerHTML" not in js


# --- the publish form --------------------------------------------------------------------------


async def test_the_publish_form_publishes(client: httpx.AsyncClient) -> None:
    await signed_in(client, ALICE, ALICE_PASSWORD)
    token = await form_token(client, "/app/private-notes")
    response = await client.post(
        "/app/private-notes",
        data={
            "message": "line one\r\nline two",
            "title": "From the form",
            "priority": "4",
            "tags": "web, form",
            "csrf_token": token,
        },
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/app/private-notes"
    [message] = await stored(client, "private-notes")
    assert message["message"] == "line one\nline two"
    assert message["title"] == "From the form"
    assert message["priority"] == 4
    assert message["tags"] == ["web", "form"]
    page = await client.get("/app/private-notes")
    assert "Published." in page.text
    assert message_ids(page.text) == [message["id"]]


async def test_the_publish_form_respects_access(client: httpx.AsyncClient) -> None:
    await signed_in(client, ALICE, ALICE_PASSWORD)
    token = await form_token(client, "/app/ro-news")
    response = await client.post("/app/ro-news", data={"message": "nope", "csrf_token": token})
    assert response.status_code == 403
    assert 'id="error-message"' in response.text
    assert await stored(client, "ro-news") == []


async def test_the_publish_form_checks_its_fields(client: httpx.AsyncClient) -> None:
    token = await form_token(client)
    response = await client.post(
        "/app/alerts", data={"message": "x", "priority": "loud", "csrf_token": token}
    )
    assert response.status_code == 400
    assert "priority" in response.text
    assert await stored(client, "alerts") == []


# --- the admin pages -------------------------------------------------------------------------


async def admin_post(
    client: httpx.AsyncClient, path: str, fields: dict[str, str], page: str
) -> httpx.Response:
    return await client.post(path, data={**fields, "csrf_token": await form_token(client, page)})


async def test_admin_users(client: httpx.AsyncClient) -> None:
    await signed_in(client, ADMIN, ADMIN_PASSWORD)
    page = "/admin/users"
    added = await admin_post(
        client, page, {"name": "bob", "password": "bob-pass-123", "role": "user"}, page
    )
    assert (added.status_code, added.headers["location"]) == (303, page)
    listing = await client.get(page)
    assert "<title>Users · Tandem</title>" in listing.text
    assert "Added user bob." in listing.text
    assert '<tr data-user="bob">' in listing.text

    taken = await admin_post(client, page, {"name": "bob", "password": "bob-pass-123"}, page)
    assert taken.status_code == 409

    assert (
        await admin_post(client, "/admin/users/bob", {"role": "admin"}, page)
    ).status_code == 303
    changed = await admin_post(client, "/admin/users/bob", {"password": "bob-new-pass-1"}, page)
    assert changed.status_code == 303
    users = (await client.get("/api/v1/users", auth=(ADMIN, ADMIN_PASSWORD))).json()["users"]
    assert {"name": "bob", "role": "admin"}.items() <= next(
        user for user in users if user["name"] == "bob"
    ).items()
    async with sibling(client) as bob:
        assert (await login(bob, "bob", "bob-pass-123")).status_code == 401
        assert (await login(bob, "bob", "bob-new-pass-1")).status_code == 303
        assert (await bob.get("/admin/users")).status_code == 200  # bob is an admin now

    assert (await admin_post(client, "/admin/users/bob/remove", {}, page)).status_code == 303
    assert '<tr data-user="bob">' not in (await client.get(page)).text
    myself = await admin_post(client, "/admin/users/root/remove", {}, page)
    assert myself.status_code == 403


async def test_admin_tokens_show_a_new_token_once(client: httpx.AsyncClient) -> None:
    await signed_in(client, ADMIN, ADMIN_PASSWORD)
    page = "/admin/tokens"
    issued = await admin_post(client, page, {"user": ALICE, "label": "ci", "expires": "30d"}, page)
    assert issued.status_code == 200
    match = re.search(r'<output id="new-token">(tk_[^<]+)</output>', issued.text)
    assert match is not None, issued.text
    token = match.group(1)
    works = await client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    assert works.status_code == 200
    [listed] = works.json()["tokens"]
    assert listed["user"] == ALICE
    again = (await client.get(page)).text
    assert token not in again
    assert f'<tr data-prefix="{listed["prefix"]}">' in again

    removed = await admin_post(
        client, f"/admin/tokens/{listed['prefix']}/remove", {"user": ALICE}, page
    )
    assert removed.status_code == 303
    gone = await client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401


async def test_admin_access_rules(client: httpx.AsyncClient) -> None:
    await signed_in(client, ADMIN, ADMIN_PASSWORD)
    page = "/admin/access"
    listing = (await client.get(page)).text
    assert '<tr data-user="alice" data-pattern="ro-*">' in listing
    fields = {"user": ALICE, "pattern": "secret", "permission": "deny"}
    assert (await admin_post(client, page, fields, page)).status_code == 303
    assert '<tr data-user="alice" data-pattern="secret">' in (await client.get(page)).text
    async with sibling(client) as alice:
        await signed_in(alice, ALICE, ALICE_PASSWORD)
        assert (await alice.get("/app/secret")).status_code == 403
        revoke = {"user": ALICE, "pattern": "secret"}
        assert (await admin_post(client, f"{page}/revoke", revoke, page)).status_code == 303
        assert (await alice.get("/app/secret")).status_code == 200
    bad = {"user": ALICE, "pattern": "x", "permission": "everything"}
    assert (await admin_post(client, page, bad, page)).status_code == 400


# --- one cookie, two real servers ------------------------------------------------------------

SECRET_KEY = "web-parity-shared-secret-key-0123"
SERVER_ENV = {
    "TANDEM_SECRET_KEY": SECRET_KEY,
    "TANDEM_DEFAULT_ACCESS": "deny-all",
    "TANDEM_AUTH_REFRESH": "0",
    "TANDEM_KEEPALIVE_INTERVAL": "1s",
}


async def refused(base_url: str, headers: dict[str, str]) -> int | None:
    """The status of an SSE request that the server answers with an error."""
    sub = Subscription("sse", base_url, "private-notes", headers=headers)
    try:
        await (await sub.start(wait_open=False)).wait_ended()
    finally:
        await sub.aclose()
    assert sub.events == [], sub
    return sub.status


@pytest.mark.e2e
async def test_a_cookie_from_one_server_streams_from_the_other(
    server_pool: ServerPool, migrated_sqlite_url: str, make_settings: SettingsFactory
) -> None:
    """Sign in on gunicorn, stream SSE from hypercorn with that cookie, and the other way
    round; the same cookie on a request from a foreign page is refused (403)."""
    db_url = migrated_sqlite_url
    await populate(
        make_settings(database_url=db_url, secret_key=SECRET_KEY, default_access="deny-all")
    )
    wsgi, asgi = server_pool.start(
        gunicorn(db_url, env=SERVER_ENV), hypercorn(db_url, env=SERVER_ENV)
    )
    for here, there in ((wsgi, asgi), (asgi, wsgi)):
        async with http_client(here.url) as browser:
            await signed_in(browser, ALICE, ALICE_PASSWORD)
            cookie = f"{SESSION_COOKIE}={browser.cookies[SESSION_COOKIE]}"

            assert await refused(there.url, {}) == 401
            assert await refused(there.url, {"Cookie": cookie, "Origin": FOREIGN}) == 403

            headers = {"Cookie": cookie, "Origin": there.url}
            async with Subscription("sse", there.url, "private-notes", headers=headers) as sub:
                assert sub.status == 200
                token = await form_token(browser, "/app/private-notes")
                response = await browser.post(
                    "/app/private-notes", data={"message": f"via {here.name}", "csrf_token": token}
                )
                assert response.status_code == 303, response.text
                [message] = await sub.wait_messages(1)
                assert message.message == f"via {here.name}"
