"""Process tuning for the ASGI server's entry module."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tandem.quart_app.process import YOUNG_THRESHOLD, tune_garbage_collector

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tuning_freezes_the_start_up_heap_and_raises_the_young_threshold(
    restored_gc: None,
) -> None:
    middle, old = gc.get_threshold()[1:]
    tune_garbage_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)


def test_the_asgi_entry_module_applies_it(tmp_path: Path) -> None:
    # Importing asgi.py is what hypercorn does; do it in a fresh interpreter.
    code = "import gc, asgi; print(gc.get_threshold()[0], gc.get_freeze_count() > 0)"
    env = {"TANDEM_ENV": "testing", "TANDEM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.split() == [str(YOUNG_THRESHOLD), "True"]
