"""``make demo``: the whole product on the embedded local stack, step by step.

Today it brings the stack up (PostgreSQL + pgvector, Redis, SeaweedFS S3, MLflow, Triton,
Airflow), migrates the schema, checks every component with a real call, and prints every
endpoint. Later steps (ingest a sample corpus through the DAG, ask a question over gRPC) are
added here as the product grows.
"""

from __future__ import annotations

import sys
import time

from rag.core.errors import RagError
from rag.stack.config import StackConfig
from rag.stack.stack import LocalStack


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> int:
    began = time.monotonic()
    try:
        stack = LocalStack(StackConfig.load())
        _step("Starting the local stack (real processes on 127.0.0.1)")
        started = stack.up()
        print(f"started: {', '.join(started) or 'nothing (already running)'}")

        _step("Health (each line is a real call: SQL, S3 request, API, model repository)")
        rows = stack.status()
        for row in rows:
            print(f"  {row.name:<12} {'healthy' if row.healthy else 'UNHEALTHY':<10} {row.detail}")
        if not all(row.healthy for row in rows):
            print("some components are unhealthy; see the logs under .rag/logs", file=sys.stderr)
            return 1

        _step("Memory (PSS per component)")
        usage = stack.memory()
        print("  " + ", ".join(f"{name} {size / 2**20:.0f} MiB" for name, size in usage.items()))
        print(f"  total {sum(usage.values()) / 2**30:.2f} GiB")

        _step("Endpoints")
        for name, address in stack.endpoints():
            print(f"  {name:<22} {address}")
        print(f"  {'Client settings':<22} set -a; . {stack.env_path}; set +a")
        print(f"  {'Logs':<22} {stack.config.state_dir / 'logs'}")
        print(
            f"\nDemo finished in {time.monotonic() - began:.0f}s. The stack keeps running: `make status`, "
            "`make down` to stop it (data is kept), `make destroy` to delete it."
        )
        return 0
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
