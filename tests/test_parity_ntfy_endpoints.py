"""ntfy's small endpoints, through both doors: ``/v1/health``, ``/v1/stats``,
``/<topics>/auth`` and ``GET /<topic>`` (UnifiedPush discovery, or the topic's page).

What ntfy's docs and server say each answers; tests that take ``client`` run once per door.
"""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import SettingsFactory

from tandem.core import migrate
from tandem.core.runtime import Runtime
from tandem.core.settings import Settings

ALICE, PASSWORD = "alice", "alice-pass-1"


@pytest.fixture
async def settings(make_settings: SettingsFactory) -> Settings:
    """Overrides conftest's: anonymous may read public-* only; alice also reads team-*."""
    value = make_settings(default_access="deny-all", auth_refresh=0)
    migrate.upgrade(value)
    rt = Runtime(value)
    await rt.start(follow=False)
    try:
        await rt.users.add(ALICE, PASSWORD)
        await rt.access.grant("everyone", "public-*", "read-write")
        await rt.access.grant(ALICE, "team-*", "read-only")
    finally:
        await rt.stop()
    return value


async def test_v1_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"healthy": True}


async def test_v1_stats_counts_every_publish(client: httpx.AsyncClient) -> None:
    before = (await client.get("/v1/stats")).json()
    assert before == {"messages": 0, "messages_rate": 0.0}
    for text in ("one", "two", "three"):
        assert (await client.post("/public-a", content=text)).status_code == 200
    assert (
        await client.post("/public-a", content="live", headers={"Cache": "no"})
    ).status_code == 200
    after = (await client.get("/v1/stats")).json()
    # Every publish counts, cached or not; the rate is per second over the last minute.
    assert after == {"messages": 4, "messages_rate": round(4 / 60, 3)}


@pytest.mark.parametrize(
    ("topics", "auth", "status"),
    [
        ("public-a", None, 200),
        ("public-a,public-b", None, 200),
        ("team-x", None, 401),
        ("team-x", (ALICE, PASSWORD), 200),
        ("team-x,public-a", (ALICE, PASSWORD), 200),
        ("team-x,secret", (ALICE, PASSWORD), 403),
        ("public-a,secret", None, 401),
        ("team-x", (ALICE, "wrong"), 401),
    ],
)
async def test_topic_auth_needs_every_topic_readable(
    client: httpx.AsyncClient, topics: str, auth: tuple[str, str] | None, status: int
) -> None:
    response = await client.get(f"/{topics}/auth", auth=auth)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json() == {"success": True}
    else:
        assert response.json()["code"] == status


@pytest.mark.parametrize("path", ["/bad topic/auth", "/api/auth", "/v1/auth"])
async def test_topic_auth_refuses_bad_names(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 400


@pytest.mark.parametrize("query", ["up=1", "unifiedpush=yes", "x-unifiedpush=true"])
async def test_unifiedpush_discovery(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/public-a?{query}")
    assert response.status_code == 200
    assert response.json() == {"unifiedpush": {"version": 1}}


async def test_get_topic_goes_to_its_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/public-a", headers={"Accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == "/app/public-a"
    page = await client.get(response.headers["location"])
    assert page.status_code == 200
    assert "public-a" in page.text


@pytest.mark.parametrize("name", ["v1", "file", "metrics", "account", "settings", "signup"])
async def test_ntfys_reserved_names_are_no_topics(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post(f"/{name}", content="x")
    assert response.status_code == 400
    assert "reserved" in response.json()["message"]
