"""Publish throughput through both doors, side by side, against bare hello-JSON apps.

Run from the repository root (needs ``wrk``; run as root, it installs it with apt-get)::

    .venv/bin/python -m benchmarks.publish [--duration 10] [--connections 64]

One run starts, one after the other and on loopback only, five servers with the
shipped config files (``gunicorn -c gunicorn.conf.py``, ``hypercorn -c hypercorn.toml``):

1. gunicorn  ``benchmarks.apps:flask_hello``   a bare Flask app answering {"hello": "world"}
2. gunicorn  ``wsgi:app``                      Tandem, publish through the loop portal
3. gunicorn  ``benchmarks.apps:flask_asgiref`` Tandem, the same view ``async def`` (asgiref)
4. hypercorn ``benchmarks.apps:quart_hello``   a bare Quart app answering {"hello": "world"}
5. hypercorn ``asgi:app``                      Tandem, publish

Every scenario gets the same request from wrk (``benchmarks/post.lua``: ``POST /<topic>``
with a short text body), a short warm-up, then ``--duration`` seconds of measurement.
Each publishing server gets a fresh SQLite file in a temporary directory, migrated with
``tandem db upgrade``, and ``TANDEM_ENV=testing``. It prints a table and the ratios
against the design's targets and writes a small JSON summary to
``benchmarks/results/publish-<date>.json`` (wrk's own reports go to the uncommitted
``benchmarks/results/raw/``). Every server it starts is stopped on exit, Ctrl-C or error.

On a busy machine, ``--rounds 3`` repeats the sequence: each scenario then reports its
median round, and each ratio the median of its per-round ratios (a ratio always pairs
two runs of the same round, made back to back). This is a benchmark, not a test: it
never fails a build.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.databases import migrate, sqlite_url
from harness.errors import HarnessError
from harness.serverprocess import Ready

from benchmarks._common import (
    BIN,
    Result,
    Workdir,
    bench_server,
    display_path,
    ensure_wrk,
    raw_dir,
    result_path,
    server_configs,
    terminate_as_exit,
    utc_now,
    versions,
    write_json,
    wrk,
    wrk_version,
)

TOPIC = "bench"
BODY = b"benchmark message"  # keep in step with post.lua
VERSIONS = ("gunicorn", "hypercorn", "flask", "quart", "asgiref", "sqlalchemy", "aiosqlite")
STOP_TIMEOUT = 20.0  # seconds a server gets to stop gracefully before SIGKILL

PUBLISH_TARGET = 0.40  # publish req/s at least 40% of hello req/s, per door
PORTAL_TARGET = 3.0  # portal at least 3x asgiref
ERROR_TOLERANCE = 0.001  # a ratio counts only if both sides had at most 0.1% errors


@dataclasses.dataclass(frozen=True)
class Scenario:
    key: str
    server: str  # "gunicorn" or "hypercorn"
    label: str
    app: str
    database: bool  # needs a migrated Tandem database


SCENARIOS = (
    Scenario("gunicorn_hello", "gunicorn", "hello", "benchmarks.apps:flask_hello", False),
    Scenario("gunicorn_portal", "gunicorn", "publish (portal)", "wsgi:app", True),
    Scenario(
        "gunicorn_asgiref", "gunicorn", "publish (asgiref)", "benchmarks.apps:flask_asgiref", True
    ),
    Scenario("hypercorn_hello", "hypercorn", "hello", "benchmarks.apps:quart_hello", False),
    Scenario("hypercorn_publish", "hypercorn", "publish", "asgi:app", True),
)

RATIOS = (
    ("gunicorn publish / hello", "gunicorn_portal", "gunicorn_hello", PUBLISH_TARGET),
    ("hypercorn publish / hello", "hypercorn_publish", "hypercorn_hello", PUBLISH_TARGET),
    ("Flask portal / asgiref", "gunicorn_portal", "gunicorn_asgiref", PORTAL_TARGET),
)


# -- load ------------------------------------------------------------------------------------


def run_scenario(
    scenario: Scenario, work: Workdir, args: argparse.Namespace, tag: str
) -> tuple[Result, str]:
    # The caller's environment as it is (TANDEM_WORKERS and the like reach the servers),
    # with rate limits off (server_env). Every server gets a database URL; only
    # publishing ones get a migrated, fresh file.
    url = sqlite_url(work.path / f"{tag}.db")
    if scenario.database:
        migrate(url)
    print(f"  {scenario.server:<9} {scenario.label:<18} {scenario.app} ...", end="", flush=True)
    server = bench_server(
        scenario.server,
        work=work,
        tag=tag,
        env={"TANDEM_DATABASE_URL": url},
        clean_env=False,
        app=scenario.app,
        name=f"{scenario.server} {scenario.app}",  # what its error messages call it
        # Ready once the app answers the benchmark's own request with a 2xx.
        ready=Ready(path=f"/{TOPIC}", method="POST", body=BODY),
        stop_timeout=STOP_TIMEOUT,
    )
    with server:
        load = {"connections": args.connections, "threads": args.threads, "timeout": args.timeout}
        wrk(server.port, seconds=args.warmup, path=f"/{TOPIC}", **load)
        result, report = wrk(
            server.port, seconds=args.duration, path=f"/{TOPIC}", sample_pid=server.pid, **load
        )
    print(f" {result.ok_rps:,.0f} req/s")
    return result, report


# -- report ----------------------------------------------------------------------------------


def median_round(runs: list[Result]) -> Result:
    return sorted(runs, key=lambda r: r.ok_rps)[(len(runs) - 1) // 2]


def ratio_rows(rounds: dict[str, list[Result]]) -> list[dict[str, Any]]:
    """Each ratio pairs the two scenarios of the same round (run back to back); with
    several rounds, its value is the median of the per-round ratios."""
    rows = []
    for name, top, bottom, target in RATIOS:
        pairs = list(zip(rounds.get(top, []), rounds.get(bottom, []), strict=False))
        if not pairs:
            continue
        each = [a.ok_rps / b.ok_rps if b.ok_rps else 0.0 for a, b in pairs]
        value = statistics.median(each)
        clean = all(r.error_rate <= ERROR_TOLERANCE for pair in pairs for r in pair)
        verdict = "PASS" if value >= target and clean else "FAIL"
        if not clean:
            verdict += " (errors)"
        row: dict[str, Any] = {
            "name": name,
            "value": round(value, 3),
            "target": target,
            "result": verdict,
        }
        if len(each) > 1:
            row["each_round"] = [round(x, 3) for x in each]
        rows.append(row)
    return rows


def hypercorn_processes(workers: int) -> str:
    # workers = 0: hypercorn serves in its own process, with no child.
    return "1 process (workers = 0)" if workers == 0 else f"{workers} worker process(es)"


def fmt_ratio(value: float, target: float) -> tuple[str, str]:
    if target < 1:  # a share of hello
        return f"{value:.1%}", f">= {target:.0%}"
    return f"{value:.2f}x", f">= {target:g}x"


def print_report(
    results: dict[str, Result], ratios: list[dict[str, Any]], meta: dict[str, Any]
) -> None:
    g, h = meta["servers"]["gunicorn"], meta["servers"]["hypercorn"]
    print()
    print(
        f"Tandem publish benchmark: {meta['cpus']} CPUs, wrk {meta['load']['threads']} thread(s)"
        f" x {meta['load']['connections']} connections, {meta['load']['duration_s']:g} s per"
        f" scenario after {meta['load']['warmup_s']:g} s warm-up, POST /{TOPIC}"
        + (f", median of {meta['rounds']} rounds" if meta["rounds"] > 1 else "")
    )
    print(
        f"gunicorn -c {g['config']}: {g['workers']} workers x {g['threads']} threads"
        f" ({g['worker_class']}); hypercorn -c {h['config']}: {hypercorn_processes(h['workers'])}"
        f" ({h['worker_class']})"
    )
    print()
    header = f"{'scenario':<29} {'app':<30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    print(header)
    print("-" * len(header))
    for scenario in SCENARIOS:
        r = results.get(scenario.key)
        if r is None:
            continue
        name = f"{scenario.server} {scenario.label}"
        print(
            f"{name:<29} {scenario.app:<30} {r.ok_rps:>9,.0f} {r.p50_ms:>8.1f}"
            f" {r.p99_ms:>8.1f} {r.errors:>7,}"
        )
    print()
    header = f"{'ratio':<29} {'value':>9} {'target':>9}  result"
    print(header)
    print("-" * len(header))
    for row in ratios:
        value, target = fmt_ratio(row["value"], row["target"])
        line = f"{row['name']:<29} {value:>9} {target:>9}  {row['result']}"
        if "each_round" in row:
            each = ", ".join(fmt_ratio(x, row["target"])[0] for x in row["each_round"])
            line += f"  (rounds: {each})"
        print(line)


def summary(
    results: dict[str, Result],
    rounds: dict[str, list[Result]],
    ratios: list[dict[str, Any]],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """The JSON summary: ``meta``, then each scenario's figures, then the ratios."""
    by_key = {s.key: s for s in SCENARIOS}
    return {
        **meta,
        "scenarios": {
            key: {
                "server": by_key[key].server,
                "app": by_key[key].app,
                "rps": round(r.ok_rps, 1),
                "p50_ms": round(r.p50_ms, 2),
                "p99_ms": round(r.p99_ms, 2),
                "requests": r.requests,
                "errors": r.errors,
                "peak_rss_mib": round(r.peak_rss_kib / 1024, 1),
                **(
                    {"rps_each_round": [round(x.ok_rps, 1) for x in rounds[key]]}
                    if len(rounds[key]) > 1
                    else {}
                ),
            }
            for key, r in results.items()
        },
        "ratios": ratios,
    }


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.publish", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds measured per server")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--timeout", type=float, default=10, help="wrk request timeout, seconds")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the whole sequence; each scenario reports its median round",
    )
    parser.add_argument(
        "--only", action="append", choices=[s.key for s in SCENARIOS], help="run only these"
    )
    parser.add_argument("--output", type=Path, help="JSON result file (default: results/...)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup <= 0 or args.rounds < 1:
        parser.error("need --duration > 0, --warmup > 0 and --rounds >= 1")
    if args.connections < args.threads:
        parser.error("need --connections >= --threads")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = ensure_wrk()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    for tool in ("gunicorn", "hypercorn", "tandem"):
        if not (BIN / tool).exists():
            print(f"{BIN / tool} not found: run this with the project's venv", file=sys.stderr)
            return 2
    scenarios = [s for s in SCENARIOS if not args.only or s.key in args.only]
    load1 = os.getloadavg()[0]
    started = utc_now()
    meta: dict[str, Any] = {
        "benchmark": "publish",
        "date": started.isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_before": round(load1, 2),
        "rounds": args.rounds,
        "load": {
            "tool": wrk_version(),
            "threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "request": f"POST /{TOPIC} ({len(BODY)}-byte text body)",
        },
        "servers": server_configs(),
        "versions": versions(VERSIONS),
    }
    if load1 > 0.5:
        print(f"note: load average {load1:.2f} before the run; other work skews the figures")
    runs = len(scenarios) * args.rounds
    print(f"running {runs} scenario runs, about {runs * (args.duration + args.warmup + 4):.0f} s")
    # Logs and databases; removed on the way out unless --keep.
    with Workdir("bench", keep=args.keep) as work:
        # wrk's own reports, for a closer look; benchmarks/results/raw/ is not committed.
        raw = raw_dir("publish", started)
        rounds: dict[str, list[Result]] = {s.key: [] for s in scenarios}
        try:
            with terminate_as_exit():
                for number in range(1, args.rounds + 1):
                    if args.rounds > 1:
                        print(f" round {number} of {args.rounds}")
                    for scenario in scenarios:
                        tag = f"{scenario.key}-{number}"
                        result, report = run_scenario(scenario, work, args, tag)
                        rounds[scenario.key].append(result)
                        (raw / f"{tag}.txt").write_text(report + "\n")
        except HarnessError as exc:
            print(f"\nbenchmark failed: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\ninterrupted; servers stopped", file=sys.stderr)
            return 130
        except SystemExit:
            print("\nterminated; servers stopped", file=sys.stderr)
            raise
        finally:
            if args.keep:
                print(f"logs and databases kept in {work.path}")
    meta["elapsed_s"] = round((utc_now() - started).total_seconds(), 1)
    meta["load_average_after"] = round(os.getloadavg()[0], 2)
    # With several rounds, each scenario reports the round with its median throughput.
    results = {key: median_round(runs) for key, runs in rounds.items()}
    ratios = ratio_rows(rounds)
    print_report(results, ratios, meta)
    output = args.output or result_path("publish", started)
    write_json(output, summary(results, rounds, ratios, meta))
    print(f"\nwrote {display_path(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
