"""Parity: polling (``GET /<topics>/json?poll=1``) answers the same through both doors.

Every test runs once per door through the ``client`` fixture.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest


async def publish(
    client: httpx.AsyncClient, topic: str, text: str, **headers: str
) -> dict[str, Any]:
    response = await client.post(f"/{topic}", content=text.encode(), headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def poll_response(
    client: httpx.AsyncClient,
    topics: str = "alerts",
    headers: dict[str, str] | None = None,
    **params: str,
) -> httpx.Response:
    response = await client.get(f"/{topics}/json", params={"poll": "1", **params}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    return response


async def poll(
    client: httpx.AsyncClient,
    topics: str = "alerts",
    headers: dict[str, str] | None = None,
    **params: str,
) -> list[str]:
    """Poll and return the messages' texts, in the order they came."""
    response = await poll_response(client, topics, headers, **params)
    return [json.loads(line)["message"] for line in response.content.splitlines()]


async def publish_many(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    return [await publish(client, "alerts", f"m{index}") for index in range(count)]


async def test_lines_are_message_json_in_sequence_order(client: httpx.AsyncClient) -> None:
    published = await publish_many(client, 5)
    response = await poll_response(client)
    assert response.content.endswith(b"\n")
    assert [json.loads(line) for line in response.content.splitlines()] == published


async def test_empty_topic_polls_empty(client: httpx.AsyncClient) -> None:
    assert (await poll_response(client)).content == b""


@pytest.mark.parametrize("value", ["1", "yes", "true", "on"])
@pytest.mark.parametrize("name", ["poll", "po"])
async def test_poll_flag_spellings(client: httpx.AsyncClient, name: str, value: str) -> None:
    await publish_many(client, 2)
    response = await client.get("/alerts/json", params={name: value})
    assert [json.loads(line)["message"] for line in response.content.splitlines()] == ["m0", "m1"]


async def test_x_poll_header(client: httpx.AsyncClient) -> None:
    await publish_many(client, 2)
    response = await client.get("/alerts/json", headers={"X-Poll": "1"})
    assert len(response.content.splitlines()) == 2


# How ``since=`` is spelled, as a function of the three published messages.
SINCE_CASES = [
    ("all", lambda ms: "all", ["m0", "m1", "m2"]),
    ("ALL", lambda ms: "ALL", ["m0", "m1", "m2"]),
    ("latest", lambda ms: "latest", ["m2"]),
    ("none", lambda ms: "none", []),
    ("duration-10m", lambda ms: "10m", ["m0", "m1", "m2"]),
    ("duration-2h", lambda ms: "2h", ["m0", "m1", "m2"]),
    ("duration-30s", lambda ms: "30s", ["m0", "m1", "m2"]),
    ("unix-zero", lambda ms: "0", ["m0", "m1", "m2"]),
    ("unix-first", lambda ms: str(ms[0]["time"]), ["m0", "m1", "m2"]),
    ("unix-future", lambda ms: str(ms[-1]["time"] + 1), []),
    ("id-first", lambda ms: ms[0]["id"], ["m1", "m2"]),
    ("id-middle", lambda ms: ms[1]["id"], ["m2"]),
    ("id-last", lambda ms: ms[2]["id"], []),
]


@pytest.mark.parametrize(
    ("spell", "expected"),
    [pytest.param(spell, expected, id=case_id) for case_id, spell, expected in SINCE_CASES],
)
async def test_since(client: httpx.AsyncClient, spell: Any, expected: list[str]) -> None:
    published = await publish_many(client, 3)
    assert await poll(client, since=spell(published)) == expected


@pytest.mark.parametrize("name", ["since", "si"])
async def test_since_aliases(client: httpx.AsyncClient, name: str) -> None:
    published = await publish_many(client, 3)
    assert await poll(client, **{name: published[0]["id"]}) == ["m1", "m2"]


async def test_since_header(client: httpx.AsyncClient) -> None:
    published = await publish_many(client, 3)
    assert await poll(client, headers={"X-Since": published[1]["id"]}) == ["m2"]


RESUME = [
    ("param", lambda id_: ({}, {"last_event_id": id_})),
    ("header", lambda id_: ({"Last-Event-ID": id_}, {})),
    ("header-lowercase", lambda id_: ({"last-event-id": id_}, {})),
    ("param-beats-since", lambda id_: ({}, {"last_event_id": id_, "since": "none"})),
    ("header-beats-since", lambda id_: ({"Last-Event-ID": id_}, {"since": "all"})),
]


@pytest.mark.parametrize("how", [pytest.param(how, id=name) for name, how in RESUME])
@pytest.mark.parametrize(("after", "expected"), [(0, ["m1", "m2", "m3"]), (2, ["m3"]), (3, [])])
async def test_resume_after_event_id(
    client: httpx.AsyncClient, how: Any, after: int, expected: list[str]
) -> None:
    published = await publish_many(client, 4)
    headers, params = how(published[after]["id"])
    assert await poll(client, headers=headers, **params) == expected


async def test_resume_sees_later_publishes_only_once(client: httpx.AsyncClient) -> None:
    first = await publish_many(client, 2)
    seen = await poll(client, last_event_id=first[-1]["id"])
    later = await publish(client, "alerts", "m2")
    assert seen == []
    assert await poll(client, last_event_id=first[-1]["id"]) == ["m2"]
    assert await poll(client, last_event_id=later["id"]) == []


@pytest.mark.parametrize(
    ("topics", "expected"),
    [
        ("a,b", ["a0", "b0", "a1", "b1"]),
        ("b,a", ["a0", "b0", "a1", "b1"]),
        ("a,b,c", ["a0", "b0", "c0", "a1", "b1"]),
        ("a,a", ["a0", "a1"]),
        ("c", ["c0"]),
        ("b,nothing", ["b0", "b1"]),
    ],
)
async def test_multiple_topics_interleave_in_publish_order(
    client: httpx.AsyncClient, topics: str, expected: list[str]
) -> None:
    for topic, text in [("a", "a0"), ("b", "b0"), ("c", "c0"), ("a", "a1"), ("b", "b1")]:
        await publish(client, topic, text)
    assert await poll(client, topics) == expected


async def test_multiple_topics_since_id(client: httpx.AsyncClient) -> None:
    ids = [(await publish(client, topic, topic + "x"))["id"] for topic in ["a", "b", "a", "b"]]
    assert await poll(client, "a,b", since=ids[1]) == ["ax", "bx"]


# (published text, headers) for the filter tests.
FILTER_FIXTURE = [
    ("plain", {}),
    ("urgent", {"Priority": "5", "Tags": "fire,ops"}),
    ("high", {"Priority": "high", "Tags": "ops", "Title": "Disk"}),
    ("low", {"Priority": "2", "Title": "Disk"}),
    ("default", {"Priority": "3", "Tags": "fire"}),
]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"priority": "5"}, ["urgent"]),
        ({"priority": "urgent"}, ["urgent"]),
        ({"priority": "high,max"}, ["urgent", "high"]),
        ({"priority": "4,5"}, ["urgent", "high"]),
        ({"prio": "low"}, ["low"]),
        ({"p": "2"}, ["low"]),
        ({"priority": "3"}, ["plain", "default"]),
        ({"priority": "default"}, ["plain", "default"]),
        ({"tags": "fire"}, ["urgent", "default"]),
        ({"tags": "fire,ops"}, ["urgent"]),
        ({"ta": "ops"}, ["urgent", "high"]),
        ({"tags": "nope"}, []),
        ({"title": "Disk"}, ["high", "low"]),
        ({"t": "Disk"}, ["high", "low"]),
        ({"title": "disk"}, []),
        ({"message": "low"}, ["low"]),
        ({"m": "plain"}, ["plain"]),
        ({"message": "lo"}, []),
        ({"title": "Disk", "priority": "4"}, ["high"]),
        ({"tags": "ops", "priority": "5", "message": "urgent"}, ["urgent"]),
        ({"tags": "fire", "since": "latest"}, ["default"]),
    ],
)
async def test_filters(
    client: httpx.AsyncClient, params: dict[str, str], expected: list[str]
) -> None:
    for text, headers in FILTER_FIXTURE:
        await publish(client, "alerts", text, **headers)
    assert await poll(client, "alerts", None, **params) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Priority": "5"}, ["urgent"]),
        ({"X-Tags": "ops"}, ["urgent", "high"]),
        ({"X-Title": "Disk"}, ["high", "low"]),
        ({"X-Message": "plain"}, ["plain"]),
    ],
)
async def test_filter_headers(
    client: httpx.AsyncClient, headers: dict[str, str], expected: list[str]
) -> None:
    for text, publish_headers in FILTER_FIXTURE:
        await publish(client, "alerts", text, **publish_headers)
    assert await poll(client, headers=headers) == expected


async def test_poll_line_is_compact_message_json(client: httpx.AsyncClient) -> None:
    published = await publish(client, "alerts", "x", Title="T", Tags="a", Priority="1")
    response = await poll_response(client)
    assert response.content == json.dumps(published, separators=(",", ":")).encode() + b"\n"
