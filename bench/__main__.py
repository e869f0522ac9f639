"""Run every benchmark against the local stack: ``python -m bench`` (what ``make bench`` runs).

Each prints its table with ratios against its floor and writes JSON to bench/results/:

    quality     nDCG@10 / Recall@100 / MRR@10 on a BEIR folder through gRPC Search
    ingestion   documents/s and chunks/s of the ingestion pipeline vs in-process embedding
    latency     gRPC Search p50/p95/p99 and queries/s, uncached and cached, vs in-process
    generation  time to first token and ms/token, GenerateStream vs Triton directly
    memory      PSS per stack component, idle and under search load
    overload    Search p50/p99, refusals and timeouts at capacity and at 4x (admission control)
    pg_access   PostgreSQL from an asyncio loop: async pool vs sync pool in threads, p50/p99

Opt-in, never part of the default list because it kills stack components (run it on a stack of
your own): ``--only faults`` (bench.faults, the fault matrix of issue 13).

    python -m bench --start                 # start the stack if it is down, run everything
    python -m bench --only quality,latency  # a subset
    python -m bench.quality --help          # each benchmark alone, with its own options
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

from bench import beir

BENCHMARKS = ("quality", "ingestion", "latency", "generation", "memory", "overload", "pg_access")
OPT_IN = ("faults",)  # kills components: only when named in --only


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=None, help="the stack's state directory")
    parser.add_argument("--start", action="store_true", help="start the stack when it is not running")
    parser.add_argument(
        "--data", type=Path, default=None, help=f"BEIR folder (default: ${beir.DATA_ENV} or shared SciFact)"
    )
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated benchmarks to run (default: all but {', '.join(OPT_IN)})",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS) - set(OPT_IN))
    if unknown:
        parser.error(
            f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS + OPT_IN)}"
        )
    common = (["--state-dir", str(args.state_dir)] if args.state_dir else []) + (
        ["--start"] if args.start else []
    )
    if args.data:
        os.environ[beir.DATA_ENV] = str(args.data.resolve())  # read when each benchmark is imported
    failed = []
    for name in chosen:
        print(f"\n=== bench.{name} ===", flush=True)
        began = time.perf_counter()
        try:
            code = importlib.import_module(f"bench.{name}").main(common)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            if exc.code and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
        except Exception:
            traceback.print_exc()
            code = 1
        print(f"(bench.{name}: {time.perf_counter() - began:.0f} s, exit {code})", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
