"""The loop portal: sync callers, the runtime on one loop thread, fork and failure safety."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest
import uvloop

from tandem.bridge import CorePortal, Portal
from tandem.core.errors import Unavailable
from tandem.core.schemas import NewMessage
from tandem.core.settings import Settings


def _portal_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "tandem-portal")


def test_call_runs_on_the_portal_loop_and_returns_the_result() -> None:
    portal = Portal()
    try:

        async def where() -> tuple[str, bool]:
            return threading.current_thread().name, asyncio.get_running_loop() is portal.loop

        assert portal.call(where()) == ("tandem-portal", True)
    finally:
        portal.stop()


def test_the_portal_runs_uvloop_unless_told_otherwise() -> None:
    for factory, loop_type in (
        (None, uvloop.Loop),
        (asyncio.new_event_loop, asyncio.BaseEventLoop),
    ):
        portal = Portal() if factory is None else Portal(loop_factory=factory)
        try:

            async def loop() -> asyncio.AbstractEventLoop:
                return asyncio.get_running_loop()

            assert isinstance(portal.call(loop()), loop_type)
            assert portal.call(loop()) is portal.loop
        finally:
            portal.stop()


def test_calling_the_portal_from_its_own_thread_is_refused() -> None:
    portal = Portal()
    try:

        async def reenter() -> None:
            portal.submit(asyncio.sleep(0))

        with pytest.raises(RuntimeError, match="deadlock"):
            portal.call(reenter())
    finally:
        portal.stop()


def test_core_portal_publishes_and_keeps_one_runtime(settings: Settings) -> None:
    core = CorePortal(settings)
    try:
        first = core.call(lambda rt: rt.publish(NewMessage(topic="t", message="a")))
        second = core.call(lambda rt: rt.publish(NewMessage(topic="t", message="b")))
        assert second.seq > first.seq
        assert _portal_threads() >= 1
        assert core.started
    finally:
        core.close()
    assert not core.started


def test_a_failed_start_leaves_no_loop_thread_behind(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no" / "such" / "dir" / "x.db"
    settings = Settings(
        _env_file=None, env="testing", database_url=f"sqlite+aiosqlite:///{missing_dir}"
    )
    core = CorePortal(settings)
    before = _portal_threads()
    for _ in range(3):
        with pytest.raises(Unavailable):
            core.call(lambda rt: rt.check_health())
    assert _portal_threads() == before
    assert not core.started


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_builds_its_own_portal(settings: Settings) -> None:
    core = CorePortal(settings)
    try:
        parent_seq = core.call(lambda rt: rt.publish(NewMessage(topic="f", message="p"))).seq
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the parent's loop thread does not exist here
            try:
                seq = core.call(lambda rt: rt.publish(NewMessage(topic="f", message="c"))).seq
                os.write(write, str(seq).encode())
            finally:
                os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        child_seq = int(os.read(read, 64) or b"0")
        os.close(read)
        assert os.WEXITSTATUS(status) == 0
        assert child_seq > parent_seq
    finally:
        core.close()
