"""Run several commands as one unit: ``python -m rag.stack.supervise CMD1 ::: CMD2 ...``.

Used where one stack component is several processes (Airflow's api-server, scheduler,
dag-processor and triggerer). SIGTERM/SIGINT are forwarded to every child; if any child exits,
the others are stopped and the supervisor exits with that child's code, so the component shows
as down instead of half-running.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

SEPARATOR = ":::"


def split_commands(argv: list[str]) -> list[list[str]]:
    commands: list[list[str]] = [[]]
    for arg in argv:
        if arg == SEPARATOR:
            commands.append([])
        else:
            commands[-1].append(arg)
    return [c for c in commands if c]


def main(argv: list[str]) -> int:
    commands = split_commands(argv)
    if not commands:
        print("usage: python -m rag.stack.supervise CMD [::: CMD ...]", file=sys.stderr)
        return 2
    children = [subprocess.Popen(cmd) for cmd in commands]
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    while True:
        exited = [c for c in children if c.poll() is not None]
        if exited and not stopping:
            code = exited[0].returncode or 1
            name = " ".join(commands[children.index(exited[0])][:2])
            print(f"supervise: {name} exited with {exited[0].returncode}; stopping", flush=True)
            forward(signal.SIGTERM, None)
        if all(c.poll() is not None for c in children):
            return code
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
