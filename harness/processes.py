"""Processes the harness starts: where they run, which programs, and their children.

Everything here reads /proc or calls prctl, so it is Linux only, as the project is.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import sys
import sysconfig
from pathlib import Path

from harness.errors import HarnessError

# Servers and the ``tandem`` command run from the repository root, as in production.
REPO_ROOT = Path(__file__).resolve().parent.parent

_PR_SET_PDEATHSIG = 1


def executable(name: str) -> str:
    """The console script ``name`` installed beside the running interpreter (the venv)."""
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise HarnessError(f"{name!r} is not installed beside {sys.executable} nor on PATH")
    return found


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only).

    Safe as a ``preexec_fn`` (async-signal-safe prctl, no allocation to speak of), but
    a ``preexec_fn`` must not run while the parent has other threads: only benchmarks,
    which start their servers before any thread, use it that way.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(x) for x in (task / "children").read_text().split()]
    return sorted(set(found))


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (workers, their helpers), from /proc."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += child_pids(current)
    return tree
