"""The cost of one hop through the WSGI door's portal, on asyncio's loop and on uvloop's.

    .venv/bin/python -m benchmarks.portal [--threads 8] [--hops 40000] [--rounds 3]

Every request on the Flask door runs its core call on the portal's loop
(``tandem.bridge.portal.Portal``) and waits for the answer. This sends trivial
coroutines through real portals from a pool of threads, as gunicorn's gthread
workers do, and prints wall time and process CPU per hop for each loop, side by
side in one run, with their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import uvloop

from tandem.bridge.portal import Portal

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


async def _nothing() -> None:
    return None


def measure(
    loop_factory: Callable[[], asyncio.AbstractEventLoop], threads: int, hops: int
) -> tuple[float, float]:
    """Microseconds of wall time and of process CPU per hop."""
    portal = Portal(name="bench-portal", loop_factory=loop_factory)
    per_thread = hops // threads

    def work(count: int) -> None:
        for _ in range(count):
            portal.call(_nothing())

    try:
        wall, cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, [per_thread] * threads))
        done = per_thread * threads
        return (time.perf_counter() - wall) / done * 1e6, (time.process_time() - cpu) / done * 1e6
    finally:
        portal.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.portal", description=__doc__)
    parser.add_argument(
        "--threads", type=int, default=8, help="calling threads (gthread's default)"
    )
    parser.add_argument("--hops", type=int, default=40_000, help="hops per loop and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    args = parser.parse_args(argv)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in LOOPS}
    for _ in range(args.rounds):
        for name, factory in LOOPS.items():  # alternate, so both see the same machine
            results[name].append(measure(factory, args.threads, args.hops))
    print(
        f"portal hop, {args.threads} threads x {args.hops:,} hops, median of {args.rounds} rounds"
    )
    print(f"{'loop':<10}{'wall us/hop':>12}{'cpu us/hop':>12}")
    medians = {}
    for name, rows in results.items():
        wall = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        medians[name] = (wall, cpu)
        print(f"{name:<10}{wall:>12.1f}{cpu:>12.1f}")
    (aw, ac), (uw, uc) = medians["asyncio"], medians["uvloop"]
    print(f"asyncio / uvloop: {aw / uw:.2f}x wall, {ac / uc:.2f}x cpu")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
