"""Abuse limits: the publish token bucket, subscription leases and failed logins, in memory
and in the real Redis; across two processes; the off switch; failing open when Redis is down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis
from harness.net import free_port
from harness.processes import REPO_ROOT
from harness.waiting import eventually, eventually_async
from redis.asyncio import Redis
from tests.conftest import CLOCK_START, REDIS_URL, Clock, SettingsFactory

from tandem.core import limits as limits_module
from tandem.core.errors import TooManyRequests
from tandem.core.limits import LEASE_TTL, SUBSCRIPTION_RETRY_AFTER, Limits, visitor_key
from tandem.core.runtime import Runtime
from tandem.core.settings import Settings

VISITOR = "ip:203.0.113.7"
WAIT = 10.0

LimitsFactory = Callable[..., Limits]


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    yield client
    await client.aclose()


@pytest.fixture
async def make_limits(
    make_settings: SettingsFactory, redis_prefix: str, clock: Clock, redis_client: Redis
) -> AsyncIterator[LimitsFactory]:
    """Build Limits on memory or on a Redis client; all are closed after the test.

    It takes ``redis_client`` (which connects only when used) so that the client is
    closed after the Limits: closing a Limits talks to Redis, and on a closed client
    that would open a connection that nothing closes.
    """
    made: list[Limits] = []

    def factory(client: Redis | None = None, **overrides: object) -> Limits:
        overrides.setdefault("redis_prefix", redis_prefix)
        overrides.setdefault("rate_limits", True)  # conftest's make_settings turns them off
        kwargs = {k: overrides.pop(k) for k in ("clock", "lease_refresh") if k in overrides}
        kwargs.setdefault("clock", clock)
        made.append(Limits(make_settings(**overrides), redis=client, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield factory
    for limits in made:
        await limits.close()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest) -> Redis | None:
    """None for memory, else a Redis client (each Limits shares it, as processes share Redis)."""
    if backend == "memory":
        return None
    client: Redis = request.getfixturevalue("redis_client")
    return client


async def refused(call: object) -> int:
    """Await ``call``, which must raise TooManyRequests; return its Retry-After."""
    with pytest.raises(TooManyRequests) as caught:
        await call  # type: ignore[misc]
    return caught.value.retry_after


# --- visitor keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "ip", "key"),
    [
        ("alice", "203.0.113.7", "user:alice"),
        (None, "203.0.113.7", "ip:203.0.113.7"),
        (None, "2001:db8:1:2:3:4:5:6", "ip:2001:db8:1:2::/64"),
        (None, "::ffff:198.51.100.1", "ip:198.51.100.1"),
        (None, "unknown", "ip:unknown"),
    ],
)
def test_visitor_key(user: str | None, ip: str, key: str) -> None:
    assert visitor_key(user, ip) == key


# --- publish: a token bucket ---------------------------------------------------------------


async def test_bucket_burst_then_refusal_then_one_per_refill(
    make_limits: LimitsFactory, store: Redis | None, clock: Clock
) -> None:
    limits = make_limits(store, publish_burst=3, publish_refill="5s")
    for _ in range(3):
        await limits.publish(VISITOR)
    assert await refused(limits.publish(VISITOR)) == 5

    clock.now = CLOCK_START + 4.2  # type: ignore[assignment]
    assert await refused(limits.publish(VISITOR)) == 1  # 0.8 s rounds up

    clock.now = CLOCK_START + 5
    await limits.publish(VISITOR)  # exactly one token came back
    assert await refused(limits.publish(VISITOR)) == 5


async def test_bucket_refills_up_to_burst_only(
    make_limits: LimitsFactory, store: Redis | None, clock: Clock
) -> None:
    limits = make_limits(store, publish_burst=2, publish_refill="1m")
    await limits.publish(VISITOR)
    clock.now = CLOCK_START + 3600  # idle for an hour: the bucket is full, not 60 deep
    await limits.publish(VISITOR)
    await limits.publish(VISITOR)
    assert await refused(limits.publish(VISITOR)) == 60


async def test_buckets_are_per_visitor(make_limits: LimitsFactory, store: Redis | None) -> None:
    limits = make_limits(store, publish_burst=1)
    await limits.publish("user:alice")
    await refused(limits.publish("user:alice"))
    await limits.publish("user:bob")
    await limits.publish(VISITOR)


async def test_memory_buckets_are_pruned(make_limits: LimitsFactory, clock: Clock) -> None:
    limits = make_limits(publish_burst=5, publish_refill="5s")
    for n in range(100):
        await limits.publish(f"ip:10.0.0.{n}")
    clock.now = CLOCK_START + 3600
    await limits.publish(VISITOR)
    assert list(limits._buckets) == [f"{limits._prefix}publish:{VISITOR}"]


async def test_bucket_keys_expire_in_redis(
    make_limits: LimitsFactory, redis_client: Redis, redis_prefix: str
) -> None:
    limits = make_limits(redis_client, publish_burst=4, publish_refill="5s")
    await limits.publish(VISITOR)
    ttl = await redis_client.pttl(f"{redis_prefix}limits:publish:{VISITOR}")
    assert 0 < ttl <= 5000  # one token taken: gone once it is back


# --- concurrent subscriptions ------------------------------------------------------------


async def test_subscriptions_up_to_the_limit(
    make_limits: LimitsFactory, store: Redis | None
) -> None:
    limits = make_limits(store, subscriptions_per_visitor=3)
    leases = [await limits.acquire(VISITOR) for _ in range(3)]
    assert await refused(limits.acquire(VISITOR)) == SUBSCRIPTION_RETRY_AFTER
    await limits.acquire("user:alice")  # another visitor has slots of its own

    await limits.release(leases[0])
    await limits.release(leases[0])  # twice is harmless: it frees one slot, not two
    await limits.acquire(VISITOR)
    await refused(limits.acquire(VISITOR))


async def test_subscription_block_releases_on_exit(
    make_limits: LimitsFactory, store: Redis | None
) -> None:
    limits = make_limits(store, subscriptions_per_visitor=1)
    async with limits.subscription(VISITOR):
        await refused(limits.acquire(VISITOR))
    with pytest.raises(RuntimeError):
        async with limits.subscription(VISITOR):
            raise RuntimeError("the stream failed")
    async with limits.subscription(VISITOR):
        pass
    assert not limits._leases


async def test_leases_are_shared_through_redis(
    make_limits: LimitsFactory, redis_client: Redis
) -> None:
    first = make_limits(redis_client, subscriptions_per_visitor=2)
    second = make_limits(redis_client, subscriptions_per_visitor=2)
    lease = await first.acquire(VISITOR)
    await second.acquire(VISITOR)
    await refused(first.acquire(VISITOR))
    await first.release(lease)
    await second.acquire(VISITOR)


async def test_unrefreshed_lease_expires(
    make_limits: LimitsFactory, redis_client: Redis, clock: Clock
) -> None:
    """A process that stops refreshing (it crashed) loses its leases after the TTL."""
    crashed = make_limits(redis_client, subscriptions_per_visitor=1)
    await crashed.acquire(VISITOR)
    other = make_limits(redis_client, subscriptions_per_visitor=1)
    clock.now = CLOCK_START + int(LEASE_TTL) - 1
    await refused(other.acquire(VISITOR))
    clock.now = CLOCK_START + int(LEASE_TTL) + 1
    await other.acquire(VISITOR)


async def test_refreshed_lease_outlives_the_ttl(
    make_limits: LimitsFactory, redis_client: Redis, clock: Clock
) -> None:
    holder = make_limits(redis_client, subscriptions_per_visitor=1)
    other = make_limits(redis_client, subscriptions_per_visitor=1)
    await holder.acquire(VISITOR)
    for step in range(1, 5):
        clock.now = CLOCK_START + step * 60
        await holder.refresh_leases()
    clock.now = CLOCK_START + 4 * 60 + int(LEASE_TTL) - 1
    await refused(other.acquire(VISITOR))


async def test_leases_are_refreshed_in_the_background(
    make_limits: LimitsFactory, redis_client: Redis, redis_prefix: str, clock: Clock
) -> None:
    limits = make_limits(redis_client, lease_refresh=0.05)
    lease = await limits.acquire(VISITOR)
    key = f"{redis_prefix}limits:subscriptions:{VISITOR}"
    clock.now = CLOCK_START + 60
    expected = (CLOCK_START + 60 + LEASE_TTL) * 1000

    async def refreshed() -> bool:
        return await redis_client.zscore(key, lease.id) == expected

    await eventually_async(refreshed, WAIT, interval=0.02, what="the lease to be refreshed")


async def test_close_gives_leases_back(make_limits: LimitsFactory, redis_client: Redis) -> None:
    first = make_limits(redis_client, subscriptions_per_visitor=1)
    lease = await first.acquire(VISITOR)
    await first.close()
    await first.release(lease)  # after close: a no-op
    await make_limits(redis_client, subscriptions_per_visitor=1).acquire(VISITOR)


# --- failed logins ---------------------------------------------------------------------


async def test_failed_logins_per_ip(make_limits: LimitsFactory, store: Redis | None) -> None:
    limits = make_limits(store, login_failures="3 per 15 minutes")
    for _ in range(3):
        await limits.check_login("198.51.100.1")
        await limits.login_failed("198.51.100.1")
    retry_after = await refused(limits.check_login("198.51.100.1"))
    assert 1 <= retry_after <= 15 * 60
    await limits.check_login("198.51.100.2")


async def test_failed_login_keys_sit_under_the_prefix(
    make_limits: LimitsFactory, redis_client: Redis, redis_prefix: str
) -> None:
    limits = make_limits(redis_client)
    await limits.login_failed("198.51.100.1")
    keys = [key.decode() async for key in redis_client.scan_iter(match=f"{redis_prefix}*")]
    assert len(keys) == 1
    assert keys[0].startswith(f"{redis_prefix}limits:")


# --- across processes -------------------------------------------------------------------

_SPEND_TOKENS = """
import asyncio, sys
from tandem.core.runtime import Runtime
from tandem.core.settings import Settings

async def main(now: float, count: int) -> None:
    rt = Runtime(Settings(_env_file=None), clock=lambda: now)
    await rt.start(follow=False)
    try:
        for _ in range(count):
            await rt.limits.publish(sys.argv[3])
    finally:
        await rt.stop()
    print("spent", count)

asyncio.run(main(float(sys.argv[1]), int(sys.argv[2])))
"""


def _env(sqlite_url: str, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update(
        TANDEM_ENV="testing",
        TANDEM_DATABASE_URL=sqlite_url,
        TANDEM_REDIS_URL=REDIS_URL,
        TANDEM_REDIS_PREFIX=prefix,
        **extra,
    )
    return env


async def test_publish_limit_holds_across_two_processes(
    make_limits: LimitsFactory, redis_client: Redis, redis_prefix: str, sqlite_url: str
) -> None:
    env = _env(sqlite_url, redis_prefix, TANDEM_PUBLISH_BURST="5", TANDEM_PUBLISH_REFILL="5s")
    argv = [sys.executable, "-c", _SPEND_TOKENS, str(CLOCK_START), "5", VISITOR]
    done = await asyncio.to_thread(
        subprocess.run, argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["spent", "5"]

    limits = make_limits(redis_client, publish_burst=5, publish_refill="5s")
    assert await refused(limits.publish(VISITOR)) == 5  # the other process emptied it
    await limits.publish("ip:203.0.113.8")


_HOLD_LEASES = """
import asyncio, sys
from tandem.core.runtime import Runtime
from tandem.core.settings import Settings

async def main() -> None:
    rt = Runtime(Settings(_env_file=None))
    await rt.start(follow=False)
    for _ in range(2):
        await rt.limits.acquire(sys.argv[1])
    print("held", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_leases_of_a_killed_process_expire(
    make_limits: LimitsFactory, redis_client: Redis, redis_prefix: str, sqlite_url: str
) -> None:
    env = _env(sqlite_url, redis_prefix, TANDEM_SUBSCRIPTIONS_PER_VISITOR="2")
    argv = [sys.executable, "-c", _HOLD_LEASES, VISITOR]
    proc = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)  # type: ignore[union-attr]
        assert line.strip() == "held"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT)
        proc.stdout.close()  # type: ignore[union-attr]

    clock = Clock(int(time.time()))
    limits = make_limits(redis_client, clock=clock, subscriptions_per_visitor=2)
    await refused(limits.acquire(VISITOR))
    clock.now += int(LEASE_TTL) + 5
    await limits.acquire(VISITOR)


# --- the off switch and Redis trouble ------------------------------------------------------


async def _use_every_limit(limits: Limits, *, times: int) -> None:
    """Publish, hold a subscription and fail a login ``times`` times over the limits
    (limits of 1): each raises unless the limits stand aside."""
    for _ in range(times):
        await limits.publish(VISITOR)
        lease = await limits.acquire(VISITOR)
        await limits.login_failed("198.51.100.1")
        await limits.check_login("198.51.100.1")
    await limits.release(lease)


async def test_off_switch_disables_every_limit(
    make_limits: LimitsFactory, store: Redis | None, redis_prefix: str
) -> None:
    limits = make_limits(
        store,
        rate_limits="off",
        publish_burst=1,
        subscriptions_per_visitor=1,
        login_failures="1 per hour",
    )
    await _use_every_limit(limits, times=10)
    async with limits.subscription(VISITOR):
        pass
    if store is not None:
        assert [key async for key in store.scan_iter(match=f"{redis_prefix}*")] == []


async def test_redis_down_fails_open_with_one_warning(
    make_limits: LimitsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=2)
    try:
        limits = make_limits(
            client, publish_burst=1, subscriptions_per_visitor=1, login_failures="1 per hour"
        )
        with caplog.at_level(logging.WARNING, logger="tandem.core.limits"):
            await _use_every_limit(limits, times=5)
            await limits.refresh_leases()
            limits._redis_down_until = 0.0  # past the back-off: Redis is tried again
            await limits.publish(VISITOR)
        warnings = [r.getMessage() for r in caplog.records if r.name == "tandem.core.limits"]
        assert warnings == ["rate limits not enforced: Redis unavailable (ConnectionError)"]
    finally:
        await client.aclose()


@contextlib.contextmanager
def redis_server(port: int) -> Iterator[None]:
    """A throwaway redis-server on ``port``, ready when the block starts."""
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    proc = subprocess.Popen([*argv, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_connect_timeout=1)
        eventually(
            client.ping,
            WAIT,
            interval=0.02,
            what="redis-server to start",
            ignoring=(redis.ConnectionError,),
        )
        client.close()
        yield
    finally:
        proc.kill()
        proc.wait(timeout=WAIT)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
async def test_limits_resume_when_redis_is_back(
    make_limits: LimitsFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits_module, "REDIS_RETRY", 0.0)  # no back-off: retry at once
    port = free_port()
    client = Redis.from_url(f"redis://127.0.0.1:{port}", socket_connect_timeout=2)
    try:
        limits = make_limits(client, publish_burst=1)
        with caplog.at_level(logging.INFO, logger="tandem.core.limits"):
            with redis_server(port):
                await limits.publish(VISITOR)
                await refused(limits.publish(VISITOR))
            await limits.publish(VISITOR)  # Redis is gone: fail open
            with redis_server(port):  # back, empty
                await limits.publish(VISITOR)
                await refused(limits.publish(VISITOR))
        messages = [r.getMessage() for r in caplog.records if r.name == "tandem.core.limits"]
        assert messages == [
            "rate limits not enforced: Redis unavailable (ConnectionError)",
            "rate limits enforced again: Redis is back",
        ]
    finally:
        await client.aclose()


# --- settings and the runtime -----------------------------------------------------------


def test_settings_defaults() -> None:
    settings = Settings(_env_file=None)
    assert settings.rate_limits is True
    assert settings.publish_burst == 60
    assert settings.publish_refill == 5
    assert settings.subscriptions_per_visitor == 30
    assert settings.login_failures == "10 per 15 minutes"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("login_failures", "lots"),
        ("publish_refill", "0s"),
        ("publish_burst", 0),
        ("subscriptions_per_visitor", 0),
    ],
)
def test_settings_refuse_bad_limits(
    make_settings: SettingsFactory, field: str, value: object
) -> None:
    with pytest.raises(ValueError, match=field):
        make_settings(**{field: value})


async def test_runtime_has_limits(settings: Settings) -> None:
    rt = Runtime(settings)
    with pytest.raises(RuntimeError):
        _ = rt.limits
    await rt.start()
    try:
        lease = await rt.limits.acquire(VISITOR)
        await rt.limits.publish(VISITOR)
    finally:
        await rt.stop()
    await rt.limits.release(lease)  # a stream that ends after shutdown
