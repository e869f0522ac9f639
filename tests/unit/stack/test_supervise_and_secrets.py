from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rag.stack.process import alive
from rag.stack.secrets import SECRET_NAMES, ensure_secrets, read_env_file
from rag.stack.supervise import SEPARATOR, split_commands


def test_split_commands() -> None:
    assert split_commands(["a", "1", SEPARATOR, "b", SEPARATOR]) == [["a", "1"], ["b"]]


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30  # a hang guard, not a timing assertion
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_supervisor_restarts_a_killed_child_and_kills_what_it_left(tmp_path: Path) -> None:
    """A child killed with -9 comes back; its orphaned worker does not linger (as the
    LocalExecutor workers of a killed Airflow scheduler did)."""
    log = tmp_path / "pids"
    parent = (
        "import os, subprocess, sys, time\n"
        "worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(log)!r}, 'a').write(f'{{os.getpid()}} {{worker.pid}}\\n')\n"
        "time.sleep(120)\n"
    )
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.stack.supervise", sys.executable, "-c", parent, SEPARATOR, *sleeper]
    )
    try:
        _wait_for(lambda: len(_pids(log)) == 2, "the first start")
        first, worker = _pids(log)
        os.kill(first, signal.SIGKILL)
        _wait_for(lambda: len(_pids(log)) == 4, "the restart")
        assert proc.poll() is None  # the supervisor (the component) stayed up
        assert not alive(first) and not alive(worker)
        second, second_worker = _pids(log)[2:]
        assert alive(second) and alive(second_worker)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert not alive(second) and not alive(second_worker)


def test_supervisor_forwards_sigterm(tmp_path: Path) -> None:
    """SIGTERM reaches every child, and the supervisor exits cleanly once they have gone."""
    log = tmp_path / "terms"
    child = (
        "import os, signal, sys, time\n"
        "def term(signum, frame):\n"
        f"    open({str(log)!r}, 'a').write(f'term {{os.getpid()}}\\n')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, term)\n"
        f"open({str(log)!r}, 'a').write(f'start {{os.getpid()}}\\n')\n"
        "time.sleep(60)\n"
    )
    command = [sys.executable, "-c", child]
    proc = subprocess.Popen([sys.executable, "-m", "rag.stack.supervise", *command, SEPARATOR, *command])

    def lines(kind: str) -> set[int]:
        text = log.read_text() if log.exists() else ""
        return {int(line.split()[1]) for line in text.splitlines() if line.startswith(kind)}

    try:
        _wait_for(lambda: len(lines("start")) == 2, "both children to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0  # killed by the signal itself, it would be -SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    started = lines("start")
    assert lines("term") == started  # each child got the SIGTERM and handled it
    assert not any(alive(pid) for pid in started)


def test_supervisor_stops_the_first_command_last(tmp_path: Path) -> None:
    """The others may still call the first (Airflow's scheduler reports its tasks to the
    api-server) while they stop: it gets the SIGTERM once they have exited."""
    log = tmp_path / "order"

    def command(name: str, linger_s: float) -> list[str]:
        code = (
            "import signal, sys, time\n"
            "def term(signum, frame):\n"
            f"    time.sleep({linger_s})\n"
            f"    open({str(log)!r}, 'a').write('{name}\\n')\n"
            "    sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, term)\n"
            f"open({str(log)!r}, 'a').write('up {name}\\n')\n"
            "time.sleep(60)\n"
        )
        return [sys.executable, "-c", code]

    argv = [*command("first", 0.0), SEPARATOR, *command("second", 1.0)]
    proc = subprocess.Popen([sys.executable, "-m", "rag.stack.supervise", *argv])
    try:
        _wait_for(lambda: log.exists() and log.read_text().count("up ") == 2, "both children to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    stopped = [line for line in log.read_text().splitlines() if not line.startswith("up ")]
    assert stopped == ["second", "first"]  # the second lingered 1 s, the first still waited


def test_secrets_generated_once_private_and_completed(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    first = ensure_secrets(path)
    assert set(SECRET_NAMES) <= set(first)
    assert all(len(first[name]) >= 16 for name in SECRET_NAMES)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ensure_secrets(path) == first  # stable across runs
    values = read_env_file(path)
    del values["JWT_SECRET_KEY"]
    path.write_text("".join(f"{k}='{v}'\n" for k, v in values.items()))
    again = ensure_secrets(path)
    assert again["REDIS_PASSWORD"] == first["REDIS_PASSWORD"]
    assert again["JWT_SECRET_KEY"] and again["JWT_SECRET_KEY"] != first["JWT_SECRET_KEY"]
