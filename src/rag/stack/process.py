"""Start and stop local server processes by PID file, safely.

A PID file records the PID and the process's start time (from /proc), so a recycled PID is never
mistaken for ours: ``stop`` signals only a process that it started itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.core.errors import ConfigurationError

log = logging.getLogger(__name__)


def _start_time(pid: int) -> int | None:
    """The process start time in clock ticks since boot, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces or parentheses: fields start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited already
        return None
    return int(fields[19])


def alive(pid: int) -> bool:
    """True while the process runs (a zombie that has exited but is not yet reaped counts as gone)."""
    return _start_time(pid) is not None


@dataclass(frozen=True)
class PidFile:
    path: Path

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"pid": pid, "start_time": _start_time(pid)}))

    def recorded_pid(self) -> int | None:
        """The PID written last, whether or not that process still runs."""
        try:
            return int(json.loads(self.path.read_text())["pid"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def running_pid(self) -> int | None:
        """The PID if the recorded process is still the one we started; clears a stale file."""
        try:
            record = json.loads(self.path.read_text())
            pid, started = int(record["pid"]), record["start_time"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        now = _start_time(pid)
        if now is None or now != started:
            # Kept while a crashed leader's group lives on: ``kill_leftovers`` needs its ID.
            if now is not None or not _group_alive(pid):
                self.path.unlink(missing_ok=True)
            return None
        return pid

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# Ports for test and scratch stacks: below Linux's ephemeral range (32768-60999), so no client
# socket of any process can take one between this check and the server's bind (a port the kernel
# hands out for bind(0) comes from that very range: a SeaweedFS metrics port was lost that way),
# and above the local stack's defaults (25000-29464).
PICK_RANGE = (30000, 32760)
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1", *, size: int = 1) -> int:
    """A free port (or the first of ``size`` consecutive free ports), never handed out before
    by this process."""
    rng = random.SystemRandom()
    for _ in range(1000):
        base = rng.randrange(PICK_RANGE[0], PICK_RANGE[1] - size)
        block = range(base, base + size)
        if _handed_out.isdisjoint(block) and all(port_is_free(host, port) for port in block):
            _handed_out.update(block)
            return base
    raise RuntimeError(f"no {size} free consecutive port(s) in {PICK_RANGE[0]}-{PICK_RANGE[1]}")


def require_free_ports(component: str, host: str, ports: Mapping[str, int]) -> None:
    """Raise one clear line if any port the component needs is taken by someone else."""
    for name, port in ports.items():
        if not port_is_free(host, port):
            env = "RAG_PORTS__S3" if name.startswith("seaweedfs") else "RAG_PORTS__" + name.upper()
            raise ConfigurationError(
                f"{component}: port {port} ({name}) on {host} is already in use; stop whatever "
                f"listens there or choose another port (e.g. {env}=<free port>)"
            )


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    pid_file: PidFile,
    env: Mapping[str, str],
    cwd: Path,
    user: str | None = None,
    nice: int = 0,
) -> int:
    """Start ``argv`` in its own session, output appended to ``log_path``; return its PID.

    ``nice`` > 0 runs it at that lower CPU priority (coreutils ``nice`` execs the command, so the
    PID is the command's own); its children inherit it.
    """
    if nice:
        argv = ["nice", "-n", str(nice), *argv]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        out.flush()
        uid = gid = None
        if user is not None:
            entry = pwd.getpwnam(user)
            uid, gid = entry.pw_uid, entry.pw_gid
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
            user=uid,
            group=gid,
            extra_groups=[] if user is not None else None,
        )
    pid_file.write(proc.pid)
    return proc.pid


def stop(pid_file: PidFile, *, sig: int = signal.SIGTERM, timeout: float = 30.0, group: bool = True) -> bool:
    """Stop the process (group) we started; escalate to SIGKILL after ``timeout``. True if it ran.

    ``group=False`` signals only the leader (a supervisor that stops its children in order);
    whatever of its group is left once it has exited is killed.
    """
    left = kill_leftovers(pid_file)
    pid = pid_file.running_pid()
    if pid is None:
        pid_file.clear()
        return left
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _start_time(pid) is None:
            if not group and _group_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            if not _group_alive(pid):
                break
        _reap(pid)
        time.sleep(0.1)
    else:
        log.warning("process %s did not stop in %.0fs; killing it", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _wait_gone(pid, 10.0)
    pid_file.clear()
    return True


def kill_leftovers(pid_file: PidFile) -> bool:
    """Kill what is left of the process group of a crashed leader (True if anything was).

    ``spawn`` made the leader a group leader, so its PID is the group's ID. While no process
    holds that PID (the leader is gone) the kernel cannot hand it out again as long as the group
    has members: a live group of that ID is the one we started (a Triton backend stub, the
    api-server of a killed supervisor holding the port).
    """
    pgid = pid_file.recorded_pid()
    if pgid is None or _start_time(pgid) is not None or not _group_alive(pgid):
        return False
    log.warning("killing processes left behind by crashed process group %s", pgid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    _wait_gone(pgid, 10.0)
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(…, 0) succeeds while zombies remain; look for a live member.
    return any(int(fields[2]) == pgid and fields[0] != "Z" for _, fields in _process_stats())


def _process_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/<pid>/stat after the command name) of every process now; the
    fields start with the state, the parent pid and the process group. A process that ends
    meanwhile is skipped."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        yield int(entry.name), stat[stat.rindex(")") + 2 :].split()


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (_start_time(pid) is not None or _group_alive(pid)):
        _reap(pid)
        time.sleep(0.1)


def wait_until(check: object, *, timeout: float, interval: float = 0.25, what: str) -> None:
    """Poll ``check()`` (truthy = ready) until ``timeout``; raise TimeoutError naming ``what``."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            last_error = exc
        time.sleep(interval)
    detail = f": {last_error}" if last_error else ""
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s{detail}")


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (PostgreSQL's children start sessions of their own)."""
    children: dict[int, list[int]] = {}
    for child, fields in _process_stats():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def pss_bytes(pid: int) -> int:
    """Proportional set size of a process tree: shared pages are split between sharers."""
    total = 0
    for member in descendants(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total
