"""`up`, `down` and `status` of small stacks of our own, as `make` runs them; `up` after a crash."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from rag.core.errors import ConfigurationError
from rag.modelops.triton_repository import TritonRepository
from rag.stack.components.airflow import Airflow
from rag.stack.components.triton import Triton
from rag.stack.config import StackConfig
from rag.stack.process import alive, descendants
from rag.stack.stack import LocalStack
from tests.fixtures.stack import free_ports, private_stack

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


def test_watch_restarts_a_crashed_component(scratch_stack_dir: Path) -> None:
    stack = LocalStack(StackConfig(state_dir=scratch_stack_dir, ports=free_ports(), components=("redis",)))
    stack.up()
    redis = stack.components["redis"]
    _kill(redis.running_pid())
    stack.watch(interval_s=0, rounds=1)
    healthy, detail = redis.status()
    assert healthy, detail


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


# -- convergence: after any single crash, `up` alone brings every component back --------------
# One private stack (PostgreSQL, Triton, Airflow) for the module: never the shared one.


@pytest.fixture(scope="module")
def crashing_stack() -> Iterator[LocalStack]:
    with private_stack("rag-test-crash-", ("postgres", "triton", "airflow")) as stack:
        yield stack


def _kill(pid: int | None) -> None:
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not alive(pid), "the killed process to be gone")


def _wait_for(predicate: Callable[[], bool], what: str, guard_s: float = 120.0) -> None:
    deadline = time.monotonic() + guard_s  # a hang guard, not a timing assertion
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def _scheduler_heartbeat_after(airflow: Airflow, moment: datetime) -> bool:
    health = httpx.get(f"{airflow.url}/api/v2/monitor/health", timeout=5).json()
    beat = health["scheduler"].get("latest_scheduler_heartbeat")
    return beat is not None and datetime.fromisoformat(beat) > moment


def test_up_loads_every_model_and_promoted_version_after_triton_is_killed(
    crashing_stack: LocalStack,
) -> None:
    triton = crashing_stack.components["triton"]
    assert isinstance(triton, Triton)
    # A promoted embedder: version 2 in the stack's repository (what a promotion leaves there).
    TritonRepository(crashing_stack.config.model_repository).copy_version("embedder", 1, 2)
    _kill(triton.running_pid())

    assert "triton" in crashing_stack.up()

    for model, version in (("embedder", 2), ("generator", 1)):
        url = f"{triton.http_url}/v2/models/{model}/versions/{version}/ready"
        assert httpx.get(url, timeout=5).status_code == 200, f"{model} v{version} not READY"
    assert all(row.healthy for row in crashing_stack.status())


def test_a_killed_airflow_scheduler_is_restarted_in_place_and_leaves_nothing_behind(
    crashing_stack: LocalStack,
) -> None:
    airflow = crashing_stack.components["airflow"]
    assert isinstance(airflow, Airflow)
    supervisor = airflow.running_pid()
    scheduler = airflow.processes()["scheduler"]
    _wait_for(lambda: len(descendants(scheduler)) > 1, "the scheduler's LocalExecutor workers")
    workers = [pid for pid in descendants(scheduler) if pid != scheduler]
    killed_at = datetime.now(UTC)
    _kill(scheduler)

    crashing_stack.up()

    assert airflow.running_pid() == supervisor  # only the scheduler was restarted
    assert airflow.status()[0], airflow.status()[1]
    assert airflow.processes()["scheduler"] != scheduler
    assert [pid for pid in workers if alive(pid)] == []  # no orphaned workers of the old one
    _wait_for(lambda: _scheduler_heartbeat_after(airflow, killed_at), "a heartbeat of the new scheduler")


def test_up_after_postgres_is_killed_brings_back_postgres_and_airflow(crashing_stack: LocalStack) -> None:
    postgres = crashing_stack.components["postgres"]
    airflow = crashing_stack.components["airflow"]
    assert isinstance(airflow, Airflow)
    killed_at = datetime.now(UTC)
    _kill(postgres.running_pid())

    crashing_stack.up()

    rows = crashing_stack.status()
    assert all(row.healthy for row in rows), [(r.name, r.detail) for r in rows if not r.healthy]
    with psycopg.connect(crashing_stack.app_env()["DATABASE_URL"], connect_timeout=5) as conn:
        assert conn.execute("SELECT count(*) FROM roles").fetchone() is not None
    _wait_for(lambda: _scheduler_heartbeat_after(airflow, killed_at), "a scheduler heartbeat after the crash")
