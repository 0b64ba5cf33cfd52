"""Settings, read from ``TANDEM_*`` environment variables and ``.env``.

Build one :class:`Settings` at start-up and pass it into ``create_app``;
nothing in Tandem builds settings at import time.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

import limits
from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tandem.core.durations import parse_duration

Environment = Literal["development", "testing", "production"]
DefaultAccess = Literal["read-write", "read-only", "write-only", "deny-all"]

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105  (refused in production)


def _seconds(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


Seconds = Annotated[int, BeforeValidator(_seconds), Field(ge=0)]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(value: object) -> object:
    # "10.0.0.1, 192.168.0.0/16, ::1": a bare address is a network of one; host bits refused.
    if not isinstance(value, str):
        return value
    return tuple(ipaddress.ip_network(part.strip()) for part in value.split(",") if part.strip())


def _rate(value: str) -> str:
    limits.parse(value)  # "10 per 15 minutes"; raises ValueError when malformed
    return value


Networks = Annotated[tuple[Network, ...], NoDecode, BeforeValidator(_networks)]


class Settings(BaseSettings):
    """Every knob of a Tandem process. The README's configuration table lists them."""

    model_config = SettingsConfigDict(
        env_prefix="TANDEM_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        # `TANDEM_REDIS_URL=` (as in .env.example) means unset, not "".
        env_ignore_empty=True,
    )

    env: Environment = "development"
    database_url: str = "sqlite+aiosqlite:///tandem.db"
    redis_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    default_access: DefaultAccess | None = None
    base_url: str | None = None

    cache_duration: Seconds = parse_duration("12h")
    keepalive_interval: Seconds = parse_duration("30s")
    max_body: int = Field(default=4096, ge=1)
    log_level: str = "INFO"

    subscriber_queue: int = Field(default=1000, ge=1)
    # permessage-deflate on WebSockets; off, because it costs ~256 KiB per connection.
    ws_compression: bool = False
    redis_prefix: str = "tandem:"
    # How often a SQLite relay checks for commits by other processes, in seconds.
    sqlite_poll_interval: float = Field(default=0.02, gt=0)
    # How often a relay reads anyway, in case a wake-up was lost.
    relay_safety_interval: float = Field(default=1.0, gt=0)
    # gunicorn threads per worker (gunicorn.conf.py reads the same variable).
    threads: int = Field(default=8, ge=1)
    # Streams one WSGI worker may hold; unset: derived from ``threads``.
    wsgi_stream_slots: int | None = Field(default=None, ge=0)
    # Benchmark-only routes (/api/v1/bench/io, /api/v1/bench/cpu); never in production.
    bench_routes: bool = False

    db_pool_size: int = Field(default=10, ge=1)
    sqlite_busy_timeout: Seconds = parse_duration("15s")
    # How often a process checks for changes to users, tokens and access rules, in seconds.
    auth_refresh: float = Field(default=1.0, ge=0)

    # Abuse limits (core/limits.py); off is for benchmarks.
    rate_limits: bool = True
    publish_burst: int = Field(default=60, ge=1)
    publish_refill: Seconds = Field(default=parse_duration("5s"), ge=1)
    subscriptions_per_visitor: int = Field(default=30, ge=1)
    login_failures: Annotated[str, AfterValidator(_rate)] = "10 per 15 minutes"
    # Peers whose X-Forwarded-For is believed: comma-separated IPs and CIDRs.
    trusted_proxies: Networks = ()

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.env == "production" and self.secret_key == DEV_SECRET_KEY:
            raise ValueError("TANDEM_SECRET_KEY must be set in production")
        if self.env == "production" and len(self.secret_key) < 16:
            raise ValueError("TANDEM_SECRET_KEY must be at least 16 characters in production")
        return self

    @property
    def access_default(self) -> DefaultAccess:
        """The default access in force: explicit, or by environment."""
        if self.default_access is not None:
            return self.default_access
        return "deny-all" if self.env == "production" else "read-write"

    @property
    def stream_slots(self) -> int:
        """WSGI stream slots per worker: explicit, or derived from ``threads``."""
        if self.wsgi_stream_slots is not None:
            return self.wsgi_stream_slots
        return slots_for_threads(self.threads)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def slots_for_threads(threads: int) -> int:
    """Stream slots for a worker with ``threads`` threads: what is left after
    keeping a quarter of them, and at least two, for ordinary requests."""
    return max(0, threads - max(2, threads // 4))
