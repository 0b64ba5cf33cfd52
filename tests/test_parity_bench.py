"""Parity: the benchmark-only routes exist only with ``TANDEM_BENCH_ROUTES`` on, on both doors."""

from __future__ import annotations

import time

import httpx
import pytest
from tests.conftest import SettingsFactory, serving

from tandem.core import migrate
from tandem.core.bench import CPU_SECONDS, IO_SECONDS, burn_cpu
from tandem.core.settings import Settings

ROUTES = ["/api/v1/bench/io", "/api/v1/bench/cpu"]
DOORS = ["flask", "quart"]


async def get(door: str, settings: Settings, path: str) -> httpx.Response:
    async with serving(door, settings) as (_, asgi):
        transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path)


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("path", ROUTES)
async def test_absent_by_default(door: str, path: str, settings: Settings) -> None:
    assert settings.bench_routes is False
    response = await get(door, settings, path)
    assert response.status_code == 404


@pytest.mark.parametrize("door", DOORS)
async def test_io_route_with_flag(door: str, make_settings: SettingsFactory) -> None:
    settings = make_settings(bench_routes=True)
    migrate.upgrade(settings)
    response = await get(door, settings, "/api/v1/bench/io")
    assert response.status_code == 200
    assert response.json() == {"waited_ms": IO_SECONDS * 1000}


@pytest.mark.parametrize("door", DOORS)
async def test_cpu_route_with_flag(door: str, make_settings: SettingsFactory) -> None:
    settings = make_settings(bench_routes=True)
    migrate.upgrade(settings)
    response = await get(door, settings, "/api/v1/bench/cpu")
    assert response.status_code == 200
    data = response.json()
    assert data["cpu_ms"] == CPU_SECONDS * 1000
    assert data["loops"] > 0


def test_flag_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_BENCH_ROUTES", "1")
    assert Settings(_env_file=None).bench_routes is True
    monkeypatch.delenv("TANDEM_BENCH_ROUTES")
    assert Settings(_env_file=None).bench_routes is False


def test_burn_cpu_uses_at_least_its_share() -> None:
    # By construction, not by speed: the loop runs until this thread's CPU clock passes.
    before = time.thread_time()
    assert burn_cpu(0.002) > 0
    assert time.thread_time() - before >= 0.002
