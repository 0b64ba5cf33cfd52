"""What the benchmark-only routes do (``TANDEM_BENCH_ROUTES=1``, see ``benchmarks/``).

``/api/v1/bench/io`` waits :data:`IO_SECONDS`, as a view waits on an upstream call;
``/api/v1/bench/cpu`` burns :data:`CPU_SECONDS` of CPU in pure Python, holding the GIL.
Each door does the waiting its own way (``time.sleep`` in a sync worker,
``await asyncio.sleep`` on the loop); the CPU burn is the same code in both.
"""

from __future__ import annotations

import time

IO_SECONDS = 0.020
CPU_SECONDS = 0.005


def burn_cpu(seconds: float = CPU_SECONDS) -> int:
    """Compute for ``seconds`` of this thread's CPU time; return the loop count.

    Thread CPU time, not wall time: a thread that waits for the GIL or a core
    still burns its full share once it runs.
    """
    deadline = time.thread_time() + seconds
    loops = 0
    while time.thread_time() < deadline:
        for _ in range(500):
            loops += 1
    return loops


def io_body() -> dict[str, float]:
    return {"waited_ms": IO_SECONDS * 1000}


def cpu_body(loops: int) -> dict[str, float]:
    return {"cpu_ms": CPU_SECONDS * 1000, "loops": loops}
