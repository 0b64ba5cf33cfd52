"""Plots and ``docs/tradeoffs.md`` from a trade-off lab results file.

:func:`render` draws every figure with matplotlib into ``<docs>/img/`` and fills
``benchmarks/tradeoffs.md.in`` (a :class:`string.Template`) with tables, ratios and
the decision guide, all computed from the results. Every sentence that states a
measurement is built here, from the numbers, with a pointer to its figure and table;
when a scenario did not run, its sentence says so instead.
"""

from __future__ import annotations

import math
import os
import string
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from benchmarks._common import ROOT

TEMPLATE = Path(__file__).resolve().with_name("tradeoffs.md.in")
IMAGES = {
    "hello": "tradeoffs-hello.png",
    "publish": "tradeoffs-publish.png",
    "io": "tradeoffs-io.png",
    "cpu": "tradeoffs-cpu.png",
    "rss": "tradeoffs-rss.png",
    "idle": "tradeoffs-idle.png",
    "fanout": "tradeoffs-fanout.png",
    "crossproc": "tradeoffs-crossproc.png",
    "bridge": "tradeoffs-bridge.png",
}
# Which figure and table each claim points to.
WHERE = {
    "hello": ("Figure 1", "Table 1a", "1-hello-json-and-publish"),
    "publish": ("Figure 2", "Table 1b", "1-hello-json-and-publish"),
    "io": ("Figure 3", "Table 2", "2-io-bound-a-20-ms-wait"),
    "cpu": ("Figure 4", "Table 3", "3-cpu-bound-5-ms-of-cpu"),
    "rss": ("Figure 5", "Table 1a-3", "memory-in-scenarios-1-3"),
    "idle": ("Figure 6", "Table 4", "4-idle-stream-capacity"),
    "fanout": ("Figure 7", "Table 5", "5-fan-out"),
    "crossproc": ("Figure 8", "Table 6", "6-cross-process-delivery"),
    "bridge": ("Figure 9", "Table 7", "7-the-bridge"),
}
COLORS = {
    "gunicorn-sync": "#1f77b4",
    "gunicorn-gthread": "#17becf",
    "hypercorn-asyncio": "#ff7f0e",
    "hypercorn-uvloop": "#d62728",
    "hypercorn-1proc": "#8c564b",
    "uvicorn": "#2ca02c",
    "granian-asgi": "#9467bd",
    "granian-wsgi": "#7f7f7f",
}
EXTRA_LABELS = {
    "hypercorn-1proc": "hypercorn uvloop, 1 process",
    "gunicorn-gthread-1worker": "gunicorn gthread, 1 worker",
}
WORKLOAD_TITLES = {
    "hello": "hello JSON (POST /bench, bare app)",
    "publish": "publish (POST /bench, Tandem)",
    "io": "I/O-bound route (20 ms wait)",
    "cpu": "CPU-bound route (5 ms CPU)",
}
PUBLISH_SHARE_TARGET = 0.40
BRIDGE_TARGET = 3.0


# -- reading the results -------------------------------------------------------------------


def scenario(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = results.get("scenarios", {}).get(key)
    return found if found and found.get("runs") else None


def label(results: dict[str, Any], key: str) -> str:
    server = results.get("servers", {}).get(key)
    return str(server["label"]) if server else EXTRA_LABELS.get(key, key)


def http_runs(results: dict[str, Any], workload: str) -> dict[str, dict[int, dict[str, Any]]]:
    """``{server: {concurrency: run}}`` for one workload of scenarios 1-3, in matrix order."""
    key = "throughput" if workload in ("hello", "publish") else workload
    found = scenario(results, key)
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for run in found["runs"] if found else []:
        if run.get("workload") == workload:
            table.setdefault(run["server"], {})[int(run["concurrency"])] = run
    return table


def levels_of(results: dict[str, Any]) -> list[int]:
    return [int(x) for x in results.get("plan", {}).get("levels", [])]


def top_level(results: dict[str, Any]) -> int:
    levels = levels_of(results)
    return max(levels) if levels else 0


def rps(results: dict[str, Any], workload: str, server: str, level: int) -> float | None:
    run = http_runs(results, workload).get(server, {}).get(level)
    return float(run["rps"]) if run else None


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return a / b


def runs_where(results: dict[str, Any], key: str, **match: Any) -> list[dict[str, Any]]:
    found = scenario(results, key)
    return [
        run
        for run in (found["runs"] if found else [])
        if all(run.get(k) == v for k, v in match.items())
    ]


def first(results: dict[str, Any], key: str, **match: Any) -> dict[str, Any] | None:
    found = runs_where(results, key, **match)
    return found[0] if found else None


# -- formatting ----------------------------------------------------------------------------


def num(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):,.{digits}f}"


def times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def ref(kind: str) -> str:
    figure, table, anchor = WHERE[kind]
    return f"[{figure}, {table}](#{anchor})"


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> str:
    """A Markdown table; ``align`` gives one letter per column (l or r), default l."""
    align = align or "l" * len(header)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def not_measured(key: str) -> str:
    return f"*Not measured in this run (`--only` left out scenario {key}, or it failed).*"


# -- headline ratios -----------------------------------------------------------------------


def headline(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures the README quotes: each a value, its unit and where it comes from."""
    top = top_level(results)
    rows: list[dict[str, Any]] = []

    def add(key: str, text: str, value: float | None, unit: str, where: str) -> None:
        if value is not None and math.isfinite(value):
            rows.append(
                {"key": key, "text": text, "value": round(value, 3), "unit": unit, "where": where}
            )

    io = ratio(
        rps(results, "io", "hypercorn-uvloop", top), rps(results, "io", "gunicorn-sync", top)
    )
    add(
        "io_hypercorn_vs_sync",
        f"I/O-bound route (20 ms wait), {top} clients: hypercorn uvloop / gunicorn sync req/s",
        io,
        "x",
        "io",
    )
    io_g = ratio(
        rps(results, "io", "hypercorn-uvloop", top), rps(results, "io", "gunicorn-gthread", top)
    )
    add(
        "io_hypercorn_vs_gthread",
        f"I/O-bound route, {top} clients: hypercorn uvloop / gunicorn gthread req/s",
        io_g,
        "x",
        "io",
    )
    cpu_one = ratio(
        rps(results, "cpu", "gunicorn-sync", top), rps(results, "cpu", "hypercorn-1proc", top)
    )
    add(
        "cpu_sync_vs_hypercorn_shipped",
        f"CPU-bound route (5 ms), {top} clients: gunicorn sync / hypercorn as shipped"
        " (1 process) req/s",
        cpu_one,
        "x",
        "cpu",
    )
    cpu = ratio(
        rps(results, "cpu", "gunicorn-sync", top), rps(results, "cpu", "hypercorn-uvloop", top)
    )
    add(
        "cpu_sync_vs_hypercorn",
        f"CPU-bound route, {top} clients: gunicorn sync / hypercorn uvloop, same process count",
        cpu,
        "x",
        "cpu",
    )
    for door, server in (("WSGI", "gunicorn-gthread"), ("ASGI", "hypercorn-uvloop")):
        level = 64 if 64 in levels_of(results) else top
        value = ratio(rps(results, "publish", server, level), rps(results, "hello", server, level))
        add(
            f"publish_share_{server}",
            f"publish / hello req/s, {label(results, server)} ({door}), {level} clients",
            value,
            "%",
            "publish",
        )
    portal = first(results, "bridge", variant="portal")
    asgiref = first(results, "bridge", variant="asgiref")
    if portal and asgiref:
        add(
            "bridge_portal_vs_asgiref",
            "Flask publish: portal / asgiref req/s",
            ratio(portal["rps"], asgiref["rps"]),
            "x",
            "bridge",
        )
    for kind, name in (("sse", "SSE"), ("ws", "WebSocket")):
        run = first(results, "idle", kind=kind, server="hypercorn-1proc")
        if run:
            add(
                f"idle_{kind}_kib",
                f"idle {name}: RSS per connection, {run['n']:,} on one hypercorn process",
                run["kib_per_connection"],
                "KiB",
                "idle",
            )
    slots = first(results, "idle", server="gunicorn-gthread-1worker")
    sse = first(results, "idle", kind="sse", server="hypercorn-1proc")
    if slots and sse and slots.get("slots"):
        add(
            "idle_streams_per_worker",
            f"streams one worker held: hypercorn ({sse['opened']:,}) / gunicorn gthread"
            f" ({slots['slots']} slots, then 503)",
            ratio(sse["opened"], slots["slots"]),
            "x",
            "idle",
        )
    for run in runs_where(results, "fanout", kind="sse"):
        add(
            f"fanout_sse_{run['subscribers']}_p99",
            f"fan-out p99, {run['subscribers']:,} SSE subscribers, one hypercorn process",
            run["p99_ms"],
            "ms",
            "fanout",
        )
    for run in runs_where(results, "crossproc"):
        what = "SQLite relay" if run["mode"] == "sqlite" else "Redis"
        add(
            f"crossproc_{run['mode']}_p99",
            f"cross-process p99 (gunicorn publish, hypercorn deliver), {what}",
            run["p99_ms"],
            "ms",
            "crossproc",
        )
    return rows


def headline_value(row: dict[str, Any]) -> str:
    unit = row["unit"]
    if unit == "x":
        return times(row["value"])
    if unit == "%":
        return share(row["value"])
    return f"{num(row['value'], 1)} {unit}"


# -- the decision guide --------------------------------------------------------------------


def best(results: dict[str, Any], workload: str, level: int, servers: Sequence[str]) -> str | None:
    found = [(rps(results, workload, s, level), s) for s in servers]
    found = [(v, s) for v, s in found if v is not None]
    return max(found)[1] if found else None


CLEAR = 1.2  # a ratio past this (either way) is a difference the guide acts on


def against(value: float | None, target: float) -> str:
    """``p99 12.3 ms (within the 50 ms target)``, with enough digits to show which side."""
    digits = 2 if value is not None and abs(value - target) < 0.05 else 1
    side = "within" if value is not None and value <= target else "over"
    return f"p99 {num(value, digits)} ms ({side} the {num(target)} ms target)"


def at(results: dict[str, Any], workload: str, server: str, level: int, field: str) -> Any:
    return http_runs(results, workload).get(server, {}).get(level, {}).get(field)


def guide_io(results: dict[str, Any], top: int) -> str:
    uv, sync, gth = (
        rps(results, "io", s, top)
        for s in ("hypercorn-uvloop", "gunicorn-sync", "gunicorn-gthread")
    )
    if uv is None or sync is None:
        return f"I/O-bound handlers: {not_measured('2')} {ref('io')}"
    wsgi_best = max(sync, gth or 0.0)
    if uv >= CLEAR * wsgi_best:
        door = "the ASGI door"
    elif wsgi_best >= CLEAR * uv:
        door = "the WSGI door, with threads"
    else:
        door = "either door"
    text = (
        f"**Handlers that wait (upstream calls, slow queries) under many concurrent clients:"
        f" {door}.** With {top} clients on the 20 ms route, hypercorn uvloop served {num(uv)}"
        f" req/s, {times(ratio(uv, sync))} gunicorn sync ({num(sync)} req/s, one request at a"
        " time per process)"
    )
    if gth is not None:
        text += (
            f" and {times(ratio(uv, gth))} gunicorn gthread ({num(gth)} req/s, capped by its"
            " threads)"
        )
    text += (
        f"; p99 latency {num(at(results, 'io', 'hypercorn-uvloop', top, 'p99_ms'))} ms against"
        f" {num(at(results, 'io', 'gunicorn-sync', top, 'p99_ms'))} ms on gunicorn sync, whose"
        " clients queue."
    )
    granian = rps(results, "io", "granian-wsgi", top)
    if granian is not None:
        text += (
            f" Threads absorb waiting too: granian's WSGI interface, with hundreds of blocking"
            f" threads per worker by default, served the Flask app at {num(granian)} req/s"
            f" (peak RSS {num(max_rss(results, 'io', 'granian-wsgi'))} MiB against"
            f" {num(max_rss(results, 'io', 'hypercorn-uvloop'))} MiB for hypercorn)."
        )
    return f"{text} {ref('io')}"


def max_rss(results: dict[str, Any], workload: str, server: str) -> float | None:
    runs = http_runs(results, workload).get(server, {}).values()
    return max((r["peak_rss_mib"] for r in runs), default=None)


def guide_cpu(results: dict[str, Any], top: int) -> str:
    servers = [s for s in COLORS if http_runs(results, "cpu").get(s)]
    winner = best(results, "cpu", top, servers)
    if winner is None:
        return f"CPU-bound handlers: {not_measured('3')} {ref('cpu')}"
    sync, one, uv = (
        rps(results, "cpu", s, top)
        for s in ("gunicorn-sync", "hypercorn-1proc", "hypercorn-uvloop")
    )
    if sync is not None and one is not None and sync >= CLEAR * one:
        head = "processes, not one event loop"
    elif sync is not None and one is not None and one >= CLEAR * sync:
        head = "no gain from gunicorn's processes here"
    else:
        head = "count the processes"
    text = (
        f"**Handlers that compute: {head}.** On the 5 ms CPU route at {top} clients the most"
        f" req/s came from {label(results, winner)} ({num(rps(results, 'cpu', winner, top))})."
    )
    if sync is not None and one is not None:
        text += (
            f" gunicorn sync ({num(sync)} req/s) served {times(ratio(sync, one))} what hypercorn"
            f" as shipped did ({num(one)} req/s, one process, one event loop that runs nothing"
            " else while a handler computes)"
        )
        p99_one = at(results, "cpu", "hypercorn-1proc", top, "p99_ms")
        p99_sync = at(results, "cpu", "gunicorn-sync", top, "p99_ms")
        text += f"; p99 {num(p99_sync)} ms against {num(p99_one)} ms."
    if sync is not None and uv is not None:
        text += (
            f" With as many processes as gunicorn, hypercorn uvloop reached {num(uv)} req/s"
            f" ({times(ratio(uv, sync))} gunicorn sync): it is the process count that decides, so"
            " run hypercorn with `-w N` for such handlers (streams then end at"
            " `graceful_timeout` on shutdown) or move the computing out of the request."
        )
    gth = rps(results, "cpu", "gunicorn-gthread", top)
    if sync is not None and gth is not None:
        p99_g = at(results, "cpu", "gunicorn-gthread", top, "p99_ms")
        text += (
            f" gunicorn gthread served {num(gth)} req/s ({times(ratio(gth, sync))} sync, p99"
            f" {num(p99_g)} ms): its threads take turns at the GIL, so they add no computing,"
            " only a different queue."
        )
    return f"{text} {ref('cpu')}"


def guide_short(results: dict[str, Any]) -> str:
    top = top_level(results)
    level = 64 if 64 in levels_of(results) else top
    g_pub = rps(results, "publish", "gunicorn-gthread", level)
    h_pub = rps(results, "publish", "hypercorn-uvloop", level)
    if g_pub is None or h_pub is None:
        return f"Short requests: {not_measured('1')} {ref('publish')}"
    g_share = ratio(g_pub, rps(results, "hello", "gunicorn-gthread", level))
    h_share = ratio(h_pub, rps(results, "hello", "hypercorn-uvloop", level))
    faster = "the WSGI door" if g_pub >= h_pub else "the ASGI door"
    gap = ratio(max(g_pub, h_pub), min(g_pub, h_pub)) or 1.0
    head = "either door" if gap < CLEAR else faster
    return (
        f"**Short requests such as publishing: {head}.** At {level} clients publish ran at"
        f" {num(g_pub)} req/s on gunicorn gthread and {num(h_pub)} req/s on hypercorn uvloop"
        f" ({faster} ahead by {times(gap)}), keeping {share(g_share)} and {share(h_share)} of"
        f" each server's bare hello throughput (the design asks for at least"
        f" {PUBLISH_SHARE_TARGET:.0%}). Unless that gap matters, pick the door the rest of the"
        f" app needs. {ref('publish')}"
    )


def guide_streams(results: dict[str, Any]) -> str:
    sse = first(results, "idle", kind="sse", server="hypercorn-1proc")
    ws = first(results, "idle", kind="ws", server="hypercorn-1proc")
    slots = first(results, "idle", server="gunicorn-gthread-1worker")
    if not sse or not slots:
        return f"Open streams: {not_measured('4')} {ref('idle')}"
    text = (
        "**Many open streams (SSE, WebSocket): the ASGI door.** One hypercorn process held"
        f" {sse['opened']:,} idle SSE subscribers at {num(sse['kib_per_connection'], 1)} KiB each"
    )
    if ws:
        text += (
            f" and {ws['opened']:,} idle WebSockets at {num(ws['kib_per_connection'], 1)} KiB each"
        )
    refused = slots["statuses"][slots["slots"] :] or ["n/a"]
    text += (
        f"; a gunicorn gthread worker with {slots['threads']} threads had {slots['slots']} stream"
        f" slots, and stream {slots['slots'] + 1} got HTTP {refused[0]} (Retry-After"
        f" {slots.get('retry_after')}), because a WSGI stream holds a thread for its whole life."
        " WebSockets exist on the ASGI door only."
    )
    return f"{text} {ref('idle')}"


def guide_fanout(results: dict[str, Any]) -> str:
    fan = {(r["kind"], r["subscribers"]): r for r in runs_where(results, "fanout")}
    if not fan:
        return f"Fan-out: {not_measured('5')} {ref('fanout')}"
    parts = []
    for (kind, n), run in sorted(fan.items()):
        name = "SSE" if kind == "sse" else "WebSocket"
        parts.append(f"{n:,} {name}: {against(run['p99_ms'], run['target_p99_ms'])}")
    biggest = max(fan.values(), key=lambda r: r["subscribers"])
    return (
        "**Fan-out on one process grows with the audience.** Publish-to-receive latency on one"
        f" hypercorn process: {'; '.join(parts)}. At {biggest['subscribers']:,} subscribers each"
        f" delivery cost {num(biggest.get('server_cpu_us_per_delivery'))} us of server CPU, most"
        " of it the kernel's send: the hub writes each message's bytes straight to hypercorn's"
        ' sockets (the architecture\'s "Direct writes"). Still, the last subscriber waits for'
        " all the others: for audiences beyond what one core reaches within your latency budget,"
        f" spread the subscribers over several processes behind the relay. {ref('fanout')}"
    )


def guide_split(results: dict[str, Any]) -> str:
    cross = {r["mode"]: r for r in runs_where(results, "crossproc")}
    if not cross:
        return f"Split plane: {not_measured('6')} {ref('crossproc')}"
    parts = []
    for mode, name in (("sqlite", "the SQLite relay"), ("redis", "Redis")):
        if mode in cross:
            run = cross[mode]
            parts.append(f"{against(run['p99_ms'], run['target_p99_ms'])} through {name}")
    return (
        "**An existing Flask app that needs streams: the split plane.** Keep the Flask app on"
        " gunicorn for its views and publishing and run hypercorn beside it for the streams: a"
        " message published on gunicorn reached hypercorn's subscribers with"
        f" {' and '.join(parts)}. {ref('crossproc')}"
    )


def guide_bridge(results: dict[str, Any]) -> str:
    portal = first(results, "bridge", variant="portal")
    asgiref = first(results, "bridge", variant="asgiref")
    if not portal or not asgiref:
        return f"The bridge: {not_measured('7')} {ref('bridge')}"
    value = ratio(portal["rps"], asgiref["rps"])
    head = "through the portal, not `async def` views" if (value or 0) >= 1 else "measure both"
    return (
        f"**Async work from Flask views: {head}.** The same publish ran at {num(portal['rps'])}"
        f" req/s through the portal and {num(asgiref['rps'])} req/s through asgiref"
        f" ({times(value)}; the design asks for at least {BRIDGE_TARGET:g}x), p99"
        f" {num(portal['p99_ms'], 1)} ms against {num(asgiref['p99_ms'], 1)} ms. {ref('bridge')}"
    )


def guide_reference(results: dict[str, Any]) -> str | None:
    top = top_level(results)
    level = 64 if 64 in levels_of(results) else top
    servers = [
        s for s in ("uvicorn", "granian-asgi", "granian-wsgi") if http_runs(results, "hello").get(s)
    ]
    if not servers:
        return None
    parts = []
    for server in servers:
        base = "gunicorn-gthread" if server == "granian-wsgi" else "hypercorn-uvloop"
        hello = ratio(rps(results, "hello", server, level), rps(results, "hello", base, level))
        pub = ratio(rps(results, "publish", server, level), rps(results, "publish", base, level))
        parts.append(
            f"{label(results, server)} served {times(hello)} {label(results, base)}'s req/s on"
            f" hello and {times(pub)} on publish"
        )
    return (
        f"**Reference servers.** At {level} clients {'; '.join(parts)}. The server's own cost"
        " weighs most on trivial handlers and less the more a request does; Tandem's documented"
        f" doors stay gunicorn and hypercorn (streams, shutdown, config files). {ref('hello')}"
    )


def decision_guide(results: dict[str, Any]) -> str:
    top = top_level(results)
    bullets = [
        guide_io(results, top),
        guide_cpu(results, top),
        guide_short(results),
        guide_streams(results),
        guide_fanout(results),
        guide_split(results),
        guide_bridge(results),
        guide_reference(results),
    ]
    return "\n".join(f"- {b}" for b in bullets if b)


# -- tables --------------------------------------------------------------------------------


def http_table(results: dict[str, Any], workload: str, baseline: str) -> str:
    table = http_runs(results, workload)
    if not table:
        return not_measured({"hello": "1", "publish": "1", "io": "2", "cpu": "3"}[workload])
    levels = levels_of(results)
    top = max(levels)
    base = rps(results, workload, baseline, top)
    header = [
        "server",
        *[f"req/s @{c}" for c in levels],
        f"p50 ms @{top}",
        f"p99 ms @{top}",
        f"vs {label(results, baseline)} @{top}",
        "errors",
        "peak RSS MiB",
    ]
    rows = []
    for server, by_level in table.items():
        top_run = by_level.get(top, {})
        rows.append(
            [
                label(results, server),
                *[num(by_level.get(c, {}).get("rps")) for c in levels],
                num(top_run.get("p50_ms"), 1),
                num(top_run.get("p99_ms"), 1),
                times(ratio(top_run.get("rps"), base)),
                num(sum(r["errors"] for r in by_level.values())),
                num(max(r["peak_rss_mib"] for r in by_level.values())),
            ]
        )
    key = "throughput" if workload in ("hello", "publish") else workload
    for item in (scenario(results, key) or results.get("scenarios", {}).get(key) or {}).get(
        "skipped", []
    ):
        rows.append(
            [label(results, item["what"]), *[""] * (len(header) - 2), f"skipped: {item['reason']}"]
        )
    for item in (results.get("scenarios", {}).get(key) or {}).get("errors", []):
        if item["what"].endswith(f" {workload}"):
            server = item["what"].rsplit(" ", 1)[0]
            rows.append([label(results, server), *[""] * (len(header) - 2), "error (see results)"])
    return md_table(header, rows, "l" + "r" * (len(header) - 1))


def publish_share_table(results: dict[str, Any]) -> str:
    hello, pub = http_runs(results, "hello"), http_runs(results, "publish")
    if not hello or not pub:
        return not_measured("1")
    levels = levels_of(results)
    rows = []
    for server in pub:
        if server in hello:
            rows.append(
                [
                    label(results, server),
                    *[
                        share(
                            ratio(
                                pub[server].get(c, {}).get("rps"),
                                hello[server].get(c, {}).get("rps"),
                            )
                        )
                        for c in levels
                    ],
                ]
            )
    return md_table(["server", *[f"@{c}" for c in levels]], rows, "l" + "r" * len(levels))


def idle_table(results: dict[str, Any]) -> str:
    runs = runs_where(results, "idle")
    if not runs:
        return not_measured("4")
    rows = []
    for run in runs:
        if "slots" in run:
            refused = run["statuses"][run["slots"] :]
            what = (
                f"{run['slots']} slots of {run['threads']} threads; then HTTP"
                f" {', '.join(str(s) for s in refused)} (Retry-After {run.get('retry_after')})"
            )
            rows.append(
                [
                    label(results, run["server"]),
                    "SSE",
                    num(run["slots"]),
                    what,
                    num(run["rps"]),
                    num(run["p50_ms"], 1),
                    num(run["p99_ms"], 1),
                    num(run["errors"]),
                    num(run["peak_rss_mib"]),
                    run["result"],
                ]
            )
        else:
            rows.append(
                [
                    label(results, run["server"]),
                    "SSE" if run["kind"] == "sse" else "WebSocket",
                    num(run["opened"]),
                    f"{num(run['kib_per_connection'], 1)} KiB per connection (target <="
                    f" {num(run['target_kib'])}); RSS {num(run['baseline_rss_mib'])} ->"
                    f" {num(run['rss_mib'])} MiB",
                    num(run["rps"]),
                    num(run["p50_ms"], 1),
                    num(run["p99_ms"], 1),
                    num(run["errors"]),
                    num(run["peak_rss_mib"]),
                    run["result"],
                ]
            )
    header = [
        "server",
        "stream",
        "held",
        "figure",
        "opened/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "peak RSS MiB",
        "vs target",
    ]
    return md_table(header, rows, "llrlrrrrrl")


def fanout_table(results: dict[str, Any]) -> str:
    runs = runs_where(results, "fanout")
    if not runs:
        return not_measured("5")
    rows = [
        [
            "SSE" if r["kind"] == "sse" else "WebSocket",
            num(r["subscribers"]),
            num(r["messages"]),
            num(r["rps"]),
            num(r["p50_ms"], 1),
            num(r["p99_ms"], 1),
            num(r["max_ms"], 1),
            num(r.get("server_cpu_us_per_delivery")),
            num(r["errors"]),
            num(r["peak_rss_mib"]),
            f"p99 <= {num(r['target_p99_ms'])} ms: {r['result']}",
        ]
        for r in runs
    ]
    header = [
        "stream",
        "subscribers",
        "messages",
        "deliveries/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server CPU us/delivery",
        "errors",
        "peak RSS MiB",
        "target",
    ]
    return md_table(header, rows, "lrrrrrrrrrl")


def crossproc_table(results: dict[str, Any]) -> str:
    runs = runs_where(results, "crossproc")
    if not runs:
        return not_measured("6")
    rows = [
        [
            "SQLite relay" if r["mode"] == "sqlite" else "Redis (+ PostgreSQL)",
            num(r["subscribers"]),
            num(r["messages"]),
            num(r["rps"]),
            num(r["p50_ms"], 1),
            num(r["p90_ms"], 1),
            num(r["p99_ms"], 1),
            num(r["errors"]),
            num(r["peak_rss_mib"]),
            f"p99 <= {num(r['target_p99_ms'])} ms: {r['result']}",
        ]
        for r in runs
    ]
    for item in (results.get("scenarios", {}).get("crossproc") or {}).get("skipped", []):
        rows.append([item["what"], "", "", "", "", "", "", "", "", f"skipped: {item['reason']}"])
    header = [
        "through",
        "subscribers",
        "messages",
        "published/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "errors",
        "peak RSS MiB (both servers)",
        "target",
    ]
    return md_table(header, rows, "lrrrrrrrrl")


def bridge_table(results: dict[str, Any]) -> str:
    runs = runs_where(results, "bridge")
    if not runs:
        return not_measured("7")
    asgiref = first(results, "bridge", variant="asgiref")
    rows = [
        [
            r["variant"],
            f"`{r['app']}`",
            num(r["rps"]),
            num(r["p50_ms"], 1),
            num(r["p99_ms"], 1),
            times(ratio(r["rps"], asgiref["rps"] if asgiref else None)),
            num(r["errors"]),
            num(r["peak_rss_mib"]),
        ]
        for r in runs
    ]
    header = ["path", "app", "req/s", "p50 ms", "p99 ms", "vs asgiref", "errors", "peak RSS MiB"]
    return md_table(header, rows, "llrrrrrr")


def servers_table(results: dict[str, Any]) -> str:
    scenarios = results.get("scenarios", {}).values()
    rows = []
    for key, server in results.get("servers", {}).items():
        ran = sorted(
            {
                s["number"]
                for s in scenarios
                for run in s.get("runs", [])
                if run.get("server") == key
            }
        )
        skipped = {
            item["reason"]
            for s in scenarios
            for item in s.get("skipped", [])
            if item["what"] == key
        }
        if ran:
            status = "scenarios " + ", ".join(str(n) for n in ran)
        elif skipped:
            status = "skipped: " + "; ".join(sorted(skipped))
        else:
            status = f"skipped: {server.get('reason', 'not in this run')}"
        name = server["label"] + (" (reference)" if server.get("reference") else "")
        rows.append(
            [name, server["door"].upper(), str(server["processes"]), server["note"], status]
        )
    return md_table(["server", "door", "processes", "configured as", "in this run"], rows, "llrll")


def meta_table(results: dict[str, Any]) -> str:
    box = results["machine"]
    v = results["versions"]
    scen = results.get("scenarios", {})
    starts = {s["number"]: s["load_average_start"] for s in scen.values()}
    parts = []
    if {1, 2, 3} <= starts.keys():  # run server by server, together
        parts.append(f"1-3: {starts.pop(1)}")
        starts.pop(2)
        starts.pop(3)
    parts += [f"{number}: {value}" for number, value in sorted(starts.items())]
    loads = ", ".join(parts)
    packages = ", ".join(f"{name} {v[name]}" for name in v if name not in ("python",))
    rows = [
        ("date", results["date"]),
        (
            "host",
            f"{results['host']}: {box['cpus']} cores, {box['memory_gib']} GiB, {box['platform']}",
        ),
        ("Python", v.get("python", "?")),
        ("packages", packages),
        ("load generator", f"{results['tools'].get('wrk')}; streams: harness/loadclients.py"),
        (
            "load average (1 min)",
            f"before {box['load_average_before'][0]}, after {box['load_average_after'][0]};"
            f" at the start of each scenario: {loads}",
        ),
        ("wall time", f"{results['elapsed_s'] / 60:.1f} min (`{results['command']}`)"),
    ]
    return "\n".join(f"| {k} | {val} |" for k, val in rows)


def run_note(results: dict[str, Any]) -> str:
    notes = []
    if results.get("quick"):
        notes.append(
            "**This is a `--quick` run: small sizes and one-second measurements, to check the"
            " harness. Its figures are not a basis for decisions.**"
        )
    peak = results["machine"].get("load_average_max", 0)
    cores = results["machine"].get("cpus") or 1
    if peak > 0.5 * cores:
        notes.append(
            f"The machine was not idle: the 1-minute load average reached {peak} on"
            f" {cores} cores during the run (other work shared the cores), which lowers the"
            " absolute figures; the ratios between servers measured back to back hold better."
        )
    return "\n\n".join(notes)


# -- plots ---------------------------------------------------------------------------------


def _style(ax: Axes) -> None:
    ax.grid(True, which="major", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def _empty(path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, f"{title}: not measured in this run", ha="center", va="center")
    return _save(fig, path)


def plot_http(results: dict[str, Any], workload: str, path: Path) -> Path:
    table = http_runs(results, workload)
    if not table:
        return _empty(path, WORKLOAD_TITLES[workload])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for server, by_level in table.items():
        levels = sorted(by_level)
        reference = results.get("servers", {}).get(server, {}).get("reference", False)
        style = {
            "color": COLORS.get(server),
            "marker": "o",
            "linestyle": "--" if reference else "-",
            "label": label(results, server),
        }
        left.plot(levels, [by_level[c]["rps"] for c in levels], **style)
        right.plot(levels, [max(by_level[c]["p99_ms"] or 0.01, 0.01) for c in levels], **style)
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels_of(results), [str(c) for c in levels_of(results)])
        ax.set_xlabel("concurrent connections")
        _style(ax)
    left.set_ylabel("successful requests / s")
    left.set_ylim(bottom=0)
    right.set_yscale("log")
    right.set_ylabel("p99 latency, ms (log)")
    left.legend(fontsize=8)
    fig.suptitle(f"{WORKLOAD_TITLES[workload]}: {results['plan']['workers']} worker(s) per server")
    return _save(fig, path)


def plot_rss(results: dict[str, Any], path: Path) -> Path:
    workloads = [w for w in ("hello", "publish", "io", "cpu") if http_runs(results, w)]
    if not workloads:
        return _empty(path, "peak RSS")
    servers = [s for s in COLORS if any(s in http_runs(results, w) for w in workloads)]
    fig, ax = plt.subplots(figsize=(11, 4.2))
    width = 0.8 / max(1, len(servers))
    for i, server in enumerate(servers):
        values = [
            max(
                (r["peak_rss_mib"] for r in http_runs(results, w).get(server, {}).values()),
                default=0,
            )
            for w in workloads
        ]
        xs = [j + (i - (len(servers) - 1) / 2) * width for j in range(len(workloads))]
        ax.bar(xs, values, width, color=COLORS[server], label=label(results, server))
    ax.set_xticks(range(len(workloads)), workloads)
    ax.set_ylabel("peak RSS of the process tree, MiB")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # room for the legend above the bars
    ax.legend(fontsize=8, ncol=4, loc="upper center")
    _style(ax)
    fig.suptitle("Peak memory of each server (master and workers summed), scenarios 1-3")
    return _save(fig, path)


def plot_idle(results: dict[str, Any], path: Path) -> Path:
    runs = [r for r in runs_where(results, "idle") if "steps" in r]
    slots = first(results, "idle", server="gunicorn-gthread-1worker")
    if not runs and not slots:
        return _empty(path, "idle streams")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=[3, 2])
    for run, color in zip(runs, ("#d62728", "#ff7f0e"), strict=False):
        name = "SSE" if run["kind"] == "sse" else "WebSocket"
        xs = [0] + [s["open"] for s in run["steps"]]
        ys = [run["baseline_rss_mib"]] + [s["rss_mib"] for s in run["steps"]]
        left.plot(
            xs,
            ys,
            marker="o",
            color=color,
            label=f"{name}: {num(run['kib_per_connection'], 1)} KiB/conn",
        )
    left.set_xlabel("idle connections open")
    left.set_ylabel("hypercorn RSS, MiB")
    left.set_ylim(bottom=0)
    left.legend(fontsize=8)
    left.set_title("one hypercorn process (workers = 0)", fontsize=10)
    _style(left)
    names, values, colors = [], [], []
    for run, color in zip(runs, ("#d62728", "#ff7f0e"), strict=False):
        names.append(f"hypercorn\n{'SSE' if run['kind'] == 'sse' else 'WebSocket'}")
        values.append(run["opened"])
        colors.append(color)
    if slots:
        names.append(f"gunicorn gthread\n{slots['threads']} threads")
        values.append(slots["slots"])
        colors.append("#17becf")
    bars = right.bar(names, values, color=colors)
    texts = [f"{v:,}" for v in values]
    if slots:
        refused = slots["statuses"][slots["slots"] :] or ["?"]
        texts[-1] += f"\nstream {slots['slots'] + 1}:\nHTTP {refused[0]}"
    right.bar_label(bars, texts, fontsize=8)
    right.set_yscale("log")
    right.set_ylim(1, max(values) * 8)
    right.set_ylabel("streams held by one worker (log)")
    right.set_title("streams per worker", fontsize=10)
    _style(right)
    fig.suptitle("Idle streams: memory as they open, and how many one worker holds")
    return _save(fig, path)


def plot_fanout(results: dict[str, Any], path: Path) -> Path:
    runs = runs_where(results, "fanout")
    if not runs:
        return _empty(path, "fan-out")
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for kind, color in (("sse", "#d62728"), ("ws", "#ff7f0e")):
        mine = sorted((r for r in runs if r["kind"] == kind), key=lambda r: r["subscribers"])
        if not mine:
            continue
        name = "SSE" if kind == "sse" else "WebSocket"
        xs = [r["subscribers"] for r in mine]
        ax.plot(xs, [r["p99_ms"] for r in mine], marker="o", color=color, label=f"{name} p99")
        ax.plot(
            xs,
            [r["p50_ms"] for r in mine],
            marker="s",
            color=color,
            linestyle=":",
            label=f"{name} p50",
        )
    targets = sorted(
        {(r["subscribers"], r["target_p99_ms"]) for r in runs if r["subscribers"] >= 1000}
    )
    for n, target in targets:
        ax.scatter([n], [target], marker="_", s=400, color="black")
    if targets:
        ax.scatter([], [], marker="_", s=200, color="black", label="p99 target")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("subscribers on one topic")
    ax.set_ylabel("publish-to-receive latency, ms (log)")
    ax.legend(fontsize=8)
    _style(ax)
    fig.suptitle("Fan-out on one hypercorn process")
    return _save(fig, path)


def plot_crossproc(results: dict[str, Any], path: Path) -> Path:
    runs = runs_where(results, "crossproc")
    if not runs:
        return _empty(path, "cross-process delivery")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    names = ["SQLite relay" if r["mode"] == "sqlite" else "Redis" for r in runs]
    width = 0.25
    for i, (key, name) in enumerate((("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"))):
        xs = [j + (i - 1) * width for j in range(len(runs))]
        bars = ax.bar(xs, [r[key] or 0 for r in runs], width, label=name)
        ax.bar_label(bars, [num(r[key], 1) for r in runs], fontsize=7)
    for j, r in enumerate(runs):
        ax.hlines(r["target_p99_ms"], j - 0.4, j + 0.4, colors="black", linestyles="dashed")
    ax.plot([], [], color="black", linestyle="dashed", label="p99 target")
    ax.set_xticks(range(len(runs)), names)
    ax.set_ylabel("latency, ms")
    ax.legend(fontsize=8)
    _style(ax)
    fig.suptitle("Publish on gunicorn, receive on hypercorn")
    return _save(fig, path)


def plot_bridge(results: dict[str, Any], path: Path) -> Path:
    runs = runs_where(results, "bridge")
    if not runs:
        return _empty(path, "the bridge")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    names = [r["variant"] for r in runs]
    colors = ["#17becf" if r["variant"] == "portal" else "#7f7f7f" for r in runs]
    bars = left.bar(names, [r["rps"] for r in runs], color=colors)
    left.bar_label(bars, [num(r["rps"]) for r in runs], fontsize=8)
    left.set_ylabel("successful requests / s")
    bars = right.bar(names, [r["p99_ms"] or 0 for r in runs], color=colors)
    right.bar_label(bars, [num(r["p99_ms"], 1) for r in runs], fontsize=8)
    right.set_ylabel("p99 latency, ms")
    for ax in (left, right):
        _style(ax)
    fig.suptitle("Flask publish on gunicorn gthread: portal against asgiref")
    return _save(fig, path)


PLOTTERS: dict[str, Callable[[dict[str, Any], Path], Path]] = {
    "hello": lambda r, p: plot_http(r, "hello", p),
    "publish": lambda r, p: plot_http(r, "publish", p),
    "io": lambda r, p: plot_http(r, "io", p),
    "cpu": lambda r, p: plot_http(r, "cpu", p),
    "rss": plot_rss,
    "idle": plot_idle,
    "fanout": plot_fanout,
    "crossproc": plot_crossproc,
    "bridge": plot_bridge,
}


# -- the report ----------------------------------------------------------------------------


def rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def render(results: dict[str, Any], results_path: Path, docs: Path) -> list[Path]:
    """Draw every plot into ``docs/img/`` and write ``docs/tradeoffs.md``; return the files."""
    docs.mkdir(parents=True, exist_ok=True)
    written = [PLOTTERS[key](results, docs / "img" / name) for key, name in IMAGES.items()]
    plan = results["plan"]
    s = plan["streams"]
    values = {
        "results_link_text": rel(results_path, ROOT)
        if results_path.resolve().is_relative_to(ROOT)
        else results_path.name,
        "results_name": results_path.name,
        "results_link": rel(results_path, docs),
        "harness_readme": rel(ROOT / "benchmarks" / "README.md", docs),
        "full_minutes": "13" if results.get("quick") else f"{results['elapsed_s'] / 60:.0f}",
        "run_note": run_note(results),
        "meta_table": meta_table(results),
        "headline_table": "\n".join(
            f"| {row['text']} | {headline_value(row)} | {ref(row['where'])} |"
            for row in headline(results)
        )
        or "| (nothing measured) | | |",
        "decision_guide": decision_guide(results),
        "workers": str(plan["workers"]),
        "servers_table": servers_table(results),
        "wrk_threads": str(plan["wrk_threads"]),
        "levels": ", ".join(str(c) for c in plan["levels"]),
        "duration": f"{plan['duration_s']:g}",
        "warmup": f"{plan['warmup_s']:g}",
        "wrk_timeout": f"{plan['wrk_timeout_s']:g}",
        "servers_at_once": str(results.get("http_setup", {}).get("servers_at_once", "n/a")),
        "background_cpu": str(results.get("http_setup", {}).get("background_cpu_pct", "n/a")),
        "table_hello": http_table(results, "hello", "gunicorn-gthread"),
        "table_publish": http_table(results, "publish", "gunicorn-gthread"),
        "table_publish_share": publish_share_table(results),
        "table_io": http_table(results, "io", "gunicorn-sync"),
        "table_cpu": http_table(results, "cpu", "gunicorn-sync"),
        "table_idle": idle_table(results),
        "table_fanout": fanout_table(results),
        "table_crossproc": crossproc_table(results),
        "table_bridge": bridge_table(results),
        "capacity_topics": str(s["capacity_topics"]),
        "keepalive": s["keepalive"],
        "client_processes": str(s["client_processes"]),
        "spacing": f"{s['fanout_spacing_s']:g}",
        "cross_messages": str(s["cross_messages"]),
        "cross_interval_ms": f"{s['cross_interval_s'] * 1000:g}",
        "cross_subscribers": str(s["cross_subscribers"]),
        "bridge_connections": str(plan["bridge"]["connections"]),
        "bridge_duration": f"{plan['bridge']['duration_s']:g}",
        "bridge_warmup": f"{plan['bridge']['warmup_s']:g}",
        **{f"img_{key}": f"img/{name}" for key, name in IMAGES.items()},
    }
    text = string.Template(TEMPLATE.read_text()).substitute(values)
    text = "\n".join(line.rstrip() for line in text.splitlines()).replace("\n\n\n", "\n\n")
    report = docs / "tradeoffs.md"
    report.write_text(text.rstrip() + "\n")
    return [*written, report]


def console_summary(results: dict[str, Any]) -> str:
    lines = ["headline figures:"]
    for row in headline(results):
        lines.append(f"  {row['text']}: {headline_value(row)}")
    for key, data in results.get("scenarios", {}).items():
        if data["status"] != "ok":
            lines.append(f"  scenario {data['number']} ({key}): {data['status']}")
    return "\n".join(lines)
