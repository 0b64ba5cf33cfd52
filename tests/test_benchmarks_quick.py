"""The trade-off lab's ``--quick`` run: its output is complete and well-formed.

Slow (about a minute: it starts real servers and load generators), but part of the
normal suite. It writes into temporary directories (``--out``/``--docs``), never over
the committed report, and asserts nothing about speed.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks import report, runner
from benchmarks._common import REDIS_URL, ensure_wrk
from benchmarks.matrix import HYPERCORN_ONE, MATRIX
from harness.databases import redis_available

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parent.parent
COMMON = {"rps", "p50_ms", "p99_ms", "errors", "peak_rss_mib"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_benchmarks(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One ``run --quick`` for the whole module: its results, paths and output."""
    missing = ensure_wrk()
    if missing:
        pytest.skip(missing)
    base = tmp_path_factory.mktemp("bench")
    out, docs = base / "results", base / "docs"
    done = run_benchmarks("run", "--quick", "--out", str(out), "--docs", str(docs), timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    files = list(out.glob("*.json"))
    assert len(files) == 1, files
    return {
        "results": json.loads(files[0].read_text()),
        "path": files[0],
        "docs": docs,
        "stdout": done.stdout,
    }


def test_results_file_name_and_metadata(quick: dict[str, Any]) -> None:
    results = quick["results"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-[\w-]+\.json", quick["path"].name)
    assert quick["path"].name == f"{results['date'][:10]}-{results['host']}.json"
    assert results["schema"] == runner.SCHEMA
    assert results["benchmark"] == "tradeoffs"
    assert results["quick"] is True
    box = results["machine"]
    assert box["cpus"] >= 1
    assert box["memory_gib"] > 0
    assert len(box["load_average_before"]) == 3
    assert len(box["load_average_after"]) == 3
    assert box["load_average_max"] >= 0
    for package in ("python", "gunicorn", "hypercorn", "flask", "quart", "matplotlib"):
        assert results["versions"][package]
    assert results["tools"]["wrk"].startswith("wrk")
    assert results["elapsed_s"] > 0
    assert results["plan"]["levels"] == list(runner.QUICK.levels)
    assert results["http_setup"]["servers_at_once"] == 2 * len(runner.QUICK.servers)
    assert results["http_setup"]["background_cpu_pct"] >= 0
    # Small: summaries, not per-request samples.
    assert quick["path"].stat().st_size < 100_000


def test_every_server_is_described(quick: dict[str, Any]) -> None:
    servers = quick["results"]["servers"]
    assert set(servers) == {spec.key for spec in (*MATRIX, HYPERCORN_ONE)}
    for server in servers.values():
        assert {"label", "door", "processes", "note", "available"} <= server.keys()
        assert server["available"] or server["reason"]


def test_every_scenario_ran_and_records_the_common_figures(quick: dict[str, Any]) -> None:
    scenarios = quick["results"]["scenarios"]
    assert set(scenarios) == set(runner.SCENARIOS)
    for key, data in scenarios.items():
        assert data["number"] == runner.SCENARIOS[key][0]
        assert data["status"] == "ok", (key, data["errors"])
        assert data["elapsed_s"] >= 0
        assert data["load_average_start"] >= 0
        assert data["runs"], key
        for run in data["runs"]:
            assert run.keys() >= COMMON, (key, run)
            for field in COMMON:
                assert isinstance(run[field], int | float), (key, field, run)
                assert run[field] >= 0
            assert run["peak_rss_mib"] > 0  # the server's memory was read


def test_http_scenarios_cover_the_quick_matrix(quick: dict[str, Any]) -> None:
    scenarios = quick["results"]["scenarios"]
    levels = set(runner.QUICK.levels)
    for key, workloads in runner.SCENARIO_WORKLOADS.items():
        seen = {(r["server"], r["workload"], r["concurrency"]) for r in scenarios[key]["runs"]}
        wanted = {
            (server, workload, level)
            for server in runner.QUICK.servers
            for workload in workloads
            for level in levels
        }
        assert seen == wanted, key
        skipped = {item["what"] for item in scenarios[key]["skipped"]}
        assert skipped == set(runner.roster(runner.FULL, key)) - set(runner.QUICK.servers)
        assert all(item["reason"] for item in scenarios[key]["skipped"])


def test_stream_scenarios_have_their_figures(quick: dict[str, Any]) -> None:
    scenarios = quick["results"]["scenarios"]
    idle = scenarios["idle"]["runs"]
    kinds = {r["kind"] for r in idle if r["server"] == "hypercorn-1proc"}
    assert kinds == {"sse", "ws"}
    for run in idle:
        if "slots" in run:
            assert run["statuses"][: run["slots"]] == [200] * run["slots"]
        else:
            assert run["steps"]
            assert run["kib_per_connection"] is not None
    fan = {(r["kind"], r["subscribers"]) for r in scenarios["fanout"]["runs"]}
    assert fan == {(kind, n) for kind, n, _ in runner.QUICK.streams.fanout}
    modes = {r["mode"] for r in scenarios["crossproc"]["runs"]}
    assert modes == ({"sqlite", "redis"} if redis_available(REDIS_URL) else {"sqlite"})
    variants = {r["variant"] for r in scenarios["bridge"]["runs"]}
    assert variants == {"portal", "asgiref"}
    assert quick["results"]["headline"]
    for row in quick["results"]["headline"]:
        assert {"key", "text", "value", "unit", "where"} <= row.keys()


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, after checking its signature and chunk structure."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    assert pos == len(data), path
    assert chunks[0] == b"IHDR", path
    assert chunks[-1] == b"IEND", path
    assert b"IDAT" in chunks, path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_every_plot_is_a_png(quick: dict[str, Any]) -> None:
    images = quick["docs"] / "img"
    assert {p.name for p in images.iterdir()} == set(report.IMAGES.values())
    for path in images.iterdir():
        width, height = png_size(path)
        assert width > 100
        assert height > 100


def test_report_references_every_plot_and_table(quick: dict[str, Any]) -> None:
    text = (quick["docs"] / "tradeoffs.md").read_text()
    assert "${" not in text
    for name in report.IMAGES.values():
        assert f"](img/{name})" in text
    for number in range(1, 10):
        assert f"*Figure {number}:" in text
    captions = ["1a", "1b", "1c", "2", "3", "4", "5", "6", "7"]
    for caption in captions:
        # each table caption is followed by a Markdown table
        assert re.search(rf"\*Table {caption}:[^\n]*(\n[^\n|]*)*?\n\n\| ", text), caption
    assert "## Decision guide" in text
    assert "## Headline figures" in text
    # Every claim's pointer leads to a section of the report.
    headings = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in text.splitlines()
        if line.startswith("## ")
    }
    pointers = re.findall(r"\[Figure \d, Table [\w-]+\]\(#([\w-]+)\)", text)
    assert pointers
    assert set(pointers) <= headings
    assert quick["path"].name in text
    assert "--quick" in text  # says it is not a basis for decisions


def test_render_regenerates_the_same_report(quick: dict[str, Any], tmp_path: Path) -> None:
    done = run_benchmarks("render", str(quick["path"]), "--docs", str(tmp_path), timeout=120)
    assert done.returncode == 0, done.stderr
    again = (tmp_path / "tradeoffs.md").read_text()
    first = (quick["docs"] / "tradeoffs.md").read_text()
    # The only differences may be links relative to the docs directory.
    strip = re.compile(r"\]\((?!img/|#)[^)]*\)")
    assert strip.sub("]()", again) == strip.sub("]()", first)
    assert {p.name for p in (tmp_path / "img").iterdir()} == set(report.IMAGES.values())


def test_portal_hop_benchmark_compares_both_loops() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.portal", "--hops", "800", "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = {
        found[1]: (float(found[2]), float(found[3]))
        for found in re.finditer(r"^(asyncio|uvloop) +([\d.]+) +([\d.]+)$", done.stdout, re.M)
    }
    assert set(rows) == {"asyncio", "uvloop"}, done.stdout
    assert all(value > 0 for row in rows.values() for value in row), done.stdout
    assert re.search(r"asyncio / uvloop: \d+\.\d\dx wall, \d+\.\d\dx cpu", done.stdout)
