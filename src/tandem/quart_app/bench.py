"""Benchmark-only routes, registered when ``TANDEM_BENCH_ROUTES`` is on."""

from __future__ import annotations

import asyncio

from quart import Blueprint

from tandem.core.bench import IO_SECONDS, burn_cpu, cpu_body, io_body

bp = Blueprint("bench", __name__, url_prefix="/api/v1/bench")


@bp.get("/io")
async def io() -> dict[str, float]:
    await asyncio.sleep(IO_SECONDS)  # the loop serves others meanwhile
    return io_body()


@bp.get("/cpu")
async def cpu() -> dict[str, float]:
    return cpu_body(burn_cpu())  # on the loop: nothing else runs meanwhile
