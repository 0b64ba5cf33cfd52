"""Parity: ntfy publishing answers the same through the Flask and the Quart door.

Every test runs once per door through the ``client`` fixture.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

BASE_KEYS = {"id", "time", "expires", "event", "topic", "message"}
PRIORITIES = {
    "min": 1,
    "low": 2,
    "default": 3,
    "high": 4,
    "max": 5,
    "urgent": 5,
    "1": 1,
    "2": 2,
    "3": 3,
    "4": 4,
    "5": 5,
    "HIGH": 4,
    " max ": 5,
}


async def poll(client: httpx.AsyncClient, topic: str = "alerts") -> list[dict[str, Any]]:
    response = await client.get(f"/{topic}/json", params={"poll": "1"})
    assert response.status_code == 200
    return [json.loads(line) for line in response.content.splitlines()]


async def publish_ok(client: httpx.AsyncClient, url: str = "/alerts", **kwargs: Any) -> Any:
    """Publish, check the answer is a well-formed message, and return its JSON."""
    response = await client.request(kwargs.pop("method", "POST"), url, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    optional = {"title", "priority", "tags", "click", "icon", "content_type", "actions", "encoding"}
    assert BASE_KEYS <= data.keys() <= BASE_KEYS | optional
    assert data["event"] == "message"
    assert isinstance(data["id"], str)
    assert data["id"]
    assert isinstance(data["time"], int)
    assert data["expires"] >= data["time"]
    return data


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_publish_body_is_message_and_is_stored(
    client: httpx.AsyncClient, method: str
) -> None:
    data = await publish_ok(client, method=method, content=b"backup done")
    assert (data["topic"], data["message"]) == ("alerts", "backup done")
    assert data.keys() == BASE_KEYS
    assert data["expires"] > data["time"]
    assert await poll(client) == [data]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"multi\nline", "multi\nline"),
        ("caf\u00e9 \u2713".encode(), "caf\u00e9 \u2713"),
        (b"  padded  \n", "padded"),
    ],
)
async def test_publish_body_text(client: httpx.AsyncClient, body: bytes, expected: str) -> None:
    data = await publish_ok(client, content=body)
    assert data["message"] == expected
    assert await poll(client) == [data]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "backup done"),  # what `curl -d` sends
        ("application/x-www-form-urlencoded", "a=b&c=d"),
        ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=a"),
        ("application/json", '{"topic": "elsewhere", "message": "not parsed"}'),
        ("text/plain; charset=utf-8", "plain"),
    ],
)
async def test_body_is_the_raw_text_whatever_its_type(
    client: httpx.AsyncClient, content_type: str, body: str
) -> None:
    data = await publish_ok(client, content=body.encode(), headers={"Content-Type": content_type})
    assert (data["topic"], data["message"]) == ("alerts", body)
    assert await poll(client) == [data]


# (field, expected value, header names, query names) for every ntfy option alias.
OPTION_ALIASES = [
    ("title", "Nightly", ["X-Title", "Title", "t", "ti", "x-title", "TITLE"], ["title", "t", "ti"]),
    ("priority", 4, ["X-Priority", "Priority", "prio", "p"], ["priority", "prio", "p"]),
    ("tags", ["a", "b"], ["X-Tags", "Tags", "tag", "ta"], ["tags", "tag", "ta"]),
    ("click", "https://example.com/x", ["X-Click", "Click"], ["click"]),
]
RAW_VALUE = {
    "title": "Nightly",
    "priority": "high",
    "tags": "a,b",
    "click": "https://example.com/x",
}


@pytest.mark.parametrize(
    ("field", "expected", "source", "name"),
    [
        (field, expected, source, name)
        for field, expected, headers, queries in OPTION_ALIASES
        for source, names in (("header", headers), ("query", queries))
        for name in names
    ],
)
async def test_option_alias(
    client: httpx.AsyncClient, field: str, expected: object, source: str, name: str
) -> None:
    where: dict[str, Any] = {
        "headers" if source == "header" else "params": {name: RAW_VALUE[field]}
    }
    data = await publish_ok(client, content=b"hi", **where)
    assert data[field] == expected
    assert data.keys() == BASE_KEYS | {field}
    assert await poll(client) == [data]


@pytest.mark.parametrize(("value", "expected"), PRIORITIES.items())
@pytest.mark.parametrize("source", ["headers", "params"])
async def test_priority_values(
    client: httpx.AsyncClient, value: str, expected: int, source: str
) -> None:
    options: dict[str, Any] = {source: {"priority": value}}
    data = await publish_ok(client, content=b"hi", **options)
    assert data["priority"] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a", ["a"]), ("a, b ,c", ["a", "b", "c"]), ("a,,b,", ["a", "b"]), (" , ", None)],
)
async def test_tags_list(client: httpx.AsyncClient, value: str, expected: list[str] | None) -> None:
    data = await publish_ok(client, content=b"hi", headers={"Tags": value})
    assert data.get("tags") == expected


async def test_every_option_at_once(client: httpx.AsyncClient) -> None:
    headers = {"Title": "T", "Priority": "5", "Tags": "x,y", "Click": "https://c.example"}
    data = await publish_ok(client, content=b"all", headers=headers)
    expected = {"title": "T", "priority": 5, "tags": ["x", "y"], "click": "https://c.example"}
    assert {key: data[key] for key in expected} == expected
    assert await poll(client) == [data]


@pytest.mark.parametrize(
    ("headers", "params", "expected"),
    [
        ({"Title": "from header"}, {"title": "from query"}, "from header"),
        ({"t": "short header"}, {"title": "long query"}, "short header"),
        ({}, {"t": "query alias"}, "query alias"),
    ],
)
async def test_header_beats_query(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, str], expected: str
) -> None:
    data = await publish_ok(client, content=b"hi", headers=headers, params=params)
    assert data["title"] == expected


async def test_utf8_header_value(client: httpx.AsyncClient) -> None:
    # curl sends the header bytes as typed; servers hand them over as latin-1.
    data = await publish_ok(client, content=b"hi", headers={"Title": "caf\u00e9".encode()})
    assert data["title"] == "caf\u00e9"


async def test_rfc_2047_header_value(client: httpx.AsyncClient) -> None:
    # What mail-minded clients send when a header must stay ASCII.
    headers = {"Title": "=?UTF-8?B?w6lsw6h2ZQ==?=", "Tags": "=?utf-8?q?caf=C3=A9?=,b"}
    data = await publish_ok(client, content=b"hi", headers=headers)
    assert (data["title"], data["tags"]) == ("\u00e9l\u00e8ve", ["caf\u00e9", "b"])


async def test_http_priority_header_of_a_proxy_is_ignored(client: httpx.AsyncClient) -> None:
    data = await publish_ok(client, content=b"hi", headers={"Priority": "u=1, i"})
    assert "priority" not in data


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("headers", {"X-Cache": "no"}),
        ("headers", {"Cache": "no"}),
        ("headers", {"x-cache": "NO"}),
        ("headers", {"X-Cache": "0"}),
        ("headers", {"X-Cache": "false"}),
        ("headers", {"X-Cache": "off"}),
        ("params", {"cache": "no"}),
    ],
)
async def test_cache_no_answers_but_stores_nothing(
    client: httpx.AsyncClient, where: str, value: dict[str, str]
) -> None:
    options: dict[str, Any] = {where: value}
    data = await publish_ok(client, content=b"live only", **options)
    assert data["message"] == "live only"
    assert await poll(client) == []
    assert (await client.get("/api/v1/topics")).json() == {"topics": []}


async def test_uncached_id_is_still_a_cursor(client: httpx.AsyncClient) -> None:
    live = await publish_ok(client, content=b"live", headers={"X-Cache": "no"})
    stored = await publish_ok(client, content=b"stored")
    resumed = await client.get("/alerts/json", params={"poll": "1", "since": live["id"]})
    assert resumed.json() == stored


@pytest.mark.parametrize("value", ["yes", "1", "true", "on", ""])
async def test_cache_yes_stores(client: httpx.AsyncClient, value: str) -> None:
    data = await publish_ok(client, content=b"kept", headers={"X-Cache": value})
    assert await poll(client) == [data]


@pytest.mark.parametrize("headers", [{"Firebase": "no"}, {"UnifiedPush": "1"}])
async def test_ntfy_headers_with_nothing_to_do_here_are_accepted(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    data = await publish_ok(client, content=b"plain", headers=headers)
    assert data.keys() == BASE_KEYS
    assert await poll(client) == [data]


@pytest.mark.parametrize(
    "headers",
    [
        {"Email": "ops@example.com"},
        {"Delay": "10m"},
        {"X-Delay": "tomorrow, 10am"},
        {"Attach": "https://example.com/file.jpg"},
        {"Filename": "file.jpg"},
        {"Call": "yes"},
        {"Template": "yes"},
    ],
)
async def test_ntfy_headers_for_what_this_server_does_not_offer_are_400(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # A 200 that dropped the e-mail, the delay or the file would lose what was asked for.
    response = await client.post("/alerts", content=b"plain", headers=headers)
    assert response.status_code == 400, response.text
    assert "this server" in response.json()["message"]
    assert await poll(client) == []


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("body", [b"", b"   ", b"\n\n"])
async def test_empty_body_is_triggered(client: httpx.AsyncClient, method: str, body: bytes) -> None:
    data = await publish_ok(client, method=method, content=body)
    assert data["message"] == "triggered"
    assert await poll(client) == [data]


@pytest.mark.parametrize(
    "where",
    [
        {"headers": {"X-Message": "from option"}},
        {"headers": {"Message": "from option"}},
        {"headers": {"m": "from option"}},
        {"params": {"message": "from option"}},
        {"params": {"m": "from option"}},
    ],
)
async def test_message_option_when_body_empty(
    client: httpx.AsyncClient, where: dict[str, Any]
) -> None:
    data = await publish_ok(client, content=b"", **where)
    assert data["message"] == "from option"
    assert await poll(client) == [data]


async def test_body_beats_message_option(client: httpx.AsyncClient) -> None:
    data = await publish_ok(client, content=b"body", params={"message": "query"})
    assert data["message"] == "body"


async def test_message_option_escaped_newline(client: httpx.AsyncClient) -> None:
    data = await publish_ok(client, content=b"", params={"message": "one\\ntwo"})
    assert data["message"] == "one\ntwo"


@pytest.mark.parametrize("action", ["publish", "send", "trigger"])
async def test_get_publish(client: httpx.AsyncClient, action: str) -> None:
    params = {"message": "via get", "title": "T", "p": "2", "ta": "x"}
    data = await publish_ok(client, f"/alerts/{action}", method="GET", params=params)
    assert data["message"] == "via get"
    assert (data["title"], data["priority"], data["tags"]) == ("T", 2, ["x"])
    assert await poll(client) == [data]


@pytest.mark.parametrize("action", ["publish", "send", "trigger"])
async def test_get_publish_without_message_is_triggered(
    client: httpx.AsyncClient, action: str
) -> None:
    data = await publish_ok(client, f"/alerts/{action}", method="GET")
    assert data["message"] == "triggered"
    assert await poll(client) == [data]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"topic": "alerts", "message": "json"}, {"message": "json"}),
        ({"topic": "alerts"}, {"message": "triggered"}),
        ({"topic": "alerts", "message": "  "}, {"message": "triggered"}),
        (
            {
                "topic": "alerts",
                "message": "full",
                "title": "T",
                "priority": 4,
                "tags": ["a", "b"],
                "click": "https://example.com",
            },
            {
                "message": "full",
                "title": "T",
                "priority": 4,
                "tags": ["a", "b"],
                "click": "https://example.com",
            },
        ),
        ({"topic": "alerts", "message": "m", "priority": "urgent"}, {"priority": 5}),
        ({"topic": "alerts", "message": "m", "priority": "2"}, {"priority": 2}),
        ({"topic": "alerts", "message": "m", "tags": [" a ", ""]}, {"tags": ["a"]}),
        ({"topic": "alerts", "message": "m", "title": None}, {"message": "m"}),
        (
            {"topic": "alerts", "message": "m", "markdown": True, "icon": "https://e.x/i.png"},
            {"message": "m", "content_type": "text/markdown", "icon": "https://e.x/i.png"},
        ),
    ],
)
async def test_json_publish(
    client: httpx.AsyncClient, payload: dict[str, Any], expected: dict[str, Any]
) -> None:
    data = await publish_ok(client, "/", json=payload)
    assert data["topic"] == "alerts"
    assert {key: data[key] for key in expected} == expected
    assert await poll(client) == [data]


@pytest.mark.parametrize("cache", [False, "no"])
async def test_json_publish_uncached(client: httpx.AsyncClient, cache: object) -> None:
    payload = {"topic": "alerts", "message": "live", "cache": cache}
    data = await publish_ok(client, "/", json=payload)
    assert data["message"] == "live"
    assert await poll(client) == []


@pytest.mark.parametrize("topic", ["a", "A-b_9", "x" * 64])
async def test_valid_topic_names(client: httpx.AsyncClient, topic: str) -> None:
    data = await publish_ok(client, f"/{topic}", content=b"hi")
    assert data["topic"] == topic
    assert await poll(client, topic) == [data]


async def test_topics_are_separate(client: httpx.AsyncClient) -> None:
    first = await publish_ok(client, "/one", content=b"1")
    second = await publish_ok(client, "/two", content=b"2")
    assert (await poll(client, "one"), await poll(client, "two")) == ([first], [second])
    assert first["id"] != second["id"]


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({"Markdown": "yes", "Icon": "https://example.com/icon.png"}, {}),
        ({"X-Markdown": "1", "X-Icon": "https://example.com/icon.png"}, {}),
        ({"Content-Type": "text/markdown"}, {"icon": "https://example.com/icon.png"}),
        ({}, {"md": "true", "icon": "https://example.com/icon.png"}),
    ],
)
async def test_markdown_and_icon_arrive_with_the_message(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, str]
) -> None:
    data = await publish_ok(client, content=b"**disk** full", headers=headers, params=params)
    assert (data["content_type"], data["icon"]) == (
        "text/markdown",
        "https://example.com/icon.png",
    )
    assert await poll(client) == [data]


async def test_an_icon_that_is_no_http_url_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/alerts", content=b"x", headers={"Icon": "file:///etc/passwd"})
    assert response.status_code == 400
    assert "icon" in response.json()["message"]
    assert await poll(client) == []


async def test_actions_arrive_with_the_message(client: httpx.AsyncClient) -> None:
    header = "view, Open portal, https://example.com, clear=true; http, Ping, https://x, method=put"
    data = await publish_ok(client, content=b"hi", headers={"Actions": header})
    for action in data["actions"]:
        assert isinstance(action.pop("id"), str)
    assert data["actions"] == [
        {"action": "view", "label": "Open portal", "clear": True, "url": "https://example.com"},
        {"action": "http", "label": "Ping", "clear": False, "url": "https://x", "method": "PUT"},
    ]
    (polled,) = await poll(client)
    assert [a["label"] for a in polled["actions"]] == ["Open portal", "Ping"]


async def test_json_publish_with_actions(client: httpx.AsyncClient) -> None:
    actions = [{"action": "broadcast", "label": "Snap", "extras": {"camera": "front"}}]
    data = await publish_ok(
        client, "/", json={"topic": "alerts", "message": "m", "actions": actions}
    )
    (action,) = data["actions"]
    assert (action["action"], action["label"], action["extras"]) == (
        "broadcast",
        "Snap",
        {"camera": "front"},
    )
    assert await poll(client) == [data]


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"url": "/alerts", "content": b"x", "headers": {"Actions": "view, no url"}},
        {"url": "/alerts", "content": b"x", "headers": {"X-Actions": "jump, Go"}},
        {"url": "/", "json": {"topic": "alerts", "actions": [{"action": "view", "label": "L"}]}},
        {"url": "/", "json": {"topic": "alerts", "actions": "view, L, https://x"}},
    ],
)
async def test_bad_actions_are_400_and_nothing_is_stored(
    client: httpx.AsyncClient, request_kwargs: dict[str, Any]
) -> None:
    response = await client.post(**request_kwargs)
    assert response.status_code == 400, response.text
    assert "action" in response.json()["message"]
    assert await poll(client) == []


async def test_unifiedpush_binary_body_arrives_base64(client: httpx.AsyncClient) -> None:
    body = bytes(range(256))
    data = await publish_ok(client, "/alerts?up=1", content=body)
    assert data["encoding"] == "base64"
    assert base64.b64decode(data["message"]) == body
    assert await poll(client) == [data]
