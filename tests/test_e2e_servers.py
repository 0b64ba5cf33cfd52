"""End to end: real gunicorn and hypercorn processes on one database, over loopback.

Each test migrates its own database with the real ``tandem db upgrade``, starts the
servers with the shipped config files and talks HTTP to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from harness.databases import migrate
from harness.serverprocess import ServerProcess
from harness.servers import ServerPool, gunicorn, hypercorn
from harness.waiting import eventually

from tandem.core.ids import decode_id

pytestmark = pytest.mark.e2e

MAX_BODY = 4096  # TANDEM_MAX_BODY's default, which the servers run with
SECRET = "SECRETVALUE123"
ACCESS_LOGGERS = {"gunicorn.access", "hypercorn.access"}


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _client() -> httpx.Client:
    # trust_env=False: a proxy from the environment must never see loopback traffic.
    return httpx.Client(trust_env=False, timeout=15.0)


def _poll(http: httpx.Client, server: ServerProcess, topic: str) -> list[dict[str, Any]]:
    response = http.get(f"{server.url}/{topic}/json", params={"poll": "1", "since": "all"})
    assert response.status_code == 200, (server.name, response.text)
    return [json.loads(line) for line in response.text.splitlines()]


def _assert_error(response: httpx.Response, status: int, server: ServerProcess) -> None:
    """The JSON error of DESIGN.md: ``{"error", "message", "code"}`` with the status."""
    context = (server.name, response.request.method, str(response.url), response.text)
    assert response.status_code == status, context
    assert response.headers["content-type"].startswith("application/json"), context
    body = response.json()
    assert set(body) == {"error", "message", "code"}, context
    assert body["code"] == status, context
    assert body["error"] == HTTPStatus(status).phrase, context
    assert isinstance(body["message"], str), context
    assert body["message"], context
    assert response.headers["x-request-id"], context


def _seq(message_id: str) -> int:
    seq = decode_id(message_id)
    assert seq is not None, f"not a Tandem message id: {message_id!r}"
    return seq


def _access_entry(server: ServerProcess, request_id: str) -> dict[str, Any]:
    """The access line of the request with ``request_id``, once the server has written it."""

    def wanted(line: str) -> bool:
        entry = json.loads(line)
        return entry.get("logger") in ACCESS_LOGGERS and entry.get("request_id") == request_id

    entry: dict[str, Any] = json.loads(server.wait_for_log(wanted))
    return entry


def _assert_quiet(*servers: ServerProcess) -> None:
    """No lock contention, no error and no traceback in any server's output."""
    for server in servers:
        text = server.log_text()
        assert "locked" not in text.lower(), server.log_tail()
        assert "Traceback" not in text, server.log_tail()
        for line in server.log_lines():
            entry = json.loads(line)
            assert entry.get("level") not in {"ERROR", "CRITICAL"}, line


@pytest.fixture
def sqlite_db(sqlite_url: str) -> str:
    """A SQLite file migrated by the real CLI."""
    migrate(sqlite_url)
    return sqlite_url


@pytest.fixture
def both_doors(server_pool: ServerPool, sqlite_db: str) -> tuple[ServerProcess, ...]:
    """gunicorn (2 workers x 4 threads) and hypercorn, on one migrated SQLite file."""
    return server_pool.start(gunicorn(sqlite_db, workers=2, threads=4), hypercorn(sqlite_db))


def test_each_door_reads_what_the_other_wrote(server_pool: ServerPool, database_url: str) -> None:
    """Runs on SQLite and, marked ``postgres``, on a fresh PostgreSQL database."""
    migrate(database_url)
    wsgi, asgi = server_pool.start(
        gunicorn(database_url, workers=2, threads=4), hypercorn(database_url)
    )
    topic = _topic("cross")
    with _client() as http:
        first = http.post(
            f"{wsgi.url}/{topic}",
            content="published through gunicorn",
            headers={"Title": "wsgi", "Tags": "a,b", "Priority": "high"},
        )
        assert first.status_code == 200, first.text
        sent_first = first.json()
        assert sent_first["message"] == "published through gunicorn"
        assert sent_first["priority"] == 4
        assert _poll(http, asgi, topic) == [sent_first]

        second = http.post(f"{asgi.url}/{topic}", content="published through hypercorn")
        assert second.status_code == 200, second.text
        sent_second = second.json()
        assert _poll(http, wsgi, topic) == [sent_first, sent_second]
        assert _poll(http, asgi, topic) == [sent_first, sent_second]

        # The REST publish of one door and the JSON publish of the other.
        third = http.post(f"{wsgi.url}/api/v1/topics/{topic}/messages", json={"message": "rest"})
        assert third.status_code == 201, third.text
        fourth = http.post(f"{asgi.url}/", json={"topic": topic, "message": "json"})
        assert fourth.status_code == 200, fourth.text
        expected = [sent_first, sent_second, third.json(), fourth.json()]

        pages = [http.get(f"{door.url}/api/v1/topics/{topic}/messages") for door in (wsgi, asgi)]
        for page in pages:
            assert page.status_code == 200, page.text
        assert pages[0].content == pages[1].content
        assert pages[0].json() == {"messages": expected, "next_cursor": None}
    _assert_quiet(wsgi, asgi)


async def test_concurrent_publishes_through_four_writing_processes(
    server_pool: ServerPool, sqlite_db: str
) -> None:
    """400 publishes, 32 in flight, through 3 gunicorn workers and 1 hypercorn process."""
    wsgi, asgi = server_pool.start(gunicorn(sqlite_db, workers=3, threads=4), hypercorn(sqlite_db))
    topic = _topic("load")
    texts = [f"message {n:03d}" for n in range(400)]
    in_flight = asyncio.Semaphore(32)

    async def publish(client: httpx.AsyncClient, text: str, close: bool) -> httpx.Response:
        async with in_flight:
            # A new connection per gunicorn publish spreads them over its workers.
            headers = {"Connection": "close"} if close else {}
            return await client.post(f"/{topic}", content=text, headers=headers)

    def client(server: ServerProcess) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=32)
        return httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30.0, limits=limits)

    async with client(wsgi) as to_wsgi, client(asgi) as to_asgi:
        responses = await asyncio.gather(
            *(
                publish(to_wsgi, text, True) if n % 2 == 0 else publish(to_asgi, text, False)
                for n, text in enumerate(texts)
            )
        )
    assert [r.status_code for r in responses] == [200] * len(texts), {
        r.status_code: r.text for r in responses if r.status_code != 200
    }
    published = {r.json()["id"]: r.json()["message"] for r in responses}
    assert len(published) == len(texts)  # every publish got its own id
    assert set(published.values()) == set(texts)

    with _client() as http:
        polled = {door.name: _poll(http, door, topic) for door in (wsgi, asgi)}
        stats = [http.get(f"{door.url}/api/v1/topics").json()["topics"] for door in (wsgi, asgi)]
    for name, messages in polled.items():
        ids = [message["id"] for message in messages]
        assert len(ids) == len(texts), name
        assert len(set(ids)) == len(ids), f"{name}: duplicate ids"
        assert {m["id"]: m["message"] for m in messages} == published, name
        seqs = [_seq(message_id) for message_id in ids]
        assert seqs == sorted(seqs), f"{name}: not in sequence order"
    assert [m["id"] for m in polled["gunicorn"]] == [m["id"] for m in polled["hypercorn"]]
    for topics in stats:
        assert {t["name"]: t["messages"] for t in topics}[topic] == len(texts)
    # Every gunicorn worker that served a request started its own runtime: all 3 wrote.
    assert wsgi.log_text().count('"runtime started"') == 3, wsgi.log_tail()
    _assert_quiet(wsgi, asgi)


def test_bad_input_is_refused_and_stores_nothing(both_doors: tuple[ServerProcess, ...]) -> None:
    topic = _topic("bad")
    over = b"x" * (MAX_BODY + 1)

    def chunked(data: bytes) -> Iterator[bytes]:
        # A generator body goes out with Transfer-Encoding: chunked, no Content-Length.
        yield data[:1000]
        yield data[1000:]

    with _client() as http:
        for door in both_doors:
            url = door.url
            for name in ("bad.name", "a" * 65, "sp%20ace"):
                _assert_error(http.post(f"{url}/{name}", content="x"), 400, door)
            _assert_error(http.post(f"{url}/{topic}", content=over), 413, door)
            _assert_error(http.post(f"{url}/{topic}", content=chunked(over)), 413, door)
            big = chunked(b"y" * (3 * MAX_BODY))
            _assert_error(http.post(f"{url}/{topic}", content=big), 413, door)
            oversized_json = json.dumps({"topic": topic, "message": "z" * MAX_BODY}).encode()
            _assert_error(http.post(f"{url}/", content=chunked(oversized_json)), 413, door)
            _assert_error(http.post(f"{url}/", content=b'{"topic": "'), 400, door)
            _assert_error(http.post(f"{url}/", content=b"[1, 2]"), 400, door)
            bad_priority = {"topic": topic, "message": "m", "priority": "extreme"}
            _assert_error(http.post(f"{url}/", json=bad_priority), 400, door)
            bad_header = http.post(f"{url}/{topic}", content="m", headers={"Priority": "9"})
            _assert_error(bad_header, 400, door)

            refused = http.delete(f"{url}/{topic}")
            _assert_error(refused, 405, door)
            assert {"POST", "PUT"} <= {m.strip() for m in refused.headers["allow"].split(",")}

            _assert_error(http.get(f"{url}/{topic}/json/extra/parts"), 404, door)
            _assert_error(http.get(f"{url}/api/v1/no-such-thing"), 404, door)
            since = {"poll": "1", "since": "yesterday!"}
            _assert_error(http.get(f"{url}/{topic}/json", params=since), 400, door)

        for door in both_doors:
            assert _poll(http, door, topic) == [], door.name
            page = http.get(f"{door.url}/api/v1/topics/{topic}/messages")
            assert page.json() == {"messages": [], "next_cursor": None}, door.name
            names = [t["name"] for t in http.get(f"{door.url}/api/v1/topics").json()["topics"]]
            assert topic not in names, door.name

        # Exactly the limit, chunked, is a message: the check above is not off by one.
        edge = _topic("edge")
        for door in both_doors:
            published = http.post(f"{door.url}/{edge}", content=chunked(b"e" * MAX_BODY))
            assert published.status_code == 200, (door.name, published.text)
            assert len(published.json()["message"]) == MAX_BODY, door.name
    _assert_quiet(*both_doors)


def test_logs_are_json_carry_request_ids_and_hide_credentials(
    server_pool: ServerPool, both_doors: tuple[ServerProcess, ...]
) -> None:
    topic = _topic("logs")
    encoded = base64.b64encode(f"Bearer {SECRET}".encode()).decode()
    sent: dict[str, list[tuple[str, str, int]]] = {door.name: [] for door in both_doors}
    with _client() as http:
        for door in both_doors:
            mine = f"e2e-{uuid.uuid4().hex}"
            requests = [
                http.post(f"{door.url}/{topic}", content="hi", headers={"X-Request-ID": mine}),
                http.get(f"{door.url}/{topic}/json", params={"poll": "1"}),
                http.get(f"{door.url}/{topic}/json", params={"poll": "1", "auth": SECRET}),
                http.post(f"{door.url}/{topic}", params={"auth": SECRET}, content="with auth"),
                http.get(f"{door.url}/{topic}/json", params={"since": "?", "auth": SECRET}),
                http.get(f"{door.url}/nowhere/at/all", params={"auth": encoded}),
                # Hostile values must not break a line, nor forge one.
                http.get(
                    f"{door.url}/a%22b%0A%7B%22forged%22%3A1%7D/json",
                    headers={"User-Agent": 'evil" \\ agent\t"x'},
                ),
            ]
            assert requests[0].headers["x-request-id"] == mine
            for response in requests:
                rid = response.headers["x-request-id"]
                assert rid, door.name
                sent[door.name].append((rid, response.url.path, response.status_code))

    for door in both_doors:
        for rid, path, status in sent[door.name]:
            entry = _access_entry(door, rid)
            # The path without its query string, so without ?auth=.
            assert (entry["request_id"], entry["path"], entry["status"]) == (rid, path, status)
        hostile = _access_entry(door, sent[door.name][-1][0])
        assert hostile["user_agent"] == 'evil" \\ agent\t"x'
        assert hostile["path"] == '/a"b\n{"forged":1}/json'

    server_pool.close()  # the shutdown lines count too
    for door in both_doors:
        assert door.returncode == 0, door.log_tail()
        assert door.stderr_text() == "", door.log_tail()  # everything went to the JSON stdout
        assert door.stdout_text().endswith("\n"), door.name
        for line in door.log_lines():
            assert isinstance(json.loads(line), dict), (door.name, line)
        output = door.log_text()
        assert SECRET not in output, door.name
        assert encoded not in output, door.name
        assert "forged" not in {key for line in door.log_lines() for key in json.loads(line)}


@pytest.mark.parametrize("target", ["leader", "group"])
def test_sigterm_stops_each_server_cleanly(
    both_doors: tuple[ServerProcess, ...], target: str
) -> None:
    """SIGTERM to the master alone (``kill PID``), or to its whole group (systemd), exits 0."""
    with _client() as http:
        for door in both_doors:
            # A write and a read first, so that the runtime and its pool are live.
            assert http.post(f"{door.url}/{_topic('stop')}", content="x").status_code == 200
            assert http.get(f"{door.url}/api/v1/topics").status_code == 200
    for door in both_doors:
        code = door.stop(signal.SIGTERM, group=target == "group")
        assert code == 0, door.log_tail()
    _assert_quiet(*both_doors)


def test_a_wsgi_stream_frees_its_slot_when_the_client_hangs_up(
    server_pool: ServerPool, sqlite_db: str
) -> None:
    """The slot comes back at the hang-up, not at the next keepalive write (a minute away)."""
    env = {"TANDEM_WSGI_STREAM_SLOTS": "1", "TANDEM_KEEPALIVE_INTERVAL": "60s"}
    (wsgi,) = server_pool.start(gunicorn(sqlite_db, workers=1, threads=4, env=env))
    topic = _topic("hangup")
    with _client() as http:
        for _ in range(3):  # each stream takes the one slot, then leaves it
            with socket.create_connection(("127.0.0.1", wsgi.port), timeout=10) as raw:
                raw.sendall(f"GET /{topic}/sse HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                seen = b""
                while b"event: open" not in seen:
                    chunk = raw.recv(4096)
                    assert chunk, seen
                    seen += chunk
                assert seen.startswith(b"HTTP/1.1 200")
                assert http.get(f"{wsgi.url}/api/v1/streams").json()["in_use"] == 1
            eventually(
                lambda: http.get(f"{wsgi.url}/api/v1/streams").json()["in_use"] == 0,
                10,  # well inside the 60 s keepalive
                what="the slot to be freed at the hang-up",
            )
    assert "Traceback" not in wsgi.log_text(), wsgi.log_tail()
