"""Parity: the REST admin API (``/api/v1/users``, ``/tokens``, ``/access``) on both doors.

An admin is made with the core before the app starts; everything else goes
through the API, authenticated the ways a client would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.conftest import SettingsFactory, serving

from tandem.core import migrate
from tandem.core.runtime import Runtime
from tandem.protocol.auth import basic_authorization

ADMIN = {"Authorization": basic_authorization("root", "root-password-1")}
ALICE = {"Authorization": basic_authorization("alice", "alice-password-1")}


@pytest.fixture(params=["flask", "quart"])
async def api(
    request: pytest.FixtureRequest, make_settings: SettingsFactory
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(default_access="deny-all", auth_refresh=0)
    migrate.upgrade(settings)
    rt = Runtime(settings)
    await rt.start(follow=False)
    try:
        await rt.users.add("root", "root-password-1", "admin")
        await rt.users.add("alice", "alice-password-1")
    finally:
        await rt.stop()
    async with serving(request.param, settings) as (_, asgi):
        transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://tandem.test") as c:
            yield c


async def test_users_are_admin_only(api: httpx.AsyncClient) -> None:
    anonymous = await api.get("/api/v1/users")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert anonymous.json()["code"] == 401
    assert (await api.get("/api/v1/users", headers=ALICE)).status_code == 403
    listed = await api.get("/api/v1/users", headers=ADMIN)
    assert listed.status_code == 200
    assert [(u["name"], u["role"]) for u in listed.json()["users"]] == [
        ("alice", "user"),
        ("root", "admin"),
    ]


async def test_user_lifecycle(api: httpx.AsyncClient) -> None:
    made = await api.post(
        "/api/v1/users", headers=ADMIN, json={"name": "bob", "password": "bob-password-1"}
    )
    assert made.status_code == 201
    assert (made.json()["name"], made.json()["role"]) == ("bob", "user")
    bob = {"Authorization": basic_authorization("bob", "bob-password-1")}
    assert (await api.get("/api/v1/tokens", headers=bob)).status_code == 200

    again = await api.post(
        "/api/v1/users", headers=ADMIN, json={"name": "bob", "password": "other-password"}
    )
    assert again.status_code == 409

    changed = await api.patch(
        "/api/v1/users/bob", headers=ADMIN, json={"password": "new-password-2", "role": "admin"}
    )
    assert changed.status_code == 200
    assert changed.json()["role"] == "admin"
    assert (await api.get("/api/v1/tokens", headers=bob)).status_code == 401
    bob = {"Authorization": basic_authorization("bob", "new-password-2")}
    assert (await api.get("/api/v1/users", headers=bob)).status_code == 200

    assert (await api.delete("/api/v1/users/bob", headers=ADMIN)).status_code == 200
    assert (await api.get("/api/v1/tokens", headers=bob)).status_code == 401
    assert (await api.delete("/api/v1/users/bob", headers=ADMIN)).status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"name": "x"}', 400),
        (b'{"name": "x", "password": 5}', 400),
        (b'{"name": "x", "password": "long-enough-1", "admin": true}', 400),
        (b'{"name": "bad name!", "password": "long-enough-1"}', 400),
        (b'{"name": "x", "password": "long-enough-1", "role": "root"}', 400),
    ],
)
async def test_bad_user_bodies(api: httpx.AsyncClient, body: bytes, status: int) -> None:
    response = await api.post("/api/v1/users", headers=ADMIN, content=body)
    assert response.status_code == status
    assert set(response.json()) == {"error", "message", "code"}


async def test_an_admin_cannot_remove_themselves(api: httpx.AsyncClient) -> None:
    assert (await api.delete("/api/v1/users/root", headers=ADMIN)).status_code == 403


async def test_a_user_manages_their_own_tokens(api: httpx.AsyncClient) -> None:
    made = await api.post(
        "/api/v1/tokens", headers=ALICE, json={"label": "phone", "expires": "30d"}
    )
    assert made.status_code == 201
    issued = made.json()
    assert issued["token"].startswith("tk_")
    assert (issued["user"], issued["label"]) == ("alice", "phone")
    assert issued["expires"] is not None

    # The token works as a credential, and is never listed again.
    bearer = {"Authorization": f"Bearer {issued['token']}"}
    listed = (await api.get("/api/v1/tokens", headers=bearer)).json()["tokens"]
    assert [t["prefix"] for t in listed] == [issued["prefix"]]
    assert issued["token"] not in str(listed)

    # Not someone else's, though.
    other = await api.get("/api/v1/tokens", headers=ALICE, params={"user": "root"})
    assert other.status_code == 403
    made_for_root = await api.post("/api/v1/tokens", headers=ALICE, json={"user": "root"})
    assert made_for_root.status_code == 403

    removed = await api.delete(f"/api/v1/tokens/{issued['prefix']}", headers=ALICE)
    assert removed.status_code == 200
    assert (await api.get("/api/v1/tokens", headers=bearer)).status_code == 401


async def test_tokens_need_a_user(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/tokens", json={})
    assert response.status_code == 401


async def test_an_admin_manages_anyones_tokens(api: httpx.AsyncClient) -> None:
    made = await api.post("/api/v1/tokens", headers=ADMIN, json={"user": "alice"})
    assert made.status_code == 201
    assert made.json()["user"] == "alice"
    everyone = (await api.get("/api/v1/tokens", headers=ADMIN)).json()["tokens"]
    assert [t["user"] for t in everyone] == ["alice"]
    alices = await api.get("/api/v1/tokens", headers=ADMIN, params={"user": "alice"})
    assert len(alices.json()["tokens"]) == 1
    prefix = made.json()["prefix"]
    gone = await api.delete(f"/api/v1/tokens/{prefix}", headers=ADMIN, params={"user": "alice"})
    assert gone.status_code == 200
    assert (await api.get("/api/v1/tokens", headers=ALICE)).json()["tokens"] == []


async def test_access_rules_decide_and_are_admin_only(api: httpx.AsyncClient) -> None:
    assert (await api.put("/news", content=b"x", headers=ALICE)).status_code == 403
    rule = {"user": "alice", "pattern": "news*", "permission": "write-only"}
    assert (await api.post("/api/v1/access", headers=ALICE, json=rule)).status_code == 403
    granted = await api.post("/api/v1/access", headers=ADMIN, json=rule)
    assert granted.status_code == 201
    assert granted.json() == rule

    assert (await api.put("/news", content=b"x", headers=ALICE)).status_code == 200
    assert (await api.get("/news/json?poll=1", headers=ALICE)).status_code == 403

    everyone = {"user": "everyone", "pattern": "news", "permission": "read-only"}
    assert (await api.post("/api/v1/access", headers=ADMIN, json=everyone)).status_code == 201
    assert (await api.get("/news/json?poll=1")).status_code == 200
    listed = (await api.get("/api/v1/access", headers=ADMIN)).json()["rules"]
    assert {(r["user"], r["pattern"]) for r in listed} == {("alice", "news*"), ("everyone", "news")}

    one = await api.delete(
        "/api/v1/access", headers=ADMIN, params={"user": "alice", "pattern": "news*"}
    )
    assert one.json() == {"removed": 1}
    assert (await api.put("/news", content=b"x", headers=ALICE)).status_code == 403
    rest = await api.delete("/api/v1/access", headers=ADMIN, params={"user": "everyone"})
    assert rest.json() == {"removed": 1}
    assert (await api.get("/news/json?poll=1")).status_code == 401


@pytest.mark.parametrize(
    "rule",
    [
        {"user": "alice", "pattern": "news", "permission": "everything"},
        {"user": "alice", "pattern": "bad pattern!", "permission": "read-only"},
        {"user": "alice", "pattern": "news"},
    ],
)
async def test_bad_rules(api: httpx.AsyncClient, rule: dict[str, str]) -> None:
    response = await api.post("/api/v1/access", headers=ADMIN, json=rule)
    assert response.status_code == 400


async def test_revoke_needs_a_user(api: httpx.AsyncClient) -> None:
    assert (await api.delete("/api/v1/access", headers=ADMIN)).status_code == 400


async def test_topic_list_shows_only_readable_topics(api: httpx.AsyncClient) -> None:
    for topic in ("open-a", "secret"):
        assert (await api.put(f"/{topic}", content=b"x", headers=ADMIN)).status_code == 200
    rule = {"user": "alice", "pattern": "open-*", "permission": "read-only"}
    await api.post("/api/v1/access", headers=ADMIN, json=rule)
    names = [t["name"] for t in (await api.get("/api/v1/topics", headers=ALICE)).json()["topics"]]
    assert names == ["open-a"]
    assert (await api.get("/api/v1/topics")).json() == {"topics": []}
    everything = (await api.get("/api/v1/topics", headers=ADMIN)).json()["topics"]
    assert [t["name"] for t in everything] == ["open-a", "secret"]
