"""``python -m rag.stack up|down|status|watch|env|destroy``: the local stack's command line.

``up`` starts what is down and repairs what is not ready; ``watch`` keeps doing that.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from rag.core.errors import RagError
from rag.stack.config import StackConfig
from rag.stack.stack import LocalStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.stack", description=__doc__)
    parser.add_argument("command", choices=[*COMMANDS, "watch"])
    parser.add_argument("--state-dir", type=Path, help="state directory (default .rag/ or RAG_STATE_DIR)")
    parser.add_argument("--interval", type=float, default=10.0, help="watch: seconds between checks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        stack = LocalStack(_config_for(args.command, args.state_dir))
        if args.command == "watch":
            stack.watch(args.interval)
            return 0
        return COMMANDS[args.command](stack)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _config_for(command: str, state_dir: Path | None) -> StackConfig:
    """`up` with RAG_* overrides in the environment takes them; otherwise what `up` saved last."""
    fields = set(StackConfig.model_fields) - {"state_dir"}
    overrides = [k for k in os.environ if k.startswith("RAG_") and k[4:].split("__")[0].lower() in fields]
    if command == "up" and overrides:
        return StackConfig() if state_dir is None else StackConfig(state_dir=state_dir)
    return StackConfig.load(state_dir)


def _up(stack: LocalStack) -> int:
    began = time.monotonic()
    started = stack.up()
    what = ", ".join(started) or "nothing, all running"
    print(f"stack up in {time.monotonic() - began:.1f}s (started: {what})")
    return _status(stack)


def _down(stack: LocalStack) -> int:
    stopped = stack.down()
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


def _status(stack: LocalStack) -> int:
    rows = stack.status()
    for row in rows:
        mark = "healthy  " if row.healthy else "UNHEALTHY"
        print(f"{row.name:<12} {mark} {row.detail}")
    return 0 if rows and all(row.healthy for row in rows) else 1


def _env(stack: LocalStack) -> int:
    print(stack.env_path)
    return 0


def _endpoints(stack: LocalStack) -> int:
    for name, address in stack.endpoints():
        print(f"{name:<22} {address}")
    print(f"{'Settings for clients':<22} set -a; . {stack.env_path}; set +a")
    print(f"{'Logs':<22} {stack.config.state_dir / 'logs'}")
    print(f"{'Stop':<22} make down")
    return 0


def _memory(stack: LocalStack) -> int:
    usage = stack.memory()
    for name, size in usage.items():
        print(f"{name:<12} {size / 2**20:8.1f} MiB PSS")
    print(f"{'total':<12} {sum(usage.values()) / 2**20:8.1f} MiB PSS")
    return 0


def _destroy(stack: LocalStack) -> int:
    stack.destroy()
    print(f"removed {stack.config.state_dir}")
    return 0


COMMANDS = {
    "up": _up,
    "down": _down,
    "status": _status,
    "env": _env,
    "endpoints": _endpoints,
    "memory": _memory,
    "destroy": _destroy,
}

if __name__ == "__main__":
    sys.exit(main())
