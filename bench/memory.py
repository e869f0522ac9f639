"""Memory: PSS of each stack component (its whole process tree), idle and under search load.

PSS (proportional set size) splits shared pages between the processes that share them, so the
components add up to what the stack really uses. The load is the latency benchmark's uncached
hybrid search at 8 concurrent clients; the peak of samples taken during it is reported.

    python -m bench.memory [--requests 200]
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from pathlib import Path

from bench import beir, report
from bench.latency import case_variant, load
from bench.quality import ingested_target
from bench.target import stack_parser

MIB = 2**20


def main(argv: list[str] | None = None) -> int:
    parser = stack_parser("bench.memory", __doc__, data_help="BEIR folder for the corpus and queries")
    parser.add_argument("--requests", type=int, default=200, help="searches sent during the load")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    _, target, tenant = ingested_target(args)
    idle = target.stack.memory()

    rng = random.Random(time.time_ns())
    pool = list(beir.all_queries(args.data).values())
    texts = [case_variant(pool[i % len(pool)], rng) for i in range(args.requests)]
    peak: dict[str, int] = dict.fromkeys(idle, 0)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for name, size in target.stack.memory().items():
                peak[name] = max(peak.get(name, 0), size)
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    latencies, elapsed, errors = asyncio.run(load(target, tenant, texts, args.concurrency))
    done.set()
    sampler.join()

    rows = []
    for name in sorted(set(idle) | set(peak)):
        before, during = idle.get(name, 0), peak.get(name, 0)
        rows.append([name, f"{before / MIB:.0f}", f"{during / MIB:.0f}", report.ratio(during, before)])
    rows.append(
        [
            "total",
            f"{sum(idle.values()) / MIB:.0f}",
            f"{sum(peak.values()) / MIB:.0f}",
            report.ratio(sum(peak.values()), sum(idle.values())),
        ]
    )
    title = (
        f"Memory: PSS per component (MiB), idle and peak under {args.concurrency}-client search load"
        f" ({len(latencies) / elapsed:.1f} queries/s, {errors} errors); {report.load_now()}"
    )
    print(report.table(title, ["component", "idle MiB", "load MiB", "load/idle"], rows))
    path = report.save(
        "memory",
        {"idle_bytes": idle, "load_peak_bytes": peak, "load": {"requests": len(texts), "errors": errors}},
        args.results,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
