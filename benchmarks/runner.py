"""The trade-off lab: every scenario of issue #6 in one run, then the report.

    .venv/bin/python -m benchmarks run [--quick] [--only SCENARIO ...] [--out DIR] [--docs DIR]
    .venv/bin/python -m benchmarks render [RESULTS.json] [--docs DIR]

``run`` starts real servers on loopback ports (see :mod:`benchmarks.matrix`), loads
them with wrk (plain HTTP) and :mod:`harness.loadclients` (SSE, WebSocket), writes
a small JSON summary to ``benchmarks/results/<date>-<host>.json``, draws the plots into
``docs/img/`` and regenerates ``docs/tradeoffs.md`` (:mod:`benchmarks.report`). A quick
or partial run writes all of that under the git-ignored ``benchmarks/results/raw/``
instead, unless ``--out``/``--docs`` say where. ``render`` redraws the plots and the
report from a results file without measuring. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import platform
import shlex
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.databases import fresh_sqlite, redis_available
from harness.errors import HarnessError
from harness.loadclients import ClientPool
from harness.net import http_request
from harness.processes import process_tree
from harness.serverprocess import Ready, ServerProcess

from benchmarks import publish, streams
from benchmarks._common import (
    RAW,
    REDIS_URL,
    RESULTS,
    ROOT,
    Workdir,
    cpu_seconds,
    display_path,
    ensure_wrk,
    machine,
    stamp,
    summarize,
    terminate_as_exit,
    utc_now,
    versions,
    write_json,
    wrk,
    wrk_version,
)
from benchmarks.matrix import HYPERCORN_ONE, MATRIX, QUICK_SERVERS, ServerSpec, default_workers

SCHEMA = 1
READY_S = 120.0  # many servers start at once on few cores
DOCS = ROOT / "docs"

# key: (number in issue #6, title)
SCENARIOS: dict[str, tuple[int, str]] = {
    "throughput": (1, "Hello JSON and publish: throughput and latency against concurrency"),
    "io": (2, "I/O-bound route: a 20 ms wait, like an upstream call"),
    "cpu": (3, "CPU-bound route: about 5 ms of CPU"),
    "idle": (4, "Idle stream capacity: SSE and WebSocket held by one process"),
    "fanout": (5, "Fan-out: publish-to-receive latency on one hypercorn worker"),
    "crossproc": (6, "Cross-process delivery: publish on gunicorn, receive on hypercorn"),
    "bridge": (7, "The bridge: Flask through the portal against Flask's own asgiref path"),
}
ALIASES = {str(number): key for key, (number, _) in SCENARIOS.items()}
HTTP_SCENARIOS = ("throughput", "io", "cpu")

# workload: (method, path) on the server's app (hello: the bare app; the rest: Tandem's)
WORKLOADS: dict[str, tuple[str, str]] = {
    "hello": ("POST", "/bench"),
    "publish": ("POST", "/bench"),
    "io": ("GET", "/api/v1/bench/io"),
    "cpu": ("GET", "/api/v1/bench/cpu"),
}
SCENARIO_WORKLOADS = {"throughput": ("hello", "publish"), "io": ("io",), "cpu": ("cpu",)}
PACKAGES = (
    "tandem",
    "gunicorn",
    "hypercorn",
    "uvicorn",
    "granian",
    "flask",
    "werkzeug",
    "quart",
    "asgiref",
    "uvloop",
    "httptools",
    "h11",
    "sqlalchemy",
    "aiosqlite",
    "redis",
    "matplotlib",
)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Sizes and durations of one run."""

    quick: bool
    servers: tuple[str, ...]  # matrix keys for scenarios 1-3
    extra_servers: tuple[str, ...]  # also in scenarios 2-3 (hypercorn as shipped)
    levels: tuple[int, ...]  # concurrent connections, scenarios 1-3
    warmup_s: float  # per server and workload, before the first level (whole seconds: wrk)
    duration_s: float  # per level (whole seconds)
    wrk_timeout_s: float
    drain_timeout_s: float  # wait for a server to finish queued work between levels
    bridge_connections: int
    bridge_warmup_s: float
    bridge_duration_s: float
    streams: streams.Plan


FULL = Plan(
    quick=False,
    servers=tuple(spec.key for spec in MATRIX),
    extra_servers=(HYPERCORN_ONE.key,),
    levels=(1, 16, 64, 256),
    warmup_s=1.0,
    duration_s=4.0,
    wrk_timeout_s=10.0,
    drain_timeout_s=30.0,
    bridge_connections=64,
    bridge_warmup_s=1.0,
    bridge_duration_s=5.0,
    streams=dataclasses.replace(
        streams.FULL,
        fanout=(
            ("sse", 100, 50),
            ("sse", 1_000, 50),
            ("sse", 10_000, 20),
            ("ws", 100, 50),
            ("ws", 1_000, 50),
        ),
        capacity_steps=10,
    ),
)
QUICK = Plan(
    quick=True,
    servers=QUICK_SERVERS,
    extra_servers=(),
    levels=(1, 16),
    warmup_s=1.0,
    duration_s=1.0,
    wrk_timeout_s=5.0,
    drain_timeout_s=10.0,
    bridge_connections=8,
    bridge_warmup_s=1.0,
    bridge_duration_s=1.0,
    streams=dataclasses.replace(
        streams.QUICK,
        capacity=200,
        capacity_topics=10,
        burst=50,
        settle=0.5,
        fanout=(("sse", 20, 10), ("sse", 50, 10), ("ws", 20, 10)),
        fanout_warmup=1,
        spacing=0.02,
        cross_messages=20,
        capacity_steps=4,
    ),
)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def ms(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


# -- scenarios 1-3: HTTP through the matrix -------------------------------------------------


class Recorder:
    """Collects one scenario's runs, skips and errors; times it."""

    def __init__(self, key: str) -> None:
        number, title = SCENARIOS[key]
        self.key = key
        self.data: dict[str, Any] = {
            "number": number,
            "title": title,
            "status": "ok",
            "load_average_start": load_average()[0],
            "runs": [],
            "skipped": [],
            "errors": [],
        }
        self.started = time.monotonic()
        self.elapsed: float | None = None

    def restart(self) -> None:
        """Measure from now (scenarios 1-3 share their servers' start-up)."""
        self.started = time.monotonic()
        self.data["load_average_start"] = load_average()[0]

    def stop_clock(self) -> None:
        self.elapsed = time.monotonic() - self.started

    def run(self, record: dict[str, Any]) -> None:
        self.data["runs"].append(record)

    def skip(self, what: str, reason: str, *, quiet: bool = False) -> None:
        self.data["skipped"].append({"what": what, "reason": reason})
        if not quiet:
            print(f"    skipped {what}: {reason}", flush=True)

    def error(self, what: str, reason: str) -> None:
        short = reason if len(reason) <= 800 else f"{reason[:400]} ... {reason[-400:]}"
        self.data["errors"].append({"what": what, "reason": short})
        print(f"    error in {what}: {short}", file=sys.stderr, flush=True)

    def finish(self) -> dict[str, Any]:
        data = self.data
        elapsed = self.elapsed if self.elapsed is not None else time.monotonic() - self.started
        data["elapsed_s"] = round(elapsed, 1)
        if not data["runs"]:
            data["status"] = "error" if data["errors"] else "skipped"
        elif data["errors"]:
            data["status"] = "partial"
        return data


def drain(port: int, probe: str, *, timeout: float) -> float:
    """Wait until the server answers ``GET probe`` quickly twice in a row: the requests
    a finished wrk left queued (sync workers serve closed connections too) are done."""
    started = time.monotonic()
    fast = 0
    while fast < 2 and time.monotonic() - started < timeout:
        sent = time.monotonic()
        try:
            status, _ = http_request(port, "GET", probe, timeout=timeout)
        except OSError:
            status = 0
        fast = fast + 1 if status == 200 and time.monotonic() - sent < 0.1 else 0
    return round(time.monotonic() - started, 2)


def measure_level(
    spec: ServerSpec, server: ServerProcess, workload: str, level: int, plan: Plan, probe: str
) -> dict[str, Any]:
    """One wrk run at ``level`` connections, then wait for the server to drain."""
    method, path = WORKLOADS[workload]
    result, _ = wrk(
        server.port,
        seconds=plan.duration_s,
        connections=level,
        timeout=plan.wrk_timeout_s,
        path=path,
        method=method,
        sample_pid=server.pid,
    )
    drained = drain(server.port, probe, timeout=plan.drain_timeout_s)
    print(
        f"    {spec.label:<28} {workload:<8} c={level:<4} {result.ok_rps:>8,.0f} req/s"
        f"  p50 {result.p50_ms:>8.1f}  p99 {result.p99_ms:>8.1f} ms  errors {result.errors:>6,}"
        f"  RSS {result.peak_rss_kib / 1024:>6,.0f} MiB",
        flush=True,
    )
    return {
        "server": spec.key,
        "workload": workload,
        "concurrency": level,
        "rps": round(result.ok_rps, 1),
        "p50_ms": ms(result.p50_ms),
        "p99_ms": ms(result.p99_ms),
        "errors": result.errors,
        "requests": result.requests,
        "peak_rss_mib": round(result.peak_rss_kib / 1024, 1),
        "drain_s": drained,
    }


def roster(plan: Plan, scenario: str) -> list[str]:
    """The servers (matrix keys) of one HTTP scenario."""
    keys = list(plan.servers)
    if scenario in ("io", "cpu"):
        keys += plan.extra_servers
    return keys


@dataclasses.dataclass
class Live:
    """One running server of scenarios 1-3: a spec serving the hello app or Tandem's."""

    spec: ServerSpec
    app: str  # "hello" or "tandem"
    server: ServerProcess
    failed: str | None = None  # why it can no longer be measured

    @property
    def probe(self) -> str:
        return "/" if self.app == "hello" else "/api/v1/health"


def start_live(spec: ServerSpec, app: str, work: Workdir, workers: int) -> Live:
    """Start ``spec`` on the bare hello app or on Tandem's (fresh SQLite, bench routes);
    :meth:`~harness.serverprocess.ServerProcess.wait_ready` waits for it."""
    hello = app == "hello"
    tag = f"{spec.key}-{app}"
    database = fresh_sqlite(
        work.path / f"{tag}.db",
        migrated=not hello,
        template=None if hello else work.path / "template.db",
        clean_env=True,
    )
    env = {"TANDEM_DATABASE_URL": database, "TANDEM_BENCH_ROUTES": "1"}
    if spec.key == "gunicorn-sync":
        env["TANDEM_THREADS"] = "1"  # what the app sizes its stream slots from
    # The hello app has no health route: it is ready once it answers the benchmark's request.
    if hello:
        ready = Ready(path="/bench", method="POST", body=publish.BODY, timeout=READY_S)
    else:
        ready = Ready(timeout=READY_S)
    server = spec.start(
        spec.app("hello" if hello else "publish"),
        workers=workers,
        env=env,
        work=work,
        tag=tag,
        ready=ready,
    )
    return Live(spec, app, server.start())


def background_cpu(lives: Sequence[Live], seconds: float = 2.0) -> float:
    """CPU the idle servers use together, in percent of one core (the cost of running
    them all at once)."""

    def total() -> float:
        used = 0.0
        for live in lives:
            for pid in process_tree(live.server.pid):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    used += cpu_seconds(pid)
        return used

    before = total()
    time.sleep(seconds)
    return round((total() - before) / seconds * 100, 1)


def app_for(workload: str) -> str:
    return "hello" if workload == "hello" else "tandem"


Lives = dict[tuple[str, str], Live]  # (spec key, app) -> running server


def start_all(
    needs: dict[tuple[str, str], ServerSpec],
    work: Workdir,
    workers: int,
    stack: contextlib.ExitStack,
) -> tuple[Lives, dict[tuple[str, str], str]]:
    """Start every server, then wait for each; return those up and why the others failed."""
    lives: Lives = {}
    failed: dict[tuple[str, str], str] = {}
    for ident, spec in needs.items():
        try:
            live = start_live(spec, ident[1], work, workers)
        except HarnessError as exc:
            failed[ident] = str(exc)
            continue
        stack.callback(live.server.stop)  # stopped however the run ends
        lives[ident] = live
    for ident, live in list(lives.items()):
        try:
            live.server.wait_ready()
        except HarnessError as exc:
            failed[ident] = str(exc)
            live.server.stop()
            del lives[ident]
    return lives, failed


def rotate(
    scenario: str, specs: Sequence[ServerSpec], lives: Lives, plan: Plan, rec: Recorder
) -> None:
    """One HTTP scenario: warm every server up, then each level visits every server in
    turn (the order alternates from level to level)."""
    workloads = SCENARIO_WORKLOADS[scenario]
    pairs = [(spec, w, lives[(spec.key, app_for(w))]) for spec in specs for w in workloads]
    for _, workload, live in pairs:  # warm-up: every code path once
        method, path = WORKLOADS[workload]
        try:
            wrk(
                live.server.port,
                seconds=plan.warmup_s,
                connections=min(16, max(plan.levels)),
                path=path,
                method=method,
            )
            drain(live.server.port, live.probe, timeout=plan.drain_timeout_s)
        except HarnessError as exc:
            live.failed = str(exc)
    for number, level in enumerate(plan.levels):
        for spec, workload, live in pairs if number % 2 == 0 else pairs[::-1]:
            if live.failed:
                continue
            try:
                rec.run(measure_level(spec, live.server, workload, level, plan, live.probe))
            except HarnessError as exc:
                live.failed = str(exc)
            if not live.server.running:
                live.failed = f"{live.server.name} exited:\n{live.server.log_tail()}"
    for spec, workload, live in pairs:
        if live.failed:
            rec.error(f"{spec.key} {workload}", live.failed)


def http_scenarios(
    wanted: Sequence[str], plan: Plan, work: Workdir, workers: int, wrk_missing: str | None
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Scenarios 1-3. Every server of the matrix runs at once, idle but for the one being
    measured; each concurrency level visits every server in turn, so that the ratios
    compare measurements taken seconds apart, not minutes."""
    recorders = {key: Recorder(key) for key in wanted}
    if plan.quick:
        print(f"  --quick: only {', '.join(plan.servers)}", flush=True)
        for key in wanted:
            for left_out in sorted(set(roster(FULL, key)) - set(roster(plan, key))):
                recorders[key].skip(left_out, "not in --quick", quiet=True)
    needs: dict[tuple[str, str], ServerSpec] = {}
    for spec in (*MATRIX, HYPERCORN_ONE):
        scenarios = [key for key in wanted if spec.key in roster(plan, key)]
        reason = wrk_missing or spec.missing()
        for key in scenarios:
            if reason:
                recorders[key].skip(spec.key, reason)
                continue
            for workload in SCENARIO_WORKLOADS[key]:
                needs[(spec.key, app_for(workload))] = spec
    setup: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        print(f"  starting {len(needs)} servers at once ...", flush=True)
        lives, failed = start_all(needs, work, workers, stack)
        for (key, app), reason in failed.items():
            for scenario in wanted:
                for workload in SCENARIO_WORKLOADS[scenario]:
                    if key in roster(plan, scenario) and app_for(workload) == app:
                        recorders[scenario].error(f"{key} {workload}", reason)
        setup["servers_at_once"] = len(lives)
        setup["background_cpu_pct"] = background_cpu(list(lives.values()))
        print(
            f"  {len(lives)} servers up; idle, together they use"
            f" {setup['background_cpu_pct']}% of a core",
            flush=True,
        )
        for scenario in wanted:
            specs = [
                spec
                for spec in (*MATRIX, HYPERCORN_ONE)
                if spec.key in roster(plan, scenario)
                and all((spec.key, app_for(w)) in lives for w in SCENARIO_WORKLOADS[scenario])
            ]
            print(f"scenario {SCENARIOS[scenario][0]}: {SCENARIOS[scenario][1]}", flush=True)
            recorders[scenario].restart()
            rotate(scenario, specs, lives, plan, recorders[scenario])
            recorders[scenario].stop_clock()
    return {key: rec.finish() for key, rec in recorders.items()}, setup


# -- scenarios 4-6: streams (benchmarks.streams, scaled by the plan) --------------------------


def attempt(recorder: Recorder, what: str, make: Callable[[], streams.Row]) -> streams.Row | None:
    try:
        row = make()
    except HarnessError as exc:  # one broken measurement does not hide the others
        recorder.error(what, str(exc))
        return None
    print(f"    -> {row.figure}: {row.result}", flush=True)
    return row


def idle(plan: Plan, work: Workdir, pool: ClientPool) -> dict[str, Any]:
    recorder = Recorder("idle")
    for kind in ("sse", "ws"):
        make = functools.partial(streams.capacity, kind, plan.streams, pool, work)
        row = attempt(recorder, f"capacity {kind}", make)
        if row is None:
            continue
        s = row.summary
        recorder.run(
            {
                "server": "hypercorn-1proc",
                "kind": kind,
                "n": s["n"],
                "opened": s["opened"],
                "registered": s["registered"],
                "kib_per_connection": s["kib_per_connection"],
                "target_kib": s["target_kib"],
                "baseline_rss_mib": s["baseline_rss_mib"],
                "rss_mib": s["rss_mib"],
                "steps": s["steps"],
                "rps": s["open_rate_per_s"],
                "p50_ms": ms(s["open_ms"].get("p50")),
                "p99_ms": ms(s["open_ms"].get("p99")),
                "errors": s["failed"],
                "peak_rss_mib": s["peak_rss_mib"],
                "result": row.result,
            }
        )
    row = attempt(recorder, "gunicorn slots", functools.partial(streams.gunicorn_slots, work))
    if row is not None:
        s = row.summary
        answered = s["answer_ms"]
        slots = s["slots"]
        expected = [200] * slots + [503] * (len(s["statuses"]) - slots)
        recorder.run(
            {
                "server": "gunicorn-gthread-1worker",
                "kind": "sse",
                "threads": s["threads"],
                "slots": slots,
                "statuses": s["statuses"],
                "retry_after": s["retry_after"],
                "refused_ms": s["refused_ms"],
                "rps": round(len(answered) / (sum(answered) / 1000), 1) if sum(answered) else None,
                "p50_ms": ms(summarize(answered).get("p50")),
                "p99_ms": ms(summarize(answered).get("p99")),
                "errors": sum(a != b for a, b in zip(s["statuses"], expected, strict=True)),
                "peak_rss_mib": s["peak_rss_mib"],
                "worker_rss_mib": s["worker_rss_mib"],
                "result": row.result,
            }
        )
    return recorder.finish()


def latency_record(row: streams.Row, **more: Any) -> dict[str, Any]:
    s = row.summary
    lat = s["latency_ms"]
    return {
        **more,
        "p50_ms": ms(lat.get("p50")),
        "p90_ms": ms(lat.get("p90")),
        "p99_ms": ms(lat.get("p99")),
        "max_ms": ms(lat.get("max")),
        "deliveries": lat.get("count", 0),
        "errors": lat.get("missing", 0) + s.get("client_lost", 0),
        "peak_rss_mib": s["peak_rss_mib"],
        "target_p99_ms": s["target_p99_ms"],
        "client_max_loop_lag_ms": s["client_max_loop_lag_ms"],
        "result": row.result,
    }


def fanout(plan: Plan, work: Workdir, pool: ClientPool) -> dict[str, Any]:
    recorder = Recorder("fanout")
    for kind, n, messages in plan.streams.fanout:
        make = functools.partial(streams.fanout, kind, n, messages, plan.streams, pool, work)
        row = attempt(recorder, f"fanout {kind} {n}", make)
        if row is None:
            continue
        s = row.summary
        recorder.run(
            latency_record(
                row,
                server="hypercorn-1proc",
                kind=kind,
                subscribers=n,
                messages=messages,
                rps=s["deliveries_per_s"],
                server_cpu_us_per_delivery=s["server_cpu_us_per_delivery"],
            )
        )
    return recorder.finish()


def crossproc(plan: Plan, work: Workdir, pool: ClientPool) -> dict[str, Any]:
    recorder = Recorder("crossproc")
    for mode in ("sqlite", "redis"):
        if mode == "redis" and not redis_available():
            recorder.skip("redis", f"Redis not reachable at {REDIS_URL}")
            continue
        make = functools.partial(streams.crossproc, mode, plan.streams, pool, work)
        row = attempt(recorder, f"crossproc {mode}", make)
        if row is None:
            continue
        s = row.summary
        recorder.run(
            latency_record(
                row,
                mode=mode,
                subscribers=s["subscribers"],
                messages=s["messages"],
                gunicorn_workers=s["gunicorn_workers"],
                rps=round(1000 / s["interval_ms"], 1),
            )
        )
    return recorder.finish()


# -- scenario 7: the bridge (benchmarks.publish) -------------------------------------------


def bridge(plan: Plan, work: Workdir, wrk_missing: str | None) -> dict[str, Any]:
    recorder = Recorder("bridge")
    variants = {"portal": "gunicorn_portal", "asgiref": "gunicorn_asgiref"}
    by_key = {s.key: s for s in publish.SCENARIOS}
    args = argparse.Namespace(
        connections=plan.bridge_connections,
        threads=1,
        timeout=10.0,
        warmup=plan.bridge_warmup_s,
        duration=plan.bridge_duration_s,
    )
    for variant, key in variants.items():
        if wrk_missing:
            recorder.skip(variant, wrk_missing)
            continue
        scenario = by_key[key]
        try:
            result, _ = publish.run_scenario(scenario, work, args, f"bridge-{variant}")
        except HarnessError as exc:
            recorder.error(variant, str(exc))
            continue
        recorder.run(
            {
                "server": "gunicorn-gthread",
                "variant": variant,
                "app": scenario.app,
                "connections": plan.bridge_connections,
                "rps": round(result.ok_rps, 1),
                "p50_ms": ms(result.p50_ms),
                "p99_ms": ms(result.p99_ms),
                "errors": result.errors,
                "requests": result.requests,
                "peak_rss_mib": round(result.peak_rss_kib / 1024, 1),
            }
        )
    return recorder.finish()


# -- the run ----------------------------------------------------------------------------------


def host_name() -> str:
    name = socket.gethostname().split(".")[0] or "host"
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def plan_summary(plan: Plan, workers: int) -> dict[str, Any]:
    s = plan.streams
    return {
        "quick": plan.quick,
        "workers": workers,
        "levels": list(plan.levels),
        "warmup_s": plan.warmup_s,
        "duration_s": plan.duration_s,
        "wrk_threads": 1,
        "wrk_timeout_s": plan.wrk_timeout_s,
        "bridge": {
            "connections": plan.bridge_connections,
            "warmup_s": plan.bridge_warmup_s,
            "duration_s": plan.bridge_duration_s,
        },
        "streams": {
            "client_processes": s.processes,
            "capacity": s.capacity,
            "capacity_topics": s.capacity_topics,
            "capacity_steps": s.capacity_steps,
            "keepalive": streams.IDLE_KEEPALIVE,
            "fanout": [list(item) for item in s.fanout],
            "fanout_spacing_s": s.spacing,
            "cross_messages": s.cross_messages,
            "cross_interval_s": s.cross_interval,
            "cross_subscribers": s.cross_subscribers,
        },
    }


def wanted_scenarios(only: Sequence[str] | None) -> list[str]:
    if not only:
        return list(SCENARIOS)
    chosen = {ALIASES.get(name, name) for name in only}
    return [key for key in SCENARIOS if key in chosen]


def measure(args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    """Run the wanted scenarios; return the results and the wall time in seconds."""
    plan = QUICK if args.quick else FULL
    wanted = wanted_scenarios(args.only)
    workers = args.workers or default_workers()
    started_at = utc_now()
    started = time.monotonic()
    box = machine()
    box["load_average_before"] = load_average()
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "benchmark": "tradeoffs",
        "date": started_at.isoformat(timespec="seconds"),
        "host": host_name(),
        "command": "python -m benchmarks " + shlex.join(sys.argv[1:] or ["run"]),
        "quick": plan.quick,
        "machine": box,
        "versions": versions(PACKAGES),
        "tools": {},
        "plan": plan_summary(plan, workers),
        "servers": {},
        "scenarios": {},
    }
    results["versions"]["python"] = platform.python_version()
    wrk_missing = ensure_wrk() if any(k in wanted for k in (*HTTP_SCENARIOS, "bridge")) else None
    results["tools"]["wrk"] = wrk_version() if wrk_missing is None else f"missing: {wrk_missing}"
    for spec in (*MATRIX, HYPERCORN_ONE):
        status = spec.describe(workers)
        reason = spec.missing()
        status["available"] = reason is None
        if reason:
            status["reason"] = reason
        results["servers"][spec.key] = status
    print(
        f"trade-off lab ({'quick' if plan.quick else 'full'}): {', '.join(wanted)};"
        f" {box['cpus']} cores, load average {box['load_average_before'][0]}",
        flush=True,
    )
    if box["load_average_before"][0] > 0.5:
        print("note: the machine is busy; other work skews the figures (recorded in the results)")
    with terminate_as_exit(), Workdir("tradeoffs", keep=args.keep) as work:
        http = [key for key in wanted if key in HTTP_SCENARIOS]
        if http:
            print("scenarios 1-3: HTTP through the server matrix", flush=True)
            done, setup = http_scenarios(http, plan, work, workers, wrk_missing)
            results["scenarios"].update(done)
            results["http_setup"] = setup
        stream_parts = [key for key in wanted if key in ("idle", "fanout", "crossproc")]
        if stream_parts:
            with ClientPool(plan.streams.processes) as pool:
                for key in stream_parts:
                    number, title = SCENARIOS[key]
                    print(f"scenario {number}: {title}", flush=True)
                    part = {"idle": idle, "fanout": fanout, "crossproc": crossproc}[key]
                    results["scenarios"][key] = part(plan, work, pool)
        if "bridge" in wanted:
            print(f"scenario 7: {SCENARIOS['bridge'][1]}", flush=True)
            results["scenarios"]["bridge"] = bridge(plan, work, wrk_missing)
        if args.keep:
            print(f"logs and databases kept in {work.path}")
    results["machine"]["load_average_after"] = load_average()
    results["machine"]["load_average_max"] = max(
        [box["load_average_before"][0], results["machine"]["load_average_after"][0]]
        + [s["load_average_start"] for s in results["scenarios"].values()]
    )
    elapsed = time.monotonic() - started
    results["elapsed_s"] = round(elapsed, 1)
    return results, elapsed


def output_dirs(args: argparse.Namespace, complete: bool, when: str) -> tuple[Path, Path]:
    """Where the results file and the docs go: the committed places only for a complete
    full run, unless --out/--docs say otherwise."""
    scratch = RAW / f"tradeoffs-{when}"
    out = args.out or (RESULTS if complete else scratch)
    docs = args.docs or (DOCS if complete else scratch / "docs")
    return Path(out), Path(docs)


def run(args: argparse.Namespace) -> int:
    from benchmarks import report  # matplotlib loads only when it is needed

    try:
        results, elapsed = measure(args)
    except KeyboardInterrupt:
        print("\ninterrupted; servers and clients stopped", file=sys.stderr)
        return 130
    complete = not args.quick and not args.only
    out, docs = output_dirs(args, complete, stamp(utc_now()))
    path = out / f"{results['date'][:10]}-{results['host']}.json"
    results["headline"] = report.headline(results)
    write_json(path, results)
    rendered = report.render(results, path, docs)
    total = time.monotonic() - START
    print()
    print(report.console_summary(results))
    print(f"\nwrote {display_path(path)}")
    for item in rendered:
        print(f"wrote {display_path(item)}")
    print(f"\nmeasured in {fmt_duration(elapsed)}; whole run {fmt_duration(total)}")
    failed = [k for k, s in results["scenarios"].items() if s["status"] == "error"]
    return 1 if failed else 0


def fmt_duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def latest_results() -> Path | None:
    found = sorted(RESULTS.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]-*.json"))
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def render_only(args: argparse.Namespace) -> int:
    from benchmarks import report

    path = args.results or latest_results()
    if path is None or not Path(path).exists():
        print("no results file: give one, or run `python -m benchmarks run` first", file=sys.stderr)
        return 2
    results = json.loads(Path(path).read_text())
    if results.get("benchmark") != "tradeoffs":
        print(f"{path} is not a trade-off lab results file", file=sys.stderr)
        return 2
    docs = Path(args.docs or DOCS)
    for item in report.render(results, Path(path), docs):
        print(f"wrote {display_path(item)}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="measure, then write results, plots and the report")
    run_p.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    run_p.add_argument(
        "--only",
        nargs="+",
        metavar="SCENARIO",
        choices=[*SCENARIOS, *ALIASES],
        help=f"run only these: {', '.join(SCENARIOS)} (or 1-7)",
    )
    run_p.add_argument("--out", type=Path, help="directory for the results JSON")
    run_p.add_argument("--docs", type=Path, help="directory for tradeoffs.md and img/")
    run_p.add_argument("--workers", type=int, help="processes per server (default: cores)")
    run_p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    render_p = sub.add_parser("render", help="plots and report from an existing results file")
    render_p.add_argument("results", nargs="?", type=Path, help="default: the newest in results/")
    render_p.add_argument("--docs", type=Path, help="directory for tradeoffs.md and img/")
    return parser.parse_args(argv)


START = time.monotonic()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "render":
        return render_only(args)
    return run(args)
