"""Run several commands as one unit: ``python -m rag.stack.supervise CMD1 ::: CMD2 ...``.

Used where one stack component is several processes (Airflow's api-server, scheduler,
dag-processor and triggerer). Restart policy "always", as Kubernetes has it: a child that exits
is started again after a back-off (1 s, doubling to 10 s; back to 1 s once it ran 60 s). The
supervisor is its children's subreaper: what a dead child leaves behind (the LocalExecutor
workers of a killed scheduler, a task process in a session of its own) is reparented to it and
killed before the child is restarted, so nothing of the old one lingers. SIGTERM/SIGINT are
forwarded to every child, the first command's last: once the others have exited (or after
:data:`FIRST_LAST_S`), since they may still call it while they stop (Airflow's api-server, which
the scheduler's task processes report to). Once all have exited, anything left below the
supervisor is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rag.stack.process import descendants

SEPARATOR = ":::"
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 10.0
STABLE_AFTER_S = 60.0  # a child that ran this long restarts after the first back-off again
FIRST_LAST_S = 20.0  # how long the first command outlives the others' stop at most
_PR_SET_CHILD_SUBREAPER = 36


def split_commands(argv: list[str]) -> list[list[str]]:
    commands: list[list[str]] = [[]]
    for arg in argv:
        if arg == SEPARATOR:
            commands.append([])
        else:
            commands[-1].append(arg)
    return [c for c in commands if c]


def become_subreaper() -> None:
    """Orphans of our descendants become our children (Linux), so none escapes the unit."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def kill_orphans(keep: set[int]) -> list[int]:
    """SIGKILL every process below this one that is not in ``keep`` or below a kept one."""
    me = os.getpid()
    kept: set[int] = set()
    for pid in keep:
        kept.update(descendants(pid))
    orphans = [pid for pid in descendants(me) if pid != me and pid not in kept]
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    _reap_orphans(keep)
    return orphans


def _reap_orphans(children: set[int]) -> None:
    """Collect exited orphans (reparented zombies); ``children`` (our Popen ones) Popen polls."""
    me = os.getpid()
    for pid in descendants(me):
        if pid == me or pid in children:
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z" and int(fields[1]) == me:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)


@dataclass
class Child:
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff_s: float = BACKOFF_FIRST_S
    restart_at: float | None = None

    @property
    def name(self) -> str:
        return " ".join(os.path.basename(a) for a in self.argv[:2])

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv)
        self.started_at = time.monotonic()
        self.restart_at = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _pids(children: list[Child]) -> set[int]:
    return {c.proc.pid for c in children if c.proc is not None}


def main(argv: list[str]) -> int:
    commands = split_commands(argv)
    if not commands:
        print("usage: python -m rag.stack.supervise CMD [::: CMD ...]", file=sys.stderr)
        return 2
    become_subreaper()
    children = [Child(cmd) for cmd in commands]
    for child in children:
        child.start()
    stopping = False

    received: list[int] = []

    def signal_children(signum: int, which: list[Child]) -> None:
        for child in which:
            if child.running() and child.proc is not None:
                child.proc.send_signal(signum)

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        received.append(signum)
        signal_children(signum, children[1:] if len(received) == 1 else children)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while not stopping:
        now = time.monotonic()
        for child in children:
            if child.proc is not None and child.restart_at is None and child.proc.poll() is not None:
                ran = now - child.started_at
                if ran >= STABLE_AFTER_S:
                    child.backoff_s = BACKOFF_FIRST_S
                child.restart_at = now + child.backoff_s
                killed = kill_orphans({c.proc.pid for c in children if c.running() and c.proc})
                print(
                    f"supervise: {child.name} exited with {child.proc.returncode} after {ran:.0f}s;"
                    f" killed {len(killed)} leftover process(es); restarting in {child.backoff_s:.0f}s",
                    flush=True,
                )
                child.backoff_s = min(child.backoff_s * 2, BACKOFF_MAX_S)
            elif child.restart_at is not None and now >= child.restart_at and not stopping:
                child.start()
        _reap_orphans(_pids(children))
        time.sleep(0.2)
    first_signalled = len(received) > 1
    last_call = time.monotonic() + FIRST_LAST_S
    while any(child.running() for child in children):
        others_done = not any(child.running() for child in children[1:])
        if not first_signalled and (others_done or time.monotonic() >= last_call):
            signal_children(received[0], children[:1])
            first_signalled = True
        _reap_orphans(_pids(children))
        time.sleep(0.2)
    kill_orphans(set())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
