"""Benchmark-only routes, registered when ``TANDEM_BENCH_ROUTES`` is on."""

from __future__ import annotations

import time

from flask import Blueprint

from tandem.core.bench import IO_SECONDS, burn_cpu, cpu_body, io_body

bp = Blueprint("bench", __name__, url_prefix="/api/v1/bench")


@bp.get("/io")
def io() -> dict[str, float]:
    time.sleep(IO_SECONDS)  # a worker thread waits, as on a blocking upstream call
    return io_body()


@bp.get("/cpu")
def cpu() -> dict[str, float]:
    return cpu_body(burn_cpu())
