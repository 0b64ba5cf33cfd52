"""Parity: errors and request ids are the same through the Flask and the Quart door.

Every error is ``{"error": <reason phrase>, "message": <text>, "code": <status>}``
as ``application/json``, and a rejected request stores nothing.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from tests.conftest import serving

from tandem.core import migrate
from tandem.core.settings import Settings
from tandem.protocol.requests import MAX_PAGE

SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LONG_TOPIC = "x" * 65
TOO_MANY_TOPICS = ",".join(f"t{index}" for index in range(65))


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body.keys() == {"error", "message", "code"}
    assert (body["error"], body["code"]) == (HTTPStatus(status).phrase, status)
    assert isinstance(body["message"], str)
    assert body["message"]
    assert response.headers["x-request-id"]
    return body


async def assert_nothing_stored(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/topics")).json() == {"topics": []}
    assert (await client.get("/alerts/json", params={"poll": "1"})).content == b""


# (method, url, request keyword arguments, a word the message must contain)
BAD_REQUESTS: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/bad.topic", {"content": b"x"}, "topic"),
    ("PUT", "/bad.topic", {"content": b"x"}, "topic"),
    ("POST", f"/{LONG_TOPIC}", {"content": b"x"}, "topic"),
    ("POST", "/api", {"content": b"x"}, "reserved"),
    ("POST", "/static", {"content": b"x"}, "reserved"),
    ("POST", "/al%20erts", {"content": b"x"}, "topic"),
    ("POST", "/caf%C3%A9", {"content": b"x"}, "topic"),
    ("GET", "/bad.topic/publish", {"params": {"message": "x"}}, "topic"),
    ("GET", "/api/send", {"params": {"message": "x"}}, "reserved"),
    ("GET", "/bad.topic/json", {"params": {"poll": "1"}}, "topic"),
    ("GET", "/alerts,bad.topic/json", {"params": {"poll": "1"}}, "topic"),
    ("GET", "/alerts,,b/json", {"params": {"poll": "1"}}, "topic"),
    ("GET", f"/{TOO_MANY_TOPICS}/json", {"params": {"poll": "1"}}, "topics"),
    ("POST", "/alerts", {"content": b"x", "headers": {"Priority": "9"}}, "priority"),
    ("POST", "/alerts", {"content": b"x", "headers": {"X-Priority": "0"}}, "priority"),
    ("POST", "/alerts", {"content": b"x", "headers": {"p": "loud"}}, "priority"),
    ("POST", "/alerts", {"content": b"x", "params": {"priority": "6"}}, "priority"),
    ("GET", "/alerts/trigger", {"params": {"prio": "-1"}}, "priority"),
    ("POST", "/alerts", {"content": b"x", "headers": {"X-Cache": "maybe"}}, "cache"),
    ("POST", "/alerts", {"content": b"x", "params": {"cache": "later"}}, "cache"),
    ("POST", "/alerts", {"content": b"\xff\xfe"}, "UTF-8"),
    ("POST", "/", {"content": b"{"}, "JSON"),
    ("POST", "/", {"content": b""}, "JSON"),
    ("POST", "/", {"content": b"\xff"}, "JSON"),
    ("POST", "/", {"content": b"[]"}, "object"),
    ("POST", "/", {"content": b'"alerts"'}, "object"),
    ("POST", "/", {"content": b"42"}, "object"),
    ("POST", "/", {"content": b"null"}, "object"),
    ("POST", "/", {"json": {"message": "no topic"}}, "topic"),
    ("POST", "/", {"json": {"topic": None, "message": "x"}}, "topic"),
    ("POST", "/", {"json": {"topic": 5}}, "topic"),
    ("POST", "/", {"json": {"topic": "bad.topic"}}, "topic"),
    ("POST", "/", {"json": {"topic": "api"}}, "reserved"),
    ("POST", "/", {"json": {"topic": "alerts", "message": 5}}, "message"),
    ("POST", "/", {"json": {"topic": "alerts", "title": ["x"]}}, "title"),
    ("POST", "/", {"json": {"topic": "alerts", "priority": 7}}, "priority"),
    ("POST", "/", {"json": {"topic": "alerts", "priority": "loud"}}, "priority"),
    ("POST", "/", {"json": {"topic": "alerts", "priority": [1]}}, "priority"),
    ("POST", "/", {"json": {"topic": "alerts", "tags": "a,b"}}, "tags"),
    ("POST", "/", {"json": {"topic": "alerts", "tags": [1]}}, "tags"),
    ("POST", "/", {"json": {"topic": "alerts", "cache": "maybe"}}, "cache"),
    ("POST", "/api/v1/topics/alerts/messages", {"content": b"{"}, "JSON"),
    ("POST", "/api/v1/topics/alerts/messages", {"content": b"[1]"}, "object"),
    ("POST", "/api/v1/topics/alerts/messages", {"json": {"priority": 9}}, "priority"),
    ("POST", "/api/v1/topics/bad.topic/messages", {"json": {"message": "x"}}, "topic"),
    ("POST", "/api/v1/topics/api/messages", {"json": {"message": "x"}}, "reserved"),
    ("GET", "/api/v1/topics/bad.topic/messages", {}, "topic"),
    ("GET", "/alerts/json", {"params": {"poll": "1", "since": "bogus"}}, "since"),
    ("GET", "/alerts/json", {"params": {"poll": "1", "since": "-5"}}, "since"),
    ("GET", "/alerts/json", {"params": {"poll": "1", "since": "99999999999999"}}, "since"),
    ("GET", "/alerts/json", {"params": {"poll": "1", "since": "\u00b2"}}, "since"),
    ("GET", "/alerts/json", {"params": {"poll": "1", "since": "\u0661\u0662"}}, "since"),
    ("GET", "/alerts/json", {"params": {"poll": "1", "last_event_id": "nope"}}, "since"),
    ("GET", "/alerts/json", {"params": {"poll": "1"}, "headers": {"Last-Event-ID": "x"}}, "since"),
    ("GET", "/alerts/json", {"params": {"poll": "maybe"}}, "poll"),
    ("GET", "/alerts/json", {"params": {"poll": "1", "priority": "9"}}, "priority"),
    ("GET", "/alerts/json", {"params": {"poll": "1", "priority": "high,loud"}}, "priority"),
    *[
        ("GET", "/api/v1/topics/alerts/messages", {"params": {"cursor": cursor}}, "cursor")
        for cursor in ["x", "123", "A000000", "A0000001abcd!", "\u00e9" * 12]
    ],
    *[
        ("GET", "/api/v1/topics/alerts/messages", {"params": {"limit": limit}}, "limit")
        for limit in ["0", str(MAX_PAGE + 1), "x", "-1", "1.5", " 5", "\u00b2", "\u0661"]
    ],
]


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "word"),
    [pytest.param(*case, id=f"{case[0]} {case[1][:40]} {case[2]}"[:90]) for case in BAD_REQUESTS],
)
async def test_bad_request(
    client: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any], word: str
) -> None:
    body = assert_error(await client.request(method, url, **kwargs), 400)
    assert word.lower() in body["message"].lower()
    await assert_nothing_stored(client)


NOT_FOUND = [
    ("GET", "/a/b/c/d"),
    ("POST", "/a/b/c/d"),
    ("GET", "/alerts/"),
    ("POST", "/alerts/"),
    ("GET", "/alerts/json/extra"),
    ("GET", "/alerts/nonsense"),
    ("GET", "/api/v1/nope"),
    ("GET", "/api/v1/health/"),
    ("GET", "/api/v2/health"),
    ("GET", "/api/v1/topics/alerts"),
    ("GET", "/static/nope.css"),
]


@pytest.mark.parametrize(("method", "url"), NOT_FOUND)
async def test_not_found(client: httpx.AsyncClient, method: str, url: str) -> None:
    assert_error(await client.request(method, url, content=b"x"), 404)
    await assert_nothing_stored(client)


NOT_ALLOWED = [
    ("DELETE", "/alerts", {"POST", "PUT"}),
    ("PATCH", "/alerts", {"POST", "PUT"}),
    ("DELETE", "/", {"GET", "POST"}),
    ("PUT", "/", {"GET", "POST"}),
    ("POST", "/alerts/publish", {"GET"}),
    ("POST", "/alerts/json", {"GET"}),
    ("DELETE", "/api/v1/health", {"GET"}),
    ("POST", "/api/v1/topics", {"GET"}),
    ("DELETE", "/api/v1/topics/alerts/messages", {"GET", "POST"}),
    ("POST", "/api/v1/openapi.json", {"GET"}),
]


@pytest.mark.parametrize(("method", "url", "allowed"), NOT_ALLOWED)
async def test_method_not_allowed(
    client: httpx.AsyncClient, method: str, url: str, allowed: set[str]
) -> None:
    response = await client.request(method, url, content=b"x")
    body = assert_error(response, 405)
    allow = set(response.headers["allow"].split(", "))
    assert allowed <= allow
    assert method not in allow
    assert all(name in body["message"] for name in allowed)
    await assert_nothing_stored(client)


TOO_LARGE = "x" * 4097
AT_LIMIT = "x" * 4096
OVER_THE_LIMIT: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/alerts", {"content": TOO_LARGE.encode()}),
    ("PUT", "/alerts", {"content": TOO_LARGE.encode()}),
    ("POST", "/alerts", {"content": b"", "params": {"message": TOO_LARGE}}),
    ("PUT", "/alerts", {"content": b"  ", "params": {"m": TOO_LARGE}}),
    ("GET", "/alerts/publish", {"params": {"message": TOO_LARGE}}),
    ("GET", "/alerts/send", {"params": {"message": TOO_LARGE}}),
    ("GET", "/alerts/trigger", {"params": {"message": TOO_LARGE}}),
    ("POST", "/", {"json": {"topic": "alerts", "message": TOO_LARGE}}),
    ("POST", "/", {"content": b" " * 4097}),
    ("POST", "/api/v1/topics/alerts/messages", {"json": {"message": TOO_LARGE}}),
]


@pytest.mark.parametrize(("method", "url", "kwargs"), OVER_THE_LIMIT)
async def test_too_large(
    client: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    body = assert_error(await client.request(method, url, **kwargs), 413)
    assert "4096" in body["message"]
    await assert_nothing_stored(client)


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("POST", "/alerts", {"content": AT_LIMIT.encode()}),
        ("GET", "/alerts/publish", {"params": {"message": AT_LIMIT}}),
    ],
)
async def test_at_the_limit_is_accepted(
    client: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    response = await client.request(method, url, **kwargs)
    assert response.status_code == 200
    assert response.json()["message"] == AT_LIMIT


class TestSmallBodyLimit:
    """``max_body=64``: the limit comes from the settings, and counts bytes."""

    @pytest.fixture
    def settings(self, make_settings: Any) -> Settings:
        value: Settings = make_settings(max_body=64)
        migrate.upgrade(value)
        return value

    @pytest.mark.parametrize(
        ("method", "url", "kwargs"),
        [
            ("POST", "/alerts", {"content": b"x" * 65}),
            ("POST", "/alerts", {"content": "\u00e9".encode() * 33}),
            ("GET", "/alerts/publish", {"params": {"message": "x" * 65}}),
            ("GET", "/alerts/publish", {"params": {"message": "\u00e9" * 33}}),
            ("POST", "/alerts", {"content": b"", "headers": {"X-Message": "y" * 65}}),
            ("POST", "/", {"json": {"topic": "alerts", "message": "x" * 60}}),
            ("POST", "/api/v1/topics/alerts/messages", {"json": {"message": "x" * 60}}),
        ],
    )
    async def test_over(
        self, client: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any]
    ) -> None:
        body = assert_error(await client.request(method, url, **kwargs), 413)
        assert "64" in body["message"]
        await assert_nothing_stored(client)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"content": b"x" * 64},
            {"content": "\u00e9".encode() * 32},
            {"content": b"", "params": {"message": "x" * 64}},
        ],
    )
    async def test_at_limit(self, client: httpx.AsyncClient, kwargs: dict[str, Any]) -> None:
        response = await client.post("/alerts", **kwargs)
        assert response.status_code == 200, response.text


# One request per kind of answer: each must carry an X-Request-ID.
EVERY_KIND_OF_ANSWER: list[tuple[str, str, dict[str, Any], int]] = [
    ("POST", "/alerts", {"content": b"x"}, 200),
    ("GET", "/alerts/json", {"params": {"poll": "1"}}, 200),
    ("POST", "/api/v1/topics/alerts/messages", {"json": {}}, 201),
    ("GET", "/api/v1/health", {}, 200),
    ("GET", "/api/v1/openapi.json", {}, 200),
    ("GET", "/", {}, 200),
    ("HEAD", "/api/v1/health", {}, 200),
    ("OPTIONS", "/alerts", {}, 200),
    ("POST", "/bad.topic", {"content": b"x"}, 400),
    ("GET", "/a/b/c/d", {}, 404),
    ("DELETE", "/alerts", {}, 405),
    ("POST", "/alerts", {"content": TOO_LARGE.encode()}, 413),
]


SANE_IDS = ["abc-123", "req.1:2_Z", "a" * 128]
INSANE_IDS = [None, "", "has space", "a" * 300, "a" * 129, "a/b", "<script>", "caf\u00e9".encode()]


def _id_cases(ids: list[Any]) -> list[tuple[str, str, dict[str, Any], int, Any]]:
    """Every kind of answer with the first id, and every id on a 404."""
    return [(*kind, ids[0]) for kind in EVERY_KIND_OF_ANSWER] + [
        ("GET", "/a/b/c/d", {}, 404, incoming) for incoming in ids[1:]
    ]


@pytest.mark.parametrize(("method", "url", "kwargs", "status", "incoming"), _id_cases(SANE_IDS))
async def test_sane_request_id_is_echoed(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    kwargs: dict[str, Any],
    status: int,
    incoming: str,
) -> None:
    headers = {"X-Request-ID": incoming}
    response = await client.request(method, url, headers=headers, **kwargs)
    assert response.status_code == status
    assert response.headers["x-request-id"] == incoming


@pytest.mark.parametrize(("method", "url", "kwargs", "status", "incoming"), _id_cases(INSANE_IDS))
async def test_missing_or_insane_request_id_is_replaced(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    kwargs: dict[str, Any],
    status: int,
    incoming: str | bytes | None,
) -> None:
    headers: dict[str, str] | dict[bytes, bytes] = {}
    if isinstance(incoming, bytes):
        headers = {b"X-Request-ID": incoming}
    elif incoming is not None:
        headers = {"X-Request-ID": incoming}
    response = await client.request(method, url, headers=headers, **kwargs)
    assert response.status_code == status
    generated = response.headers["x-request-id"]
    assert SANE_REQUEST_ID.match(generated)
    assert generated != incoming


async def test_generated_request_ids_differ(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/api/v1/health")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def _summary(response: httpx.Response) -> tuple[object, ...]:
    headers = response.headers
    return (
        response.status_code,
        headers.get("content-type"),
        headers.get("allow"),
        response.content,
    )


async def _answers(door: str, settings: Settings) -> list[tuple[object, ...]]:
    cases = [
        *[(method, url, kwargs) for method, url, kwargs, _ in BAD_REQUESTS],
        *[(method, url, {}) for method, url in NOT_FOUND],
        *[(method, url, {}) for method, url, _ in NOT_ALLOWED],
        *OVER_THE_LIMIT,
    ]
    async with serving(door, settings) as (_, asgi):
        transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://tandem.test") as client:
            return [_summary(await client.request(m, url, **kwargs)) for m, url, kwargs in cases]


async def test_every_error_is_byte_identical_across_doors(settings: Settings) -> None:
    assert await _answers("flask", settings) == await _answers("quart", settings)


async def test_plain_get_on_the_websocket_route_is_a_json_error(client: httpx.AsyncClient) -> None:
    # The WSGI door has no WebSocket at all (501); the ASGI door wants an upgrade (4xx).
    response = await client.get("/alerts/ws")
    expected = {"flask": {501}, "quart": {400, 426}}[client.door]  # type: ignore[attr-defined]
    assert response.status_code in expected
    assert_error(response, response.status_code)
    await assert_nothing_stored(client)
