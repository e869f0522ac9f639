"""``Component.start`` repairs: a running but unready process is restarted, and what a crashed
process group left behind is killed first (plain processes, no stack)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from rag.stack.components.base import Component, StackContext
from rag.stack.config import StackConfig
from rag.stack.process import alive, descendants

# A leader with one child in its process group, like tritonserver and its backend stubs.
FAMILY = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "time.sleep(120)\n"
)


class Family(Component):
    """Ready unless its PID is written in ``unready`` (a hung server, a server without models)."""

    name = "family"
    startup_timeout = 20.0
    repair_grace = 0.5
    stop_timeout = 5.0

    def ports(self) -> dict[str, int]:
        return {}

    def command(self) -> list[str]:
        return [sys.executable, "-c", FAMILY]

    def check(self) -> str:
        unready = self.ctx.config.state_dir / "unready"
        if unready.exists() and unready.read_text() == str(self.running_pid()):
            raise RuntimeError("not ready")
        if len(descendants(self.running_pid() or 0)) < 2:
            raise RuntimeError("child not started yet")
        return "ready"


def _family(tmp_path: Path) -> Family:
    return Family(StackContext(config=StackConfig(state_dir=tmp_path), secrets={}))


def test_start_restarts_a_running_process_that_stays_unready(tmp_path: Path) -> None:
    family = _family(tmp_path)
    try:
        assert family.start() is True
        first = family.running_pid()
        assert family.start() is False  # ready: left alone
        assert family.running_pid() == first
        (tmp_path / "unready").write_text(str(first))
        assert family.start() is True
        assert family.running_pid() not in (None, first)
        assert first is not None and not alive(first)
    finally:
        family.stop()


def test_start_and_stop_kill_what_a_crashed_leader_left(tmp_path: Path) -> None:
    family = _family(tmp_path)
    try:
        family.start()
        leader = family.running_pid()
        assert leader is not None
        child = next(pid for pid in descendants(leader) if pid != leader)
        os.kill(leader, signal.SIGKILL)
        deadline = time.monotonic() + 10  # a hang guard
        while alive(leader) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert family.status() == (False, "not running")
        assert alive(child)
        assert family.start() is True
        assert not alive(child)
        second = family.running_pid()
        assert second is not None
        second_child = next(pid for pid in descendants(second) if pid != second)
        os.kill(second, signal.SIGKILL)
        while alive(second) and time.monotonic() < deadline + 10:
            time.sleep(0.05)
        assert family.stop() is True  # `down` after a crash also clears the leftovers
        assert not alive(second_child)
    finally:
        family.stop()
