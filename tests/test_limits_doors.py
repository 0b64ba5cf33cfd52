"""Abuse limits through the doors, with limits on.

In process on both apps (httpx over ASGI, with the peer address chosen per client):
the publish bucket, failed logins per IP, which ``X-Forwarded-For`` is believed,
and the off switch. With real servers: concurrent subscriptions per visitor (a
stream needs a real connection), and every limit held across gunicorn and
hypercorn through the real Redis, under a key prefix of the test's own.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from harness.databases import copy_sqlite
from harness.serverprocess import ServerProcess
from harness.servers import Doors, ServerPool, gunicorn, hypercorn, serve_doors
from harness.streams import Subscription, answered, http_client, json_error
from harness.waiting import eventually_async
from harness.wire import Kind
from tests.conftest import REDIS_URL, SettingsFactory, serving

from tandem.core.limits import SUBSCRIPTION_RETRY_AFTER
from tandem.core.runtime import Runtime
from tandem.core.settings import Settings
from tandem.protocol.auth import basic_authorization

USER, PASSWORD = "alice", "alice-pass-1"
GOOD = {"Authorization": basic_authorization(USER, PASSWORD)}
BAD = {"Authorization": basic_authorization(USER, "wrong")}
PROXY = "127.0.0.1"
WAIT = 15.0
HOUR = 3600
LOGIN_WINDOW = 15 * 60


def _topic() -> str:
    return f"lim-{uuid.uuid4().hex[:8]}"


_ADDRESSES = itertools.count(1)


def _ip() -> str:
    """An address of its own (a documentation one): a visitor no other test shares."""
    n = next(_ADDRESSES)
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


def assert_429(response: httpx.Response, *, at_most: int) -> int:
    """Tandem's JSON 429 with a Retry-After of 1 to ``at_most`` seconds; return it."""
    json_error(response, 429)
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= at_most, retry_after
    return retry_after


async def add_user(settings: Settings) -> None:
    rt = Runtime(settings)
    await rt.start(follow=False)
    try:
        await rt.users.add(USER, PASSWORD)
    finally:
        await rt.stop()


# --- in process, both apps ------------------------------------------------------------------


@dataclass
class Door:
    """One app in process; :meth:`client` talks to it from a peer address of choice."""

    asgi: object
    stack: contextlib.AsyncExitStack

    async def client(self, peer: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.asgi, client=(peer, 40000))  # type: ignore[arg-type]
        client = httpx.AsyncClient(transport=transport, base_url="http://tandem.test")
        return await self.stack.enter_async_context(client)


@pytest.fixture(params=["flask", "quart"])
def door_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def limits_settings(
    make_settings: SettingsFactory, migrated_sqlite_url: str
) -> Callable[..., Settings]:
    """Settings on a migrated SQLite file of the test's own, limits on unless told."""
    return lambda **overrides: make_settings(
        database_url=migrated_sqlite_url, **{"rate_limits": True, **overrides}
    )


@contextlib.asynccontextmanager
async def open_door(name: str, settings: Settings) -> AsyncIterator[Door]:
    await add_user(settings)
    async with contextlib.AsyncExitStack() as stack, serving(name, settings) as (_, asgi):
        yield Door(asgi, stack)


async def test_publish_burst_then_429(
    door_name: str, limits_settings: Callable[..., Settings]
) -> None:
    """Every publish transport draws on one bucket per visitor: a user, else the IP."""
    settings = limits_settings(publish_burst=4, publish_refill="1h")
    topic = _topic()
    async with open_door(door_name, settings) as door:
        c = await door.client()
        sent = [
            await c.put(f"/{topic}", content=b"1"),
            await c.get(f"/{topic}/publish", params={"message": "2"}),
            await c.post("/", json={"topic": topic, "message": "3"}),
            await c.post(f"/api/v1/topics/{topic}/messages", json={"message": "4"}),
        ]
        assert [r.status_code for r in sent] == [200, 200, 200, 201], [r.text for r in sent]
        assert_429(await c.post(f"/{topic}", content=b"5"), at_most=HOUR)
        assert_429(await c.post(f"/api/v1/topics/{topic}/messages", json={}), at_most=HOUR)
        # Nothing refused was stored; reading is not limited.
        poll = await c.get(f"/{topic}/raw", params={"poll": "1"})
        assert poll.text.splitlines() == ["1", "2", "3", "4"]
        # A user is a visitor of its own, from the same address; so is another address.
        assert (await c.post(f"/{topic}", content=b"u", headers=GOOD)).status_code == 200
        other = await door.client(_ip())
        assert (await other.post(f"/{topic}", content=b"o")).status_code == 200


async def test_failed_logins_per_ip_then_429(
    door_name: str, limits_settings: Callable[..., Settings]
) -> None:
    """After too many failures an IP gets 429 before its credentials are checked, even
    right ones; callers without credentials and other addresses are not affected."""
    settings = limits_settings(login_failures="3 per 15 minutes")
    topic = _topic()
    async with open_door(door_name, settings) as door:
        c = await door.client()
        for _ in range(3):
            json_error(await c.post(f"/{topic}", content=b"x", headers=BAD), 401)
        assert_429(await c.post(f"/{topic}", content=b"x", headers=GOOD), at_most=LOGIN_WINDOW)
        bearer = {"Authorization": f"Bearer tk_{'A' * 32}"}
        assert_429(
            await c.get(f"/{topic}/json", params={"poll": "1"}, headers=bearer),
            at_most=LOGIN_WINDOW,
        )
        assert (await c.post(f"/{topic}", content=b"anonymous")).status_code == 200
        other = await door.client(_ip())
        assert (await other.post(f"/{topic}", content=b"x", headers=GOOD)).status_code == 200


async def test_forwarded_for_is_believed_from_trusted_proxies(
    door_name: str, limits_settings: Callable[..., Settings]
) -> None:
    """Through a trusted proxy, each forwarded client has its own bucket: the right-most
    address that is not a trusted hop."""
    settings = limits_settings(
        publish_burst=2,
        publish_refill="1h",
        trusted_proxies="127.0.0.1, 10.0.0.0/8",
    )
    topic = _topic()
    async with open_door(door_name, settings) as door:
        proxy = await door.client(PROXY)
        first, second = _ip(), "203.0.113.9"
        chains = {
            first: first,
            second: f"192.0.2.66, {second}, 10.1.2.3",  # the client's own claim is ignored
        }
        for chain in chains.values():
            for _ in range(2):
                response = await proxy.post(
                    f"/{topic}", content=b"x", headers={"X-Forwarded-For": chain}
                )
                assert response.status_code == 200, response.text
        for chain in chains.values():
            response = await proxy.post(
                f"/{topic}", content=b"x", headers={"X-Forwarded-For": chain}
            )
            assert_429(response, at_most=HOUR)
        # The proxy's own bucket, and the forwarded client named before the hops, are untouched.
        assert (await proxy.post(f"/{topic}", content=b"x")).status_code == 200
        fresh = {"X-Forwarded-For": "192.0.2.66"}
        assert (await proxy.post(f"/{topic}", content=b"x", headers=fresh)).status_code == 200


async def test_forged_forwarded_for_does_not_escape_the_limit(
    door_name: str, limits_settings: Callable[..., Settings]
) -> None:
    """From a peer that is not a trusted proxy, X-Forwarded-For counts for nothing."""
    settings = limits_settings(
        publish_burst=2,
        publish_refill="1h",
        trusted_proxies="127.0.0.1",
        login_failures="2 per 15 minutes",
    )
    topic = _topic()
    async with open_door(door_name, settings) as door:
        peer = await door.client(_ip())
        for index in range(2):
            forged = {"X-Forwarded-For": f"192.0.2.{index + 1}"}
            assert (await peer.post(f"/{topic}", content=b"x", headers=forged)).status_code == 200
        for forged_ip in ("192.0.2.3", "127.0.0.1", f"192.0.2.4, {PROXY}"):
            forged = {"X-Forwarded-For": forged_ip}
            assert_429(await peer.post(f"/{topic}", content=b"x", headers=forged), at_most=HOUR)
        # Nor does it escape the failed-login limit.
        for index in range(2):
            forged = {"X-Forwarded-For": f"192.0.2.{10 + index}", **BAD}
            json_error(await peer.post(f"/{topic}", content=b"x", headers=forged), 401)
        forged = {"X-Forwarded-For": "192.0.2.12", **GOOD}
        assert_429(await peer.post(f"/{topic}", content=b"x", headers=forged), at_most=LOGIN_WINDOW)


async def test_rate_limits_off_lifts_them(
    door_name: str, limits_settings: Callable[..., Settings]
) -> None:
    settings = limits_settings(
        rate_limits=False, publish_burst=1, publish_refill="1h", login_failures="1 per hour"
    )
    topic = _topic()
    async with open_door(door_name, settings) as door:
        c = await door.client()
        for _ in range(5):
            assert (await c.post(f"/{topic}", content=b"x")).status_code == 200
            json_error(await c.post(f"/{topic}", content=b"x", headers=BAD), 401)
        assert (await c.post(f"/{topic}", content=b"x", headers=GOOD)).status_code == 200


# --- real servers: concurrent subscriptions ----------------------------------------------------


def assert_open(sub: Subscription) -> None:
    assert sub.status in (200, 101), sub
    assert sub.events[0].kind == "open", sub


def assert_stream_429(sub: Subscription) -> None:
    assert sub.status == 429, sub
    assert sub.response_headers is not None
    assert sub.response_headers["Retry-After"] == str(SUBSCRIPTION_RETRY_AFTER)
    response = httpx.Response(429, headers=sub.response_headers, content=sub.body)
    response.request = httpx.Request("GET", sub.url)
    json_error(response, 429)


async def wait_until_opens(
    server: ServerProcess,
    kind: Kind,
    topic: str,
    headers: Mapping[str, str],
    timeout: float = WAIT,
) -> None:
    """Try to open a stream until the server lets it open (429 meanwhile)."""

    async def opens() -> bool:
        async with answered(kind, server.url, topic, headers=headers) as sub:
            if sub.status in (200, 101):
                return True
            assert_stream_429(sub)
            return False

    # The interval paces the retries; it is no wait for the slot.
    await eventually_async(opens, timeout, what=f"a {kind} stream on {server.name} to open")


LIMITED_ENV = {
    "TANDEM_RATE_LIMITS": "on",
    "TANDEM_SUBSCRIPTIONS_PER_VISITOR": "2",
    "TANDEM_KEEPALIVE_INTERVAL": "1s",
    # Each test is its own visitor, by the address that loopback forwards.
    "TANDEM_TRUSTED_PROXIES": PROXY,
    "TANDEM_WSGI_STREAM_SLOTS": "16",
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Doors]:
    """gunicorn (one worker: memory limits are per process) and hypercorn, limits on."""
    root = tmp_path_factory.mktemp("limits-doors")
    db = copy_sqlite(sqlite_template, root / "tandem.db")
    with serve_doors(db, root / "servers", env=LIMITED_ENV, workers=1, threads=24) as doors:
        yield doors


STREAM_CASES = [
    ("gunicorn", "sse"),
    ("gunicorn", "raw"),
    ("hypercorn", "json"),
    ("hypercorn", "sse"),
    ("hypercorn", "ws"),
]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("server", "kind"), STREAM_CASES, ids=[f"{s}-{k}" for s, k in STREAM_CASES]
)
async def test_concurrent_subscriptions_per_visitor(
    limited: Doors, server: str, kind: Kind
) -> None:
    """The third stream of a visitor gets 429; closing one frees its slot."""
    door = limited.named(server)
    me, someone = {"X-Forwarded-For": _ip()}, {"X-Forwarded-For": _ip()}
    topic = _topic()
    async with answered(kind, door.url, topic, headers=me) as first:
        assert_open(first)
        async with answered(kind, door.url, topic, headers=me) as second:
            assert_open(second)
            async with answered(kind, door.url, topic, headers=me) as third:
                assert_stream_429(third)
            async with answered(kind, door.url, topic, headers=someone) as other:
                assert_open(other)
    await wait_until_opens(door, kind, topic, me)


@pytest.mark.e2e
@pytest.mark.parametrize(
    "server",
    [
        "gunicorn",
        "hypercorn",
    ],
)
async def test_head_holds_no_subscription(limited: Doors, server: str) -> None:
    """HEAD on a stream answers its headers and holds nothing: clients that keep their
    connections open after HEADs do not use up the visitor's streams."""
    door = limited.named(server)
    me, topic = {"X-Forwarded-For": _ip()}, _topic()
    async with contextlib.AsyncExitStack() as stack:
        for kind in ("json", "sse"):
            client = await stack.enter_async_context(http_client())
            response = await client.head(f"{door.url}/{topic}/{kind}", headers=me)
            assert response.status_code == 200, response.headers
        await wait_until_opens(door, "raw", topic, me, timeout=5.0)


# --- real servers: limits held across processes through Redis ---------------------------------


@pytest.fixture
async def redis_doors(
    tmp_path: Path, migrated_sqlite_url: str, make_settings: SettingsFactory, redis_prefix: str
) -> AsyncIterator[Doors]:
    """gunicorn (2 workers) and hypercorn sharing limits through Redis under
    :func:`redis_prefix`; stopped before its keys are deleted."""
    db = migrated_sqlite_url
    await add_user(make_settings(database_url=db))
    env = {
        **LIMITED_ENV,
        "TANDEM_REDIS_URL": REDIS_URL,
        "TANDEM_REDIS_PREFIX": redis_prefix,
        "TANDEM_PUBLISH_BURST": "3",
        "TANDEM_PUBLISH_REFILL": "1h",
        "TANDEM_LOGIN_FAILURES": "2 per 15 minutes",
    }
    with serve_doors(db, tmp_path / "servers", env=env, workers=2, check_exit=False) as doors:
        yield doors


@pytest.mark.e2e
async def test_publish_bucket_is_shared_through_redis(
    redis_doors: Doors, redis_prefix: str
) -> None:
    """The bucket spent on one server (and its two workers) is empty on the other."""
    topic, me = _topic(), {"X-Forwarded-For": _ip()}
    async with http_client() as http:
        for _ in range(3):
            response = await http.post(f"{redis_doors.wsgi.url}/{topic}", content=b"x", headers=me)
            assert response.status_code == 200, response.text
        for door in (redis_doors.asgi, redis_doors.wsgi):
            assert_429(
                await http.post(f"{door.url}/{topic}", content=b"x", headers=me), at_most=HOUR
            )
        client = redis.Redis.from_url(REDIS_URL)
        try:
            assert list(client.scan_iter(match=f"{redis_prefix}limits:publish:*"))
        finally:
            client.close()


@pytest.mark.e2e
async def test_failed_logins_are_shared_through_redis(redis_doors: Doors) -> None:
    topic, me = _topic(), {"X-Forwarded-For": _ip()}
    async with http_client() as http:
        for _ in range(2):
            response = await http.post(
                f"{redis_doors.asgi.url}/{topic}", content=b"x", headers={**me, **BAD}
            )
            json_error(response, 401)
        response = await http.post(
            f"{redis_doors.wsgi.url}/{topic}", content=b"x", headers={**me, **GOOD}
        )
        assert_429(response, at_most=LOGIN_WINDOW)


@pytest.mark.e2e
async def test_subscriptions_are_shared_through_redis(redis_doors: Doors) -> None:
    """One stream on each server fills a visitor's two slots; one closing frees one."""
    topic, me = _topic(), {"X-Forwarded-For": _ip()}
    async with answered("sse", redis_doors.wsgi.url, topic, headers=me) as on_wsgi:
        assert_open(on_wsgi)
        async with answered("ws", redis_doors.asgi.url, topic, headers=me) as on_asgi:
            assert_open(on_asgi)
            others: list[tuple[ServerProcess, Kind]] = [
                (redis_doors.wsgi, "json"),
                (redis_doors.asgi, "sse"),
            ]
            for door, kind in others:
                async with answered(kind, door.url, topic, headers=me) as refused:
                    assert_stream_429(refused)
    await wait_until_opens(redis_doors.asgi, "raw", topic, me)


@pytest.mark.e2e
async def test_rate_limits_off_on_real_servers(
    server_pool: ServerPool, migrated_sqlite_url: str
) -> None:
    """TANDEM_RATE_LIMITS=off: streams and publishes past every limit."""
    db = migrated_sqlite_url
    env = {
        **LIMITED_ENV,
        "TANDEM_RATE_LIMITS": "off",
        "TANDEM_SUBSCRIPTIONS_PER_VISITOR": "1",
        "TANDEM_PUBLISH_BURST": "1",
        "TANDEM_PUBLISH_REFILL": "1h",
    }
    doors = server_pool.start(gunicorn(db, workers=1, env=env), hypercorn(db, env=env))
    topic = _topic()
    async with contextlib.AsyncExitStack() as stack, http_client() as http:
        for door in doors:
            for kind in ("sse", "json") if door.name == "gunicorn" else ("sse", "ws"):
                assert_open(await stack.enter_async_context(answered(kind, door.url, topic)))
            for _ in range(3):
                response = await http.post(f"{door.url}/{topic}", content=b"x")
                assert response.status_code == 200, response.text
