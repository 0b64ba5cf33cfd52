"""Abuse limits: publish rate and concurrent subscriptions per visitor, failed logins per IP.

State lives in memory (one process) or, when ``TANDEM_REDIS_URL`` is set, in
Redis under ``TANDEM_REDIS_PREFIX``, so that every process counts against the
same limits. A visitor is a user, or the client IP when anonymous
(:func:`visitor_key`).

- Publishing takes a token from the visitor's bucket: ``publish_burst``
  tokens, one back every ``publish_refill`` seconds.
- A subscription holds a lease. In Redis the leases of a visitor are a sorted
  set scored by expiry; the process that holds them pushes the expiry forward
  every :data:`LEASE_REFRESH` seconds, so the leases of a crashed process
  expire after :data:`LEASE_TTL` at most.
- Failed logins per IP go through the ``limits`` library (moving window).

When Redis is unreachable the limits fail open: requests are served without
them, with a warning in the log, and Redis is tried again after
:data:`REDIS_RETRY` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import limits
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tandem.core.errors import TooManyRequests
from tandem.core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

LEASE_TTL = 90.0
LEASE_REFRESH = 30.0
SUBSCRIPTION_RETRY_AFTER = 5
REDIS_RETRY = 5.0
_WARN_EVERY = 60.0
_PRUNE_EVERY_MS = 60_000
# Anonymous IPv6 visitors count per /64, as ntfy does: one host usually holds a whole /64.
_IPV6_VISITOR_PREFIX = 64
_REDIS_ERRORS = (RedisError, StorageError, OSError)


def visitor_key(user: str | None, client_ip: str) -> str:
    """The key limits are counted under: ``user:NAME``, else ``ip:ADDR`` (IPv6 per /64)."""
    if user is not None:
        return f"user:{user}"
    return f"ip:{_ip_group(client_ip)}"


def _ip_group(client_ip: str) -> str:
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, _IPV6_VISITOR_PREFIX), strict=False))
    return str(address)


@dataclass(frozen=True)
class Lease:
    """One held subscription slot; give it back with :meth:`Limits.release`."""

    visitor: str
    id: str


# Token bucket as GCRA: one "theoretical arrival time" (TAT, in ms) per key. The
# limits library has fixed, moving and sliding windows but no token bucket, so it
# is written here. A take moves the TAT one interval past max(TAT, now); it is
# refused when that lands more than ``burst`` intervals ahead of now, and the
# excess is the wait for the next token. Returns 0 (taken) or that wait in ms.
_TAKE_LUA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now) + interval
local wait = tat - now - interval * tonumber(ARGV[3])
if wait > 0 then return wait end
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', tat - now)
return 0
"""

# A visitor's leases: a sorted set of lease ids scored by expiry (ms). Expired
# members go first, then the lease is added if there is room. Returns 1 or 0.
# ARGV: now, expiry, limit, lease id, key TTL (ms).
_ACQUIRE_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


def _gcra(tat: int, now: int, interval: int, burst: int) -> tuple[int, int]:
    """The memory twin of ``_TAKE_LUA``: (wait in ms, new TAT)."""
    new_tat = max(tat, now) + interval
    return max(0, new_tat - now - interval * burst), new_tat


class Limits:
    """The abuse limits of one process, bound to the runtime's loop.

    ``clock`` gives the time for buckets and lease expiry (passed to Redis, so
    all processes should share a synchronised clock); tests move it by hand.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        redis: Redis | None,
        clock: Callable[[], float] = time.time,
        lease_ttl: float = LEASE_TTL,
        lease_refresh: float = LEASE_REFRESH,
    ) -> None:
        self.enabled = settings.rate_limits
        self._redis = redis
        self._clock = clock
        self._prefix = f"{settings.redis_prefix}limits:"
        self._burst = settings.publish_burst
        self._interval_ms = settings.publish_refill * 1000
        self._max_subscriptions = settings.subscriptions_per_visitor
        self._lease_ttl_ms = int(lease_ttl * 1000)
        self._lease_refresh = lease_refresh
        self._login_item = limits.parse(settings.login_failures)
        self._buckets: dict[str, int] = {}
        self._next_prune = 0
        self._leases: dict[str, set[str]] = {}  # visitor -> lease ids held by this process
        self._refresher: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._redis_down_until = 0.0
        self._next_warning = 0.0
        self._login_storage: MemoryStorage | RedisStorage | None = None
        if not self.enabled:
            return
        if redis is None:
            self._login_storage = MemoryStorage()
        else:
            self._take_script = redis.register_script(_TAKE_LUA)
            self._acquire_script = redis.register_script(_ACQUIRE_LUA)
            # The library's client shares the runtime's connection pool; the URI
            # only names the backend, the pool decides where it connects.
            self._login_storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                key_prefix=self._prefix.rstrip(":"),
                wrap_exceptions=True,
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            )
        self._logins = MovingWindowRateLimiter(self._login_storage)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- publish rate ------------------------------------------------------------------

    async def publish(self, visitor: str) -> None:
        """Take one publish token for ``visitor``, or raise :class:`TooManyRequests`."""
        if not self.enabled:
            return
        now = self._now_ms()
        key = f"{self._prefix}publish:{visitor}"
        if self._redis is None:
            wait = self._take_memory(key, now)
        else:
            args = [now, self._interval_ms, self._burst]
            wait = int(await self._fail_open(self._take_script(keys=[key], args=args), 0))
        if wait > 0:
            raise TooManyRequests(
                "too many messages: the publish rate limit is reached",
                retry_after=max(1, math.ceil(wait / 1000)),
            )

    def _take_memory(self, key: str, now: int) -> int:
        if now >= self._next_prune:
            self._buckets = {k: tat for k, tat in self._buckets.items() if tat > now}
            self._next_prune = now + _PRUNE_EVERY_MS
        wait, tat = _gcra(self._buckets.get(key, 0), now, self._interval_ms, self._burst)
        if wait == 0:
            self._buckets[key] = tat
        return wait

    # --- concurrent subscriptions --------------------------------------------------------

    @asynccontextmanager
    async def subscription(self, visitor: str) -> AsyncIterator[Lease]:
        """Hold one of ``visitor``'s subscription slots for the body of the block."""
        lease = await self.acquire(visitor)
        try:
            yield lease
        finally:
            await self.release(lease)

    async def acquire(self, visitor: str) -> Lease:
        """Take a subscription slot for ``visitor``, or raise :class:`TooManyRequests`."""
        if not self.enabled:
            return Lease(visitor, "")
        lease = Lease(visitor, secrets.token_hex(8))
        if self._redis is None:
            acquired = len(self._leases.get(visitor, ())) < self._max_subscriptions
        else:
            now = self._now_ms()
            key = self._lease_key(visitor)
            expires = now + self._lease_ttl_ms
            args = (now, expires, self._max_subscriptions, lease.id, self._lease_ttl_ms)
            script = self._acquire_script(keys=[key], args=args)
            acquired = bool(await self._fail_open(script, 1))
            if self._refresher is None:
                self._refresher = asyncio.create_task(self._refresh_forever(), name="tandem-leases")
        if not acquired:
            raise TooManyRequests(
                f"too many subscriptions: at most {self._max_subscriptions} at a time",
                retry_after=SUBSCRIPTION_RETRY_AFTER,
            )
        self._leases.setdefault(visitor, set()).add(lease.id)
        return lease

    async def release(self, lease: Lease) -> None:
        """Give back a slot taken by :meth:`acquire`. Releasing twice is harmless."""
        held = self._leases.get(lease.visitor)
        if held is None or lease.id not in held:
            return
        held.discard(lease.id)
        if not held:
            del self._leases[lease.visitor]
        if self._redis is not None:
            await self._fail_open(self._redis.zrem(self._lease_key(lease.visitor), lease.id), 0)

    def _lease_key(self, visitor: str) -> str:
        return f"{self._prefix}subscriptions:{visitor}"

    async def refresh_leases(self) -> None:
        """Push the expiry of every lease this process holds forward (Redis only)."""
        if self._redis is None or not self._leases:
            return
        expires = self._now_ms() + self._lease_ttl_ms
        pipe = self._redis.pipeline(transaction=False)
        for visitor, ids in self._leases.items():
            key = self._lease_key(visitor)
            # ZADD, not ZADD XX: a lease that expired while Redis was away is still held.
            pipe.zadd(key, dict.fromkeys(ids, expires))
            pipe.pexpire(key, self._lease_ttl_ms)
        await self._fail_open(pipe.execute(), [])

    async def _refresh_forever(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._lease_refresh)
            if self._closing.is_set():
                return
            try:
                await self.refresh_leases()
            except Exception:  # keep refreshing: a lost lease would free a slot still in use
                log.warning("refreshing subscription leases failed", exc_info=True)

    # --- failed logins ---------------------------------------------------------------------

    async def check_login(self, ip: str) -> None:
        """Raise :class:`TooManyRequests` if ``ip`` has failed to log in too often."""
        if not self.enabled:
            return
        ip = _ip_group(ip)
        if await self._fail_open(self._logins.test(self._login_item, "login", ip), True):
            return
        stats = await self._fail_open(
            self._logins.get_window_stats(self._login_item, "login", ip), None
        )
        wait = 1 if stats is None else math.ceil(stats.reset_time - time.time())
        raise TooManyRequests("too many failed logins", retry_after=max(1, wait))

    async def login_failed(self, ip: str) -> None:
        """Count one failed login from ``ip``."""
        if not self.enabled:
            return
        await self._fail_open(self._logins.hit(self._login_item, "login", _ip_group(ip)), True)

    # --- Redis trouble and shutdown ------------------------------------------------------

    async def _fail_open(self, call: Awaitable[T], default: T) -> T:
        """Await a Redis call; while Redis is unreachable, return ``default`` instead."""
        if time.monotonic() < self._redis_down_until:
            _close(call)
            return default
        try:
            result = await call
        except _REDIS_ERRORS as exc:
            now = time.monotonic()
            self._redis_down_until = now + REDIS_RETRY
            if now >= self._next_warning:
                self._next_warning = now + _WARN_EVERY
                log.warning("rate limits not enforced: Redis unavailable (%s)", type(exc).__name__)
            return default
        if self._redis_down_until:
            self._redis_down_until = 0.0
            log.info("rate limits enforced again: Redis is back")
        return result

    async def close(self) -> None:
        """Stop refreshing leases and give back those still held. Safe to call twice."""
        self._closing.set()
        if self._refresher is not None:
            await self._refresher
            self._refresher = None
        if self._redis is not None and self._leases:
            pipe = self._redis.pipeline(transaction=False)
            for visitor, ids in self._leases.items():
                pipe.zrem(self._lease_key(visitor), *ids)
            await self._fail_open(pipe.execute(), [])
        self._leases.clear()
        if isinstance(self._login_storage, MemoryStorage):
            # The library's memory storage runs an expiry task of its own.
            timer = self._login_storage.timer
            if timer is not None and not timer.done():
                timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await timer


def _close(call: Awaitable[object]) -> None:
    # A coroutine that is never awaited would warn when collected.
    if asyncio.iscoroutine(call):
        call.close()
