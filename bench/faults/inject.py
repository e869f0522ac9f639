"""Kill a component of the local stack by name and signal, and recover it the way an operator
does: ``LocalStack.up()``, what ``make up`` runs, with no other step.

Cells (what receives the signal):

- ``postgres``, ``redis``, ``objectstore``, ``triton``, ``mlflow``, ``api``: the component's main
  process (the PID file's process: the postmaster, redis-server, ``weed mini``, tritonserver,
  ``mlflow server``, ``python -m grpc_services``);
- ``airflow-scheduler``: the scheduler, one of the four children of Airflow's supervisor;
- ``airflow-task``: the task process of a running ``process`` task of the cell's run (titled
  ``airflow worker -- <task instance id>``, the child of a LocalExecutor worker
  ``airflow worker -- LocalExecutor: <task instance id>`` under the scheduler);
- ``airflow`` (graceful row only): Airflow's supervisor, which stops its four parts.
"""

from __future__ import annotations

import contextlib
import os
import signal as signals
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rag.core.errors import RagError
from rag.stack.components.airflow import Airflow
from rag.stack.stack import LocalStack

CELLS = ("postgres", "redis", "objectstore", "triton", "mlflow", "airflow-scheduler", "airflow-task", "api")
GRACEFUL = ("postgres", "redis", "objectstore", "triton", "mlflow", "airflow", "api")
POLL_S = 0.5


def stack_component(cell: str) -> str:
    """The stack component a cell's process belongs to."""
    return "airflow" if cell.startswith("airflow") else cell


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def task_process(ti_ids: list[str]) -> int | None:
    """The PID of the task process of one of the task instances ``ti_ids`` (its title)."""
    wanted = {("airflow", "worker", "--", ti) for ti in ti_ids}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and tuple(command_line(int(entry.name)).split()) in wanted:
            return int(entry.name)
    return None


def target_pid(stack: LocalStack, cell: str, *, task_ids: list[str] | None = None) -> int:
    """The process of ``cell`` that receives the signal; raise if it does not run."""
    if cell == "airflow-scheduler":
        airflow = stack.components["airflow"]
        assert isinstance(airflow, Airflow)
        pid = airflow.processes().get("scheduler")
    elif cell == "airflow-task":
        pid = task_process(task_ids or [])
    else:
        pid = stack.components[cell].running_pid()
    if pid is None:
        raise RuntimeError(f"{cell}: no process to signal (not running)")
    return pid


@dataclass(frozen=True)
class Kill:
    cell: str
    signal: str
    pid: int
    process: str  # its command line, shortened
    at: float  # time.monotonic()


def kill(stack: LocalStack, cell: str, sig: int, *, task_ids: list[str] | None = None) -> Kill:
    pid = target_pid(stack, cell, task_ids=task_ids)
    process = command_line(pid)[:120]
    at = time.monotonic()
    os.kill(pid, sig)
    return Kill(cell, signals.Signals(sig).name, pid, process, at)


@dataclass
class Recovery:
    """``up()`` after a fault, timed: every time is ``time.monotonic()``."""

    component: str
    started: float
    up_s: float = 0.0
    up_calls: int = 0
    restarted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # an up() that raised (it is called again)
    component_back: float | None = None  # the component healthy again (its status check)
    all_healthy: float | None = None  # every component healthy (status), after up() returned

    def seconds(self, at: float | None) -> float | None:
        return None if at is None else at - self.started


def recover(stack: LocalStack, component: str, *, timeout_s: float = 300.0) -> Recovery:
    """``stack.up()`` (called again if it raises, as ``rag.stack watch`` would, until
    ``timeout_s``), timing when ``component`` is healthy again and when every component is."""
    recovery = Recovery(component, time.monotonic())
    done = threading.Event()

    def watch_component() -> None:
        while not done.is_set() and recovery.component_back is None:
            with contextlib.suppress(Exception):
                if stack.components[component].status()[0]:
                    recovery.component_back = time.monotonic()
                    return
            done.wait(POLL_S)

    watcher = threading.Thread(target=watch_component, name="faults-recovery", daemon=True)
    watcher.start()
    deadline = recovery.started + timeout_s
    try:
        while time.monotonic() < deadline:
            recovery.up_calls += 1
            try:
                recovery.restarted += stack.up()
                break
            except (RagError, RuntimeError, TimeoutError, OSError) as exc:
                recovery.errors.append(
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                )
                time.sleep(2)
        recovery.up_s = time.monotonic() - recovery.started
        while time.monotonic() < deadline:
            rows = stack.status()
            if all(row.healthy for row in rows):
                recovery.all_healthy = time.monotonic()
                break
            time.sleep(POLL_S)
    finally:
        done.set()
        watcher.join(timeout=10)
    if recovery.component_back is None and recovery.all_healthy is not None:
        recovery.component_back = recovery.all_healthy
    return recovery
