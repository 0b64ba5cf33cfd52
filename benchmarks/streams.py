"""Streams: idle capacity, fan-out latency and cross-process latency, against the targets.

Run from the repository root::

    .venv/bin/python -m benchmarks.streams [--quick] [--only capacity|fanout|crossproc]

One run measures, on loopback, with the shipped config files and fresh databases:

1. **Idle capacity** of one hypercorn worker (``workers = 0``: one process, uvloop):
   10,000 idle SSE subscribers, then 10,000 idle WebSockets, over 100 topics, opened
   200 at a time, with a 300 s keepalive so that idle is idle. Memory per connection
   is ``(VmRSS with N open - VmRSS after a warm-up) / N``. Also gunicorn (gthread, one
   worker, default threads): how many stream slots it has and that the next stream
   gets ``503`` with ``Retry-After`` at once.
2. **Fan-out latency** on one hypercorn worker: 1,000 SSE, 1,000 WebSocket and
   10,000 SSE subscribers on one topic. Each message carries its send time
   (``time.time()`` in the publisher); the next is published only after every
   subscriber got it and at least 200 ms later. Latency = arrival - send,
   over every (subscriber, message) pair.
3. **Cross-process latency**: publish on gunicorn, receive on hypercorn, through the
   SQLite relay (one SQLite file, no Redis), then through Redis (a new PostgreSQL
   database, ``TANDEM_REDIS_URL`` and a unique ``TANDEM_REDIS_PREFIX`` on both).

Subscribers live in separate client processes (``harness.loadclients``: asyncio
on uvloop, hand-rolled SSE and WebSocket readers), 4 by default, because one process
may hold at most 20,000 files and so that the clients keep up. Server and clients
share the machine's cores: the figures include that contention.

It prints a table with PASS/FAIL against DESIGN.md's targets and writes a short JSON
summary to ``benchmarks/results/streams-<date>.json``; per-message figures, server
logs and memory steps go to the git-ignored ``benchmarks/results/raw/``. ``--quick``
runs small sizes (500 connections, 100 subscribers, 30 messages) in under a minute;
its verdicts are indicative only and, as with ``--only``, its summary goes to
``results/raw/`` instead.
Every server and client process it starts is stopped on exit, error or Ctrl-C.
A benchmark, not a test: a FAIL is a finding, and it exits non-zero only when a
scenario could not run at all.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import databases
from harness.errors import HarnessError
from harness.loadclients import ClientPool, LoadKind, message_text
from harness.net import http_request
from harness.serverprocess import Ready
from harness.servers import serving
from harness.wire import stream_path

from benchmarks._common import (
    HOST,
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    BenchmarkError,
    RssSampler,
    Workdir,
    bench_server,
    cpu_seconds,
    display_path,
    machine,
    open_fds,
    raw_dir,
    result_path,
    server_configs,
    settled_rss_kib,
    summarize,
    terminate_as_exit,
    utc_now,
    versions,
    vm_rss_kib,
    write_json,
)

PARTS = ("capacity", "fanout", "crossproc")
IDLE_KEEPALIVE = "300s"

TARGET_SSE_KIB = 40.0
TARGET_WS_KIB = 64.0
TARGET_FANOUT_1K_MS = 50.0
TARGET_FANOUT_10K_MS = 300.0
TARGET_SQLITE_MS = 150.0
TARGET_REDIS_MS = 25.0


@dataclasses.dataclass(frozen=True)
class Plan:
    """The sizes of one run."""

    quick: bool
    processes: int
    burst: int
    capacity: int
    capacity_topics: int
    fanout: tuple[tuple[LoadKind, int, int], ...]  # (kind, subscribers, messages)
    fanout_warmup: int
    spacing: float  # at least this long between fan-out messages, seconds
    settle: float  # seconds of quiet before an RSS reading
    cross_messages: int
    cross_interval: float
    cross_subscribers: int
    capacity_steps: int = 4  # RSS readings on the way up to ``capacity``


FULL = Plan(
    quick=False,
    processes=4,
    burst=200,
    capacity=10_000,
    capacity_topics=100,
    fanout=(("sse", 1_000, 50), ("ws", 1_000, 50), ("sse", 10_000, 20)),
    fanout_warmup=3,
    spacing=0.2,
    settle=3.0,
    cross_messages=200,
    cross_interval=0.02,
    cross_subscribers=4,
)
QUICK = Plan(
    quick=True,
    processes=2,
    burst=100,
    capacity=500,
    capacity_topics=20,
    fanout=(("sse", 100, 30), ("ws", 100, 30)),
    fanout_warmup=2,
    spacing=0.05,
    settle=1.0,
    cross_messages=30,
    cross_interval=0.02,
    cross_subscribers=2,
)


@dataclasses.dataclass
class Row:
    """One line of the report."""

    key: str
    scenario: str
    size: str
    figure: str
    target: str
    result: str  # PASS, FAIL, or ERROR when the scenario could not run
    summary: dict[str, Any]  # small: goes into the JSON summary
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)  # goes to results/raw/


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fmt_ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.1f}"


# -- helpers -----------------------------------------------------------------------------


class Publisher:
    """Publishes benchmark messages over one keep-alive HTTP connection."""

    def __init__(self, port: int, topic: str) -> None:
        self.topic = topic
        self.conn = http.client.HTTPConnection(HOST, port, timeout=30)

    def send(self, index: int) -> float:
        """Publish message ``index``; return its send time (taken just before sending)."""
        sent = time.time()
        body = message_text(index, sent).encode()
        self.conn.request(
            "POST", f"/{self.topic}", body=body, headers={"Content-Type": "text/plain"}
        )
        response = self.conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise BenchmarkError(f"publish answered {response.status}: {payload[:200]!r}")
        return sent

    def close(self) -> None:
        self.conn.close()


def streams_in_use(port: int) -> int:
    status, body = http_request(port, "GET", "/api/v1/streams")
    if status != 200:
        return -1
    return int(json.loads(body)["in_use"])


def fresh_sqlite(work: Workdir, name: str) -> str:
    """A new, migrated SQLite file in the work dir (a copy of one migrated template)."""
    return databases.fresh_sqlite(
        work.path / name, template=work.path / "template.db", clean_env=True
    )


def idle_env(database_url: str, **more: str) -> dict[str, str]:
    return {
        "TANDEM_DATABASE_URL": database_url,
        "TANDEM_KEEPALIVE_INTERVAL": IDLE_KEEPALIVE,
        **more,
    }


def pairs_summary(
    latencies: dict[int, list[float]], expected_pairs: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Percentiles over every (subscriber, message) pair, and per message."""
    every = [ms for values in latencies.values() for ms in values]
    summary: dict[str, Any] = summarize(every)
    summary["missing"] = max(0, expected_pairs - len(every))
    per_message = [{"index": index, **summarize(latencies[index])} for index in sorted(latencies)]
    return summary, per_message


def clients_note(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """How hard the client processes worked: the most loop lag and CPU of any one."""
    return {
        "client_processes": len(stats),
        "client_max_loop_lag_ms": max((s["max_loop_lag_ms"] for s in stats), default=0.0),
        "client_max_cpu_s": max((s["cpu_s"] for s in stats), default=0.0),
        "client_lost": sum(sum(s["lost"].values()) for s in stats),
    }


# -- 1. idle capacity --------------------------------------------------------------------


def capacity(kind: LoadKind, plan: Plan, pool: ClientPool, work: Workdir) -> Row:
    target = TARGET_SSE_KIB if kind == "sse" else TARGET_WS_KIB
    label = "SSE" if kind == "sse" else "WebSocket"
    n = plan.capacity
    topics = [f"idle{number % plan.capacity_topics}" for number in range(n)]
    paths = [stream_path(topic, kind) for topic in topics]
    url = fresh_sqlite(work, f"capacity-{kind}.db")
    print(f"  capacity: {n:,} idle {label} on one hypercorn worker ...", flush=True)
    with bench_server("hypercorn", work=work, tag=f"capacity-{kind}", env=idle_env(url)) as server:
        sampler = RssSampler(server.pid)
        try:
            # Warm-up: every code path once, so that the baseline holds what any server
            # that has served a stream holds (imports, caches, first allocations).
            warm = pool.open(server.port, kind, paths[: plan.burst], burst=plan.burst)
            if warm.opened < warm.requested:
                raise BenchmarkError(f"warm-up: {warm.failed} of {warm.requested} failed")
            pool.close_connections()
            time.sleep(plan.settle / 2)
            baseline = settled_rss_kib(server.pid, seconds=plan.settle)
            steps: list[dict[str, Any]] = []
            opened, failed, seconds = 0, 0, 0.0
            errors: dict[str, int] = {}
            open_ms: list[float] = []
            step = max(1, math.ceil(n / plan.capacity_steps))
            sampler.start()
            for start in range(0, n, step):
                report = pool.open(server.port, kind, paths[start : start + step], burst=plan.burst)
                open_ms += report.open_ms
                opened += report.opened
                failed += report.failed
                seconds += report.seconds
                for reason, count in report.errors.items():
                    errors[reason] = errors.get(reason, 0) + count
                steps.append({"open": opened, "rss_kib": vm_rss_kib(server.pid)})
                print(
                    f"    {opened:>6,} open, RSS {steps[-1]['rss_kib'] / 1024:,.1f} MiB"
                    f" ({report.rate:,.0f} conn/s)",
                    flush=True,
                )
            rss = settled_rss_kib(server.pid, seconds=plan.settle)
            in_use = streams_in_use(server.port)
            fds = open_fds(server.pid)
            live_after = sum(s["live"] for s in pool.stats())
        finally:
            sampler.stop()
            pool.close_connections()
    per_conn = (rss - baseline) / opened if opened else math.inf
    held = failed == 0 and opened == n and in_use == n and live_after == n
    ok = held and per_conn <= target
    note = "" if held else f"; only {opened:,} opened, {in_use:,} registered"
    summary: dict[str, Any] = {
        "n": n,
        "topics": plan.capacity_topics,
        "kib_per_connection": round(per_conn, 2),
        "target_kib": target,
        "baseline_rss_mib": round(baseline / 1024, 1),
        "rss_mib": round(rss / 1024, 1),
        "opened": opened,
        "failed": failed,
        "registered": in_use,
        "server_fds": fds,
        "open_rate_per_s": round(opened / seconds, 1) if seconds else None,
        "open_ms": summarize(open_ms),
        "peak_rss_mib": sampler.peak_mib,
        "steps": [{"open": s["open"], "rss_mib": round(s["rss_kib"] / 1024, 1)} for s in steps],
    }
    if errors:
        summary["errors"] = errors
    return Row(
        key=f"capacity_{kind}",
        scenario=f"idle capacity, {label}, 1 hypercorn worker",
        size=f"{n:,} {label}",
        figure=f"{per_conn:,.1f} KiB/conn (RSS {baseline / 1024:,.0f}->{rss / 1024:,.0f} MiB)"
        + note,
        target=f"<= {target:g} KiB",
        result=verdict(ok),
        summary=summary,
        raw={"steps": steps, "errors": errors},
    )


def _read_response_head(sock: Any, deadline: float) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def gunicorn_slots(work: Workdir) -> Row:
    """One gthread worker: open streams until the slots run out; the next must get 503."""
    import socket  # only here: plain blocking sockets suit a handful of streams

    url = fresh_sqlite(work, "gunicorn-slots.db")
    print("  capacity: gunicorn gthread, one worker, stream slots ...", flush=True)
    with bench_server(
        "gunicorn",
        work=work,
        tag="gunicorn-slots",
        env=idle_env(url),
        args=["-w", "1"],
        ready=Ready(workers=1),
    ) as srv:
        status, body = http_request(srv.port, "GET", "/api/v1/streams")
        info = json.loads(body) if status == 200 else {}
        slots = int(info.get("slots") or 0)
        config = server_configs()["gunicorn"]
        threads = int(os.environ.get("TANDEM_THREADS", config.get("threads") or 8))
        worker = srv.children()[0]
        rss_before = settled_rss_kib(worker, seconds=1.0)
        held: list[socket.socket] = []
        answers: list[dict[str, Any]] = []
        sampler = RssSampler(srv.pid).start()
        try:
            for _ in range(slots + 2):
                sock = socket.create_connection((HOST, srv.port), timeout=10)
                held.append(sock)
                started = time.monotonic()
                sock.sendall(f"GET /slots/sse HTTP/1.1\r\nHost: {HOST}:{srv.port}\r\n\r\n".encode())
                code, headers, rest = _read_response_head(sock, started + 10)
                if code == 200:  # wait for the open event: the stream is really running
                    while b"event: open" not in rest and time.monotonic() < started + 10:
                        sock.settimeout(max(0.01, started + 10 - time.monotonic()))
                        more = sock.recv(65536)
                        if not more:
                            break
                        rest += more
                answers.append(
                    {
                        "status": code,
                        "retry_after": headers.get("retry-after"),
                        "ms": round((time.monotonic() - started) * 1000, 1),
                        "open_event": b"event: open" in rest,
                    }
                )
            in_use = streams_in_use(srv.port)
            rss_held = vm_rss_kib(worker)
        finally:
            sampler.stop()
            for sock in held:
                sock.close()
    statuses = [a["status"] for a in answers]
    refused = answers[slots:]
    ok = (
        slots > 0
        and statuses[:slots] == [200] * slots
        and all(a["open_event"] for a in answers[:slots])
        and all(a["status"] == 503 and a["retry_after"] for a in refused)
        and all(a["ms"] < 2000 for a in refused)
        and in_use == slots
    )
    first_refused = refused[0] if refused else {}
    figure = (
        f"{slots} slots of {threads} threads; stream {slots + 1}: HTTP"
        f" {first_refused.get('status')}, Retry-After {first_refused.get('retry_after')},"
        f" {first_refused.get('ms')} ms"
    )
    return Row(
        key="gunicorn_slots",
        scenario="stream slots, gunicorn gthread, 1 worker",
        size=f"{slots + 2} SSE",
        figure=figure,
        target=f"stream {slots + 1}: 503",
        result=verdict(ok),
        summary={
            "threads": threads,
            "slots": slots,
            "statuses": statuses,
            "retry_after": first_refused.get("retry_after"),
            "refused_ms": [a["ms"] for a in refused],
            "answer_ms": [a["ms"] for a in answers],
            "in_use": in_use,
            "worker_rss_mib": round(rss_before / 1024, 1),
            "worker_rss_with_streams_mib": round(rss_held / 1024, 1),
            "peak_rss_mib": sampler.peak_mib,
        },
    )


# -- 2. fan-out --------------------------------------------------------------------------


def fanout_target(subscribers: int) -> float:
    return TARGET_FANOUT_10K_MS if subscribers >= 10_000 else TARGET_FANOUT_1K_MS


def fanout(
    kind: LoadKind, n: int, messages: int, plan: Plan, pool: ClientPool, work: Workdir
) -> Row:
    target = fanout_target(n)
    label = "SSE" if kind == "sse" else "WebSocket"
    url = fresh_sqlite(work, f"fanout-{kind}-{n}.db")
    print(f"  fan-out: {n:,} {label} subscribers on one topic, {messages} messages ...", flush=True)
    incomplete = 0
    with bench_server(
        "hypercorn", work=work, tag=f"fanout-{kind}-{n}", env=idle_env(url)
    ) as server:
        publisher = Publisher(server.port, "fanout")
        sampler = RssSampler(server.pid).start()
        try:
            report = pool.open(
                server.port, kind, [stream_path("fanout", kind)] * n, burst=plan.burst
            )
            if report.opened < n:
                raise BenchmarkError(
                    f"fan-out: only {report.opened:,} of {n:,} subscribers opened: {report.errors}"
                )
            pool.reset()
            for index in range(plan.fanout_warmup):  # not measured
                publisher.send(index)
                pool.wait_message(index, timeout=30)
                time.sleep(plan.spacing)
            pool.reset()
            first = plan.fanout_warmup
            cpu_before = cpu_seconds(server.pid)
            started = time.monotonic()
            for index in range(first, first + messages):
                sent = publisher.send(index)
                received, live = pool.wait_message(index, timeout=30)
                incomplete += received < live
                pause = sent + plan.spacing - time.time()
                if pause > 0:
                    time.sleep(pause)
            elapsed = time.monotonic() - started
            server_cpu = cpu_seconds(server.pid) - cpu_before
            latencies, stats = pool.latencies()
            rss = vm_rss_kib(server.pid)
        finally:
            sampler.stop()
            publisher.close()
            pool.close_connections()
    summary, per_message = pairs_summary(latencies, n * messages)
    p99 = float(summary.get("p99", math.nan))
    ok = summary["count"] > 0 and summary["missing"] == 0 and p99 <= target
    clients = clients_note(stats)
    deliveries = max(1, summary["count"])
    row_summary = {
        "kind": kind,
        "subscribers": n,
        "messages": messages,
        "latency_ms": summary,
        "target_p99_ms": target,
        "incomplete_messages": incomplete,
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_us_per_delivery": round(server_cpu / deliveries * 1e6, 1),
        "server_rss_mib": round(rss / 1024, 1),
        "peak_rss_mib": sampler.peak_mib,
        "seconds": round(elapsed, 1),
        "deliveries_per_s": round(summary["count"] / elapsed, 1) if elapsed else 0.0,
        **clients,
    }
    figure = f"p50 {fmt_ms(summary.get('p50', math.nan))} / p99 {fmt_ms(p99)} ms"
    if summary["missing"]:
        figure += f", {summary['missing']:,} missing"
    return Row(
        key=f"fanout_{kind}_{n}",
        scenario=f"fan-out latency, {label}, 1 topic",
        size=f"{n:,} subs x {messages}",
        figure=figure,
        target=f"p99 <= {target:g} ms",
        result=verdict(ok),
        summary=row_summary,
        raw={"per_message": per_message, "clients": stats},
    )


# -- 3. cross-process --------------------------------------------------------------------


def crossproc(mode: str, plan: Plan, pool: ClientPool, work: Workdir) -> Row:
    target = TARGET_SQLITE_MS if mode == "sqlite" else TARGET_REDIS_MS
    what = "SQLite relay" if mode == "sqlite" else "Redis + PostgreSQL"
    subs, messages = plan.cross_subscribers, plan.cross_messages
    print(f"  cross-process: gunicorn publish -> hypercorn deliver, {what} ...", flush=True)
    with contextlib.ExitStack() as stack:
        if mode == "sqlite":
            url = fresh_sqlite(work, "crossproc.db")
            env = idle_env(url)
        else:
            url = stack.enter_context(
                databases.postgres_database(
                    "tandem_bench", admin_url=POSTGRES_ADMIN_URL, migrated=True
                )
            )
            prefix = stack.enter_context(databases.redis_prefix("tandem-bench", url=REDIS_URL))
            env = idle_env(url, TANDEM_REDIS_URL=REDIS_URL, TANDEM_REDIS_PREFIX=prefix)
        gunicorn, hypercorn = stack.enter_context(
            serving(
                bench_server(
                    "gunicorn",
                    work=work,
                    tag=f"crossproc-{mode}-gunicorn",
                    env=env,
                    ready=Ready(workers=1),
                ),
                bench_server("hypercorn", work=work, tag=f"crossproc-{mode}-hypercorn", env=env),
            )
        )
        gunicorn_workers = len(gunicorn.children())
        publisher = Publisher(gunicorn.port, "crossproc")
        sampler = RssSampler(gunicorn.pid, hypercorn.pid).start()
        try:
            report = pool.open(
                hypercorn.port, "sse", [stream_path("crossproc", "sse")] * subs, burst=subs
            )
            if report.opened < subs:
                raise BenchmarkError(f"cross-process: subscribers failed: {report.errors}")
            pool.reset()
            warmup = 5
            for index in range(warmup):  # not measured
                publisher.send(index)
                pool.wait_message(index, timeout=10)
            pool.reset()
            started = time.monotonic()
            for number in range(messages):
                pause = started + number * plan.cross_interval - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                publisher.send(warmup + number)
            pool.wait_message(warmup + messages - 1, timeout=10)
            time.sleep(0.2)  # stragglers of earlier messages
            latencies, stats = pool.latencies()
        finally:
            sampler.stop()
            publisher.close()
            pool.close_connections()
    summary, per_message = pairs_summary(latencies, subs * messages)
    p99 = float(summary.get("p99", math.nan))
    ok = summary["count"] > 0 and summary["missing"] == 0 and p99 <= target
    figure = f"p50 {fmt_ms(summary.get('p50', math.nan))} / p99 {fmt_ms(p99)} ms"
    if summary["missing"]:
        figure += f", {summary['missing']:,} missing"
    return Row(
        key=f"crossproc_{mode}",
        scenario=f"cross-process, {what}",
        size=f"{subs} subs x {messages}",
        figure=figure,
        target=f"p99 <= {target:g} ms",
        result=verdict(ok),
        summary={
            "mode": mode,
            "subscribers": subs,
            "messages": messages,
            "interval_ms": plan.cross_interval * 1000,
            "gunicorn_workers": gunicorn_workers,
            "latency_ms": summary,
            "peak_rss_mib": sampler.peak_mib,
            "target_p99_ms": target,
            **clients_note(stats),
        },
        raw={"per_message": per_message},
    )


# -- report ------------------------------------------------------------------------------


def print_table(rows: Sequence[Row], meta: dict[str, Any]) -> None:
    configs = meta["servers"]
    g, h = configs["gunicorn"], configs["hypercorn"]
    print()
    quick = " (--quick: small sizes, indicative only)" if meta["quick"] else ""
    print(
        f"Tandem streams benchmark{quick}:"
        f" {meta['machine']['cpus']} CPUs shared by server(s) and {meta['client_processes']}"
        f" client processes (asyncio + uvloop), load average {meta['machine']['load_average']}"
        f" before, {meta['load_average_after']} after"
    )
    print(
        f"hypercorn -c {h['config']}: one process (workers = {h['workers']}, {h['worker_class']});"
        f" gunicorn -c {g['config']}: {g['worker_class']}, {g['threads']} threads per worker;"
        f" SQLite unless noted; keepalive {IDLE_KEEPALIVE}"
    )
    print()
    header = ["scenario", "size", "figure", "target", "result"]
    table = [header] + [[r.scenario, r.size, r.figure, r.target, r.result] for r in rows]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(header))]
    for number, cells in enumerate(table):
        print(
            "  ".join(
                f"{text:<{width}}" for text, width in zip(cells, widths, strict=True)
            ).rstrip()
        )
        if number == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))
    print()
    for row in rows:
        if row.key.startswith(("fanout", "crossproc")) and row.result != "ERROR":
            s = row.summary
            lat = s["latency_ms"]
            extra = ""
            if "server_cpu_us_per_delivery" in s:
                extra = (
                    f", server CPU {s['server_cpu_s']:.2f} s"
                    f" ({s['server_cpu_us_per_delivery']:.0f} us/delivery)"
                )
            print(
                f"  {row.key}: {lat['count']:,} pairs, p90 {fmt_ms(lat.get('p90', math.nan))}"
                f" max {fmt_ms(lat.get('max', math.nan))} ms{extra}; {s['client_processes']}"
                f" client process(es), worst client loop lag {s['client_max_loop_lag_ms']} ms"
            )
    passed = sum(row.result == "PASS" for row in rows)
    print(f"\n{passed} of {len(rows)} PASS ({meta['elapsed_s']:.0f} s)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.streams", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument(
        "--only", action="append", choices=PARTS, help="run only this part (repeatable)"
    )
    parser.add_argument("--processes", type=int, help="client processes (default 4; quick 2)")
    parser.add_argument("--output", type=Path, help="JSON result file (default: results/...)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    return parser.parse_args(argv)


def run(plan: Plan, parts: Sequence[str], work: Workdir, pool: ClientPool) -> list[Row]:
    rows: list[Row] = []

    def attempt(label: str, make: Any, *args: Any) -> None:
        started = time.monotonic()
        try:
            row: Row = make(*args)
        except HarnessError as exc:  # one broken scenario does not hide the others
            print(f"    {label} failed: {exc}", file=sys.stderr)
            row = Row(label, label, "-", f"error: {str(exc)[:60]}", "-", "ERROR", {})
        row.summary["elapsed_s"] = round(time.monotonic() - started, 1)
        print(f"    -> {row.figure}: {row.result} ({row.summary['elapsed_s']:.0f} s)", flush=True)
        rows.append(row)

    if "capacity" in parts:
        attempt("capacity_sse", capacity, "sse", plan, pool, work)
        attempt("capacity_ws", capacity, "ws", plan, pool, work)
        attempt("gunicorn_slots", gunicorn_slots, work)
    if "fanout" in parts:
        for kind, n, messages in plan.fanout:
            attempt(f"fanout_{kind}_{n}", fanout, kind, n, messages, plan, pool, work)
    if "crossproc" in parts:
        attempt("crossproc_sqlite", crossproc, "sqlite", plan, pool, work)
        if databases.redis_available(REDIS_URL):
            attempt("crossproc_redis", crossproc, "redis", plan, pool, work)
        else:
            print(f"    Redis not reachable at {REDIS_URL}: skipping", file=sys.stderr)
            rows.append(
                Row("crossproc_redis", "cross-process, Redis", "-", "no Redis", "-", "ERROR", {})
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.processes:
        plan = dataclasses.replace(plan, processes=args.processes)
    parts = args.only or list(PARTS)
    started = utc_now()
    meta: dict[str, Any] = {
        "benchmark": "streams",
        "date": started.isoformat(timespec="seconds"),
        "quick": plan.quick,
        "machine": machine(),
        "client_processes": plan.processes,
        "servers": server_configs(),
        "versions": versions(),
        "plan": dataclasses.asdict(plan),
    }
    if meta["machine"]["load_average"] > 0.5:
        print(
            f"note: load average {meta['machine']['load_average']} before the run;"
            " other work on this machine skews the figures"
        )
    raw = raw_dir("streams", started)
    print(
        f"streams benchmark ({'quick' if plan.quick else 'full'}): {', '.join(parts)};"
        f" {plan.processes} client processes; raw output in {display_path(raw)}"
    )
    try:
        with (
            terminate_as_exit(),
            Workdir("streams", keep=args.keep) as work,
            ClientPool(plan.processes) as pool,
        ):
            try:
                rows = run(plan, parts, work, pool)
            finally:
                for log in work.path.glob("*.log"):  # server logs, for a closer look
                    with contextlib.suppress(OSError):
                        (raw / log.name).write_bytes(log.read_bytes()[-200_000:])
                if args.keep:
                    print(f"logs and databases kept in {work.path}")
    except HarnessError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; servers and clients stopped", file=sys.stderr)
        return 130
    except SystemExit:
        print("\nterminated; servers and clients stopped", file=sys.stderr)
        raise
    meta["elapsed_s"] = round((utc_now() - started).total_seconds(), 1)
    meta["load_average_after"] = round(os.getloadavg()[0], 2)
    print_table(rows, meta)
    summary = {
        **meta,
        "targets": {
            "idle_sse_kib_per_connection": TARGET_SSE_KIB,
            "idle_ws_kib_per_connection": TARGET_WS_KIB,
            "fanout_1000_p99_ms": TARGET_FANOUT_1K_MS,
            "fanout_10000_p99_ms": TARGET_FANOUT_10K_MS,
            "crossproc_sqlite_p99_ms": TARGET_SQLITE_MS,
            "crossproc_redis_p99_ms": TARGET_REDIS_MS,
        },
        "results": [
            {
                "key": r.key,
                "scenario": r.scenario,
                "figure": r.figure,
                "result": r.result,
                **r.summary,
            }
            for r in rows
        ],
    }
    # Only a complete full run replaces the committed summary; a quick run (the test
    # suite's) or a partial one leaves its summary with the raw output.
    complete = not plan.quick and set(parts) == set(PARTS)
    output = args.output or (result_path("streams", started) if complete else raw / "summary.json")
    write_json(output, summary)
    write_json(raw / "details.json", {r.key: r.raw for r in rows}, indent=None)
    print(f"wrote {display_path(output)} (raw: {display_path(raw)})")
    # FAIL is a finding, not an error; a scenario that could not run is an error.
    return 1 if any(r.result == "ERROR" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
