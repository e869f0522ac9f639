"""`up`, `down` and `status` of a small stack of our own (PostgreSQL + Redis), as `make` runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from rag.core.errors import ConfigurationError
from rag.stack.config import StackConfig
from rag.stack.process import alive
from rag.stack.stack import LocalStack
from tests.fixtures.stack import free_ports

pytestmark = pytest.mark.integration


def _small(state_dir: Path) -> StackConfig:
    return StackConfig(state_dir=state_dir, ports=free_ports(), components=("postgres", "redis"))


def _cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rag.stack", *args, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_up_twice_down_and_data_survives(scratch_stack_dir: Path) -> None:
    stack = LocalStack(_small(scratch_stack_dir))
    assert stack.up() == ["postgres", "redis"]
    pids = {name: c.running_pid() for name, c in stack.components.items()}
    assert stack.up() == []  # a no-op: nothing restarted
    assert {name: c.running_pid() for name, c in stack.components.items()} == pids

    url = stack.app_env()["DATABASE_URL"]
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO roles (name, permissions) VALUES ('probe', ARRAY['documents:read'])")

    status = _cli(scratch_stack_dir, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("healthy") == 2

    down = _cli(scratch_stack_dir, "down")
    assert down.returncode == 0
    for pid in pids.values():
        assert pid is not None and not alive(pid)
    status = _cli(scratch_stack_dir, "status")
    assert status.returncode == 1 and "not running" in status.stdout

    assert stack.up() == ["postgres", "redis"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM roles WHERE name = 'probe'").fetchone() == (1,)


def test_down_after_a_crash_clears_the_stale_pid(scratch_stack_dir: Path) -> None:
    config = StackConfig(state_dir=scratch_stack_dir, ports=free_ports(), components=("redis",))
    stack = LocalStack(config)
    stack.up()
    redis = stack.components["redis"]
    pid = redis.running_pid()
    assert pid is not None
    os.kill(pid, 9)
    assert redis.pid_file.path.exists()
    status = _cli(scratch_stack_dir, "status")
    assert status.returncode == 1
    assert _cli(scratch_stack_dir, "down").returncode == 0
    assert not redis.pid_file.path.exists()
    assert stack.up() == ["redis"]


def test_port_in_use_is_one_line_naming_the_fix(scratch_stack_dir: Path) -> None:
    config = StackConfig(state_dir=scratch_stack_dir, ports=free_ports(), components=("redis",))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.ports.redis))
        squatter.listen()
        with pytest.raises(ConfigurationError, match=r"port \d+ \(redis\).*already in use.*RAG_PORTS__REDIS"):
            LocalStack(config).up()
        config.save()
        result = _cli(scratch_stack_dir, "up")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "RAG_PORTS__REDIS" in lines[0] and "Traceback" not in result.stderr
