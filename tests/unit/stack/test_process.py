from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.core.errors import ConfigurationError
from rag.stack.process import PidFile, _process_stats, descendants, require_free_ports, spawn, stop


def test_pid_file_ignores_a_recycled_pid(tmp_path: Path) -> None:
    pid_file = PidFile(tmp_path / "x.pid")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file.write(proc.pid)
        assert pid_file.running_pid() == proc.pid
        record = json.loads(pid_file.path.read_text())
        pid_file.path.write_text(json.dumps({"pid": proc.pid, "start_time": record["start_time"] + 1}))
        assert pid_file.running_pid() is None  # same PID, other start time: not ours
        assert not pid_file.path.exists()
    finally:
        proc.kill()
        proc.wait()


def test_spawn_and_stop_the_whole_group(tmp_path: Path) -> None:
    pid_file = PidFile(tmp_path / "run" / "sleeper.pid")
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    pid = spawn(
        [sys.executable, "-c", script], log_path=tmp_path / "log", pid_file=pid_file, env={}, cwd=tmp_path
    )
    deadline = time.monotonic() + 10
    while len(descendants(pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    members = descendants(pid)
    assert len(members) == 2
    assert stop(pid_file, sig=signal.SIGTERM, timeout=10) is True
    for member in members:
        status = Path(f"/proc/{member}/stat")
        assert not status.exists() or status.read_text().split(") ")[1].startswith("Z")
    assert stop(pid_file) is False  # nothing left to stop


def test_spawn_lowers_the_cpu_priority_and_keeps_the_pid(tmp_path: Path) -> None:
    """A batch component runs niced; the PID file holds the command's own PID (nice execs it)."""
    pid_file = PidFile(tmp_path / "run" / "sleeper.pid")
    pid = spawn(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        log_path=tmp_path / "log",
        pid_file=pid_file,
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        nice=7,
    )
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"nice\0") and time.monotonic() < deadline:
            time.sleep(0.05)  # until nice has exec'd the command
        assert pid_file.running_pid() == pid
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:3] == [
            b"-c",
            b"import time; time.sleep(60)",
        ]
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)
    finally:
        stop(pid_file, timeout=10)


def test_port_in_use_names_the_variable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigurationError, match=rf"port {port} \(mlflow\).*RAG_PORTS__MLFLOW"):
            require_free_ports("mlflow", "127.0.0.1", {"mlflow": port})


def test_free_ports_are_outside_the_ephemeral_range_and_never_handed_out_twice() -> None:
    from rag.stack.process import PICK_RANGE, free_port, port_is_free

    ports = [free_port() for _ in range(40)]
    block = free_port(size=11)
    assert len(set(ports)) == len(ports) and not set(ports) & set(range(block, block + 11))
    assert all(PICK_RANGE[0] <= p < PICK_RANGE[1] < 32768 for p in [*ports, block + 10])
    assert all(port_is_free("127.0.0.1", p) for p in range(block, block + 11))


def test_process_stats_name_each_process_with_its_state_parent_and_group() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stats = dict(_process_stats())
        state, parent, group = stats[child.pid][:3]
        assert state in {"R", "S", "D"}
        assert (int(parent), int(group)) == (os.getpid(), os.getpgrp())
        assert int(stats[os.getpid()][1]) == os.getppid()
        assert child.pid in descendants(os.getpid())
    finally:
        child.kill()
        child.wait()
