"""End to end: the split plane. A real nginx with the shipped ``deploy/nginx.conf`` in
front of a real gunicorn and a real hypercorn on one SQLite file: one origin.

Which door answered a request is read on both sides of nginx: its access log names the
upstream address, and the door's own JSON access log holds the request while the other
door's does not. Each test uses topics of its own, so a path names one test's requests.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from harness.databases import copy_sqlite
from harness.nginx import SplitPlane, start_split_plane
from harness.serverprocess import ServerProcess
from harness.servers import ServerPool, closing_pool
from harness.streams import http_client, json_error, poll, publish, subscribe
from harness.wire import KINDS, Kind

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.e2e

KEEPALIVE = {"TANDEM_KEEPALIVE_INTERVAL": "1s"}
MAX_BODY = 4096  # TANDEM_MAX_BODY's default, which the doors run with
ACCESS_LOGGERS = {"gunicorn.access", "hypercorn.access"}
BROWSER_TIMEOUT_MS = 20_000


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[SplitPlane]:
    """nginx in front of gunicorn (2 workers) and hypercorn, shared by this module's tests."""
    root = tmp_path_factory.mktemp("split-plane")
    db = copy_sqlite(sqlite_template, root / "tandem.db")
    with closing_pool(root / "servers") as pool:
        yield start_split_plane(pool, db, env=KEEPALIVE)


def _door_entries(door: ServerProcess, method: str, path: str) -> list[dict[str, Any]]:
    """The door's access lines for ``method path`` so far."""
    entries = [json.loads(line) for line in door.log_lines()]
    return [
        entry
        for entry in entries
        if entry.get("logger") in ACCESS_LOGGERS
        and (entry.get("method"), entry.get("path")) == (method, path)
    ]


def _answered_by(plane: SplitPlane, door: ServerProcess, method: str, path: str) -> dict[str, Any]:
    """Check that ``door``, and not the other, answered ``method path`` behind nginx;
    return the door's access line. Lines are written once a response (or stream) is done."""
    other = plane.other(door)
    seen = plane.nginx.wait_for_access(lambda e: (e["method"], e["uri"]) == (method, path))
    assert seen["upstream"] == f"127.0.0.1:{door.port}", (door.name, seen)
    door.wait_for_log(lambda line: bool(_door_entries(door, method, path)))
    assert _door_entries(other, method, path) == [], f"{other.name} also saw {method} {path}"
    return _door_entries(door, method, path)[0]


async def test_publishing_history_and_pages_go_to_gunicorn(plane: SplitPlane) -> None:
    posted, put, sent, rest = (_topic(name) for name in ("post", "put", "send", "rest"))
    async with http_client(plane.url) as http:
        for response in (
            await http.post(f"/{posted}", content="posted"),
            await http.put(f"/{put}", content="put"),
            await http.get(f"/{sent}/publish", params={"message": "sent"}),
            await http.post("/", json={"topic": rest, "message": "json"}),
        ):
            assert response.status_code == 200, response.text
        history = await http.get(f"/api/v1/topics/{posted}/messages")
        assert [m["message"] for m in history.json()["messages"]] == ["posted"]
        page = await http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")

    _answered_by(plane, plane.wsgi, "POST", f"/{posted}")
    _answered_by(plane, plane.wsgi, "PUT", f"/{put}")
    _answered_by(plane, plane.wsgi, "GET", f"/{sent}/publish")
    _answered_by(plane, plane.wsgi, "POST", "/")
    _answered_by(plane, plane.wsgi, "GET", f"/api/v1/topics/{posted}/messages")
    _answered_by(plane, plane.wsgi, "GET", "/")


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_goes_to_hypercorn_and_is_not_buffered(plane: SplitPlane, kind: Kind) -> None:
    """Published through nginx (gunicorn), received through nginx (hypercorn), each
    event while the stream is still open: nginx holds nothing back."""
    topic = _topic(kind)
    async with http_client() as http, subscribe(kind, plane.url, topic) as sub:
        # subscribe() returned on the open event, so it came through before the stream ended.
        assert sub.events[0].kind == "open", sub
        assert not sub.ended, sub
        sent = await publish(http, plane.url, topic, f"through nginx on {kind}")
        [event] = await sub.wait_messages(1)
        await sub.wait_event("keepalive")  # the stream goes on, idle, and says so
        assert not sub.ended, sub
    if kind == "raw":
        assert event.text == sent["message"]
    else:
        assert event.data == sent
    if kind == "sse":
        assert event.sse_id == sent["id"]  # the id: line passes through, for resuming
    _answered_by(plane, plane.wsgi, "POST", f"/{topic}")
    stream = _answered_by(plane, plane.asgi, "GET", f"/{topic}/{kind}")
    if kind == "ws":
        assert stream["status"] == 101, stream


async def test_several_topics_and_polling_go_to_hypercorn(plane: SplitPlane) -> None:
    first, second = _topic("multi"), _topic("multi")
    async with http_client() as http:
        one = await publish(http, plane.url, first, "one")
        two = await publish(http, plane.url, second, "two")
        polled = await poll(http, plane.url, [first, second], "json", params={"since": "all"})
        assert [event.data for event in polled] == [one, two]
        sse = await poll(http, plane.url, first, "sse", params={"since": "all"})
        assert [event.data for event in sse] == [one]
    _answered_by(plane, plane.asgi, "GET", f"/{first},{second}/json")
    _answered_by(plane, plane.asgi, "GET", f"/{first}/sse")


async def test_forwarded_headers_reach_both_doors(plane: SplitPlane) -> None:
    """nginx appends its peer to X-Forwarded-For, and sets Host (with the port) and
    X-Forwarded-Proto itself, whatever the client sent."""
    topic = _topic("forwarded")
    client_chain = "203.0.113.7"
    async with http_client(plane.url) as http:
        await publish(http, plane.url, topic, "hi", headers={"X-Forwarded-For": client_chain})
        await http.get("/api/v1/topics")
        polled = await http.get(
            f"/{topic}/json", params={"poll": "1"}, headers={"X-Forwarded-For": client_chain}
        )
        assert polled.status_code == 200
        # gunicorn believes X-Forwarded-Proto from loopback (forwarded_allow_ips): had nginx
        # passed on the client's "https", the page would show https URLs.
        page = await http.get("/", headers={"X-Forwarded-Proto": "https"})
        direct = await http.get(f"{plane.wsgi.url}/", headers={"X-Forwarded-Proto": "https"})

    chained = f"{client_chain}, 127.0.0.1"
    assert _answered_by(plane, plane.wsgi, "POST", f"/{topic}")["forwarded_for"] == chained
    assert _answered_by(plane, plane.wsgi, "GET", "/api/v1/topics")["forwarded_for"] == "127.0.0.1"
    assert _answered_by(plane, plane.asgi, "GET", f"/{topic}/json")["forwarded_for"] == chained

    assert f"http://127.0.0.1:{plane.nginx.port}/" in page.text, page.text
    assert "https://" not in page.text, page.text
    assert f"https://127.0.0.1:{plane.wsgi.port}/" in direct.text, direct.text  # the control


async def test_oversized_bodies_get_tandems_json_413(plane: SplitPlane) -> None:
    """client_max_body_size sits above TANDEM_MAX_BODY: Tandem refuses, in JSON."""
    topic = _topic("big")

    async def chunked(data: bytes) -> Any:
        yield data[:1000]  # no Content-Length: nginx reads the chunks, then decides
        yield data[1000:]

    async with http_client(plane.url) as http:
        json_error(await http.post(f"/{topic}", content=b"x" * (16 * MAX_BODY)), 413)
        json_error(await http.post(f"/{topic}", content=chunked(b"y" * (2 * MAX_BODY))), 413)
        edge = await http.post(f"/{topic}", content=chunked(b"e" * MAX_BODY))
        assert edge.status_code == 200, edge.text
        history = await http.get(f"/api/v1/topics/{topic}/messages")
    assert [len(m["message"]) for m in history.json()["messages"]] == [MAX_BODY]
    # nginx writes an access line after the response went out: wait for the last one.
    plane.nginx.wait_for_access(lambda e: e["uri"] == f"/{topic}" and e["status"] == 200)
    posts = [e for e in plane.nginx.access_entries() if e["uri"] == f"/{topic}"]
    assert [e["status"] for e in posts] == [413, 413, 200]
    assert {e["upstream"] for e in posts} == {f"127.0.0.1:{plane.wsgi.port}"}


@pytest.mark.parametrize("trusted", ["127.0.0.1", ""])
async def test_trusted_proxies_give_each_client_behind_nginx_its_own_limits(
    server_pool: ServerPool, migrated_sqlite_url: str, trusted: str
) -> None:
    """With nginx in TANDEM_TRUSTED_PROXIES, the client is taken from X-Forwarded-For:
    two clients behind nginx get a publish bucket each. Without it both are nginx."""
    env = {
        "TANDEM_RATE_LIMITS": "on",
        "TANDEM_TRUSTED_PROXIES": trusted,
        "TANDEM_PUBLISH_BURST": "1",
        "TANDEM_PUBLISH_REFILL": "1h",
    }
    # One worker: the limits count in memory, per process.
    split = start_split_plane(server_pool, migrated_sqlite_url, env=env, workers=1)
    topic = _topic("limits")

    def client(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": address}

    async with http_client(split.url) as http:
        first = await http.post(f"/{topic}", content="a", headers=client("198.51.100.1"))
        again = await http.post(f"/{topic}", content="a", headers=client("198.51.100.1"))
        other = await http.post(f"/{topic}", content="b", headers=client("198.51.100.2"))
    assert first.status_code == 200, first.text
    json_error(again, 429)
    assert int(again.headers["retry-after"]) > 0
    if trusted:
        assert other.status_code == 200, other.text
    else:
        json_error(other, 429)


def test_chromium_sees_a_curl_publish_live_through_nginx(
    split_plane: SplitPlane, chromium: Browser
) -> None:
    """The whole chain: Chromium loads the page (gunicorn) and follows an EventSource
    (hypercorn) through nginx; curl publishes from outside; the page receives it."""
    topic = _topic("browser")
    text = f"hello from curl {uuid.uuid4().hex[:6]}"
    page = chromium.new_page()
    try:
        page.goto(f"{split_plane.url}/")
        assert "Tandem" in page.title()
        page.evaluate(
            """(url) => {
                window.tandem = {open: false, messages: [], ids: []};
                const source = new EventSource(url);
                // Tandem's own "open" event carries data; the browser's has none.
                source.addEventListener("open", (event) => {
                    if (event.data) window.tandem.open = true;
                });
                source.onmessage = (event) => {
                    window.tandem.messages.push(JSON.parse(event.data).message);
                    window.tandem.ids.push(event.lastEventId);
                };
                window.tandem.source = source;
            }""",
            f"/{topic}/sse",
        )
        page.wait_for_function("window.tandem.open", timeout=BROWSER_TIMEOUT_MS)
        curl = subprocess.run(
            [
                "curl",
                "-sS",
                "--noproxy",
                "*",
                "--max-time",
                "20",
                "-d",
                text,
                f"{split_plane.url}/{topic}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert curl.returncode == 0, curl.stderr
        sent = json.loads(curl.stdout)
        page.wait_for_function(
            "(text) => window.tandem.messages.includes(text)", arg=text, timeout=BROWSER_TIMEOUT_MS
        )
        assert page.evaluate("window.tandem.messages") == [text]
        assert page.evaluate("window.tandem.ids") == [sent["id"]]
        page.evaluate("window.tandem.source.close()")
    finally:
        page.close()
    _answered_by(split_plane, split_plane.wsgi, "GET", "/")
    _answered_by(split_plane, split_plane.wsgi, "POST", f"/{topic}")
    _answered_by(split_plane, split_plane.asgi, "GET", f"/{topic}/sse")
