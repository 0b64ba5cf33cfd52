"""Parity: the REST API v1, the OpenAPI document and the index page, through both doors.

Tests that take ``client`` run once per door; the OpenAPI comparison serves both
doors in one test.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from tests.conftest import serving

from tandem.core.settings import Settings

MESSAGE_KEYS = {"id", "time", "expires", "event", "topic", "message"}


async def publish(client: httpx.AsyncClient, topic: str, text: str) -> dict[str, Any]:
    response = await client.post(f"/{topic}", content=text.encode())
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def get_json(client: httpx.AsyncClient, url: str, **params: str) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def test_health(client: httpx.AsyncClient) -> None:
    assert await get_json(client, "/api/v1/health") == {"healthy": True, "database": "ok"}


async def test_topics_empty(client: httpx.AsyncClient) -> None:
    assert await get_json(client, "/api/v1/topics") == {"topics": []}


async def test_topics_counts_and_last_time(client: httpx.AsyncClient) -> None:
    sent = [await publish(client, topic, "x") for topic in ["beta", "alpha", "beta", "beta"]]
    await client.post("/alpha", content=b"live", headers={"X-Cache": "no"})
    assert await get_json(client, "/api/v1/topics") == {
        "topics": [
            {"name": "alpha", "messages": 1, "last_time": sent[1]["time"]},
            {"name": "beta", "messages": 3, "last_time": sent[3]["time"]},
        ]
    }


async def walk(client: httpx.AsyncClient, topic: str, limit: str) -> list[dict[str, Any]]:
    """Read every page of ``topic``, checking each page's size and cursor."""
    pages: list[dict[str, Any]] = []
    params = {"limit": limit}
    while True:
        page = await get_json(client, f"/api/v1/topics/{topic}/messages", **params)
        assert page.keys() == {"messages", "next_cursor"}
        assert len(page["messages"]) <= int(limit)
        pages.append(page)
        if page["next_cursor"] is None:
            return pages
        assert page["next_cursor"] == page["messages"][-1]["id"]
        params["cursor"] = page["next_cursor"]


@pytest.mark.parametrize(
    ("limit", "page_count"), [("1", 7), ("2", 4), ("3", 3), ("7", 1), ("8", 1)]
)
async def test_pages_walk_all_without_gap_or_duplicate(
    client: httpx.AsyncClient, limit: str, page_count: int
) -> None:
    ours = []
    for index in range(7):
        ours.append(await publish(client, "walked", f"m{index}"))
        await publish(client, "other", f"o{index}")
    pages = await walk(client, "walked", limit)
    assert len(pages) == page_count
    assert [msg for page in pages for msg in page["messages"]] == ours


async def test_default_page_is_100(client: httpx.AsyncClient) -> None:
    for index in range(101):
        await client.post("/api/v1/topics/many/messages", json={"message": str(index)})
    first = await get_json(client, "/api/v1/topics/many/messages")
    rest = await get_json(client, "/api/v1/topics/many/messages", cursor=first["next_cursor"])
    assert [len(first["messages"]), len(rest["messages"])] == [100, 1]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize("limit", ["1", "1000", ""])
async def test_page_of_empty_topic(client: httpx.AsyncClient, limit: str) -> None:
    page = await get_json(client, "/api/v1/topics/empty/messages", limit=limit)
    assert page == {"messages": [], "next_cursor": None}


async def test_page_cursor_past_the_end(client: httpx.AsyncClient) -> None:
    last = await publish(client, "alerts", "only")
    page = await get_json(client, "/api/v1/topics/alerts/messages", cursor=last["id"])
    assert page == {"messages": [], "next_cursor": None}


async def test_page_skips_uncached(client: httpx.AsyncClient) -> None:
    await client.post("/alerts", content=b"live", headers={"X-Cache": "no"})
    kept = await publish(client, "alerts", "kept")
    page = await get_json(client, "/api/v1/topics/alerts/messages")
    assert page == {"messages": [kept], "next_cursor": None}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"message": "rest"}, {"message": "rest"}),
        ({}, {"message": "triggered"}),
        ({"message": "m", "topic": "elsewhere"}, {"message": "m"}),
        (
            {"message": "m", "title": "T", "priority": "high", "tags": ["a"], "click": "https://x"},
            {"title": "T", "priority": 4, "tags": ["a"], "click": "https://x"},
        ),
    ],
)
async def test_rest_publish(
    client: httpx.AsyncClient, payload: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = await client.post("/api/v1/topics/alerts/messages", json=payload)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert data.keys() >= MESSAGE_KEYS
    assert data["topic"] == "alerts"  # the URL names the topic, not the body
    assert {key: data[key] for key in expected} == expected
    page = await get_json(client, "/api/v1/topics/alerts/messages")
    assert page["messages"] == [data]


async def test_rest_publish_uncached(client: httpx.AsyncClient) -> None:
    body = {"message": "live", "cache": False}
    response = await client.post("/api/v1/topics/alerts/messages", json=body)
    assert response.status_code == 201
    assert await get_json(client, "/api/v1/topics") == {"topics": []}


async def test_openapi_served(client: httpx.AsyncClient) -> None:
    document = await get_json(client, "/api/v1/openapi.json")
    assert document["openapi"].startswith("3.1")
    assert "/api/v1/topics/{topic}/messages" in document["paths"]


def _operations(app: Any) -> set[tuple[str, str]]:
    """Every (OpenAPI path, method) that ``app`` routes, without static files.

    HEAD is left out: the document lists GET, and both frameworks answer HEAD with it.
    OPTIONS stays: both answer it with an ``Allow`` header, and the document says so.
    """
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        found |= {(path, method.lower()) for method in rule.methods - {"HEAD"}}
    return found


async def test_openapi_same_from_both_doors_and_lists_every_route(settings: Settings) -> None:
    bodies, operations = [], []
    for door in ["flask", "quart"]:
        async with serving(door, settings) as (app, asgi):
            transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get("/api/v1/openapi.json")
            assert response.headers["content-type"] == "application/json"
            bodies.append(response.content)
            operations.append(_operations(app))
    assert bodies[0] == bodies[1]
    assert operations[0] == operations[1]
    paths = json.loads(bodies[0])["paths"]
    documented = {(path, method) for path, item in paths.items() for method in item}
    assert operations[0] == documented


async def test_index_page_empty(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>Tandem</title>" in response.text
    assert "No messages yet." in response.text


async def test_index_page_lists_topics(client: httpx.AsyncClient) -> None:
    sent = [await publish(client, topic, "x") for topic in ["backups", "alerts", "alerts"]]
    response = await client.get("/")
    assert response.status_code == 200
    # Each topic links to its page.
    rows = re.findall(
        r'<tr><td><a href="/app/([^"]+)">([^<]+)</a></td><td>(\d+)</td>', response.text
    )
    assert rows == [("alerts", "alerts", "2"), ("backups", "backups", "1")]
    assert f'data-unix="{sent[-1]["time"]}"' in response.text
    door = {"flask": "WSGI", "quart": "ASGI"}[client.door]  # type: ignore[attr-defined]
    assert f"served by the {door} door" in response.text
    assert 'href="/api/v1/openapi.json"' in response.text
