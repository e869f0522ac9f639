"""Admission control under overload: gRPC Search at capacity and at 4x capacity.

Starts its own API process (``python -m grpc_services``) on the stack's data with
``SEARCH_MAX_CONCURRENT`` set to the capacity under test, in a tenant of its own holding a
slice of SciFact, and sends hybrid top-10 searches with a new query text each (no cache hits):

- capacity: ``capacity`` closed-loop clients, as many as the bound: p50/p99 and queries/s
  (for ``--seconds``, like each 4x phase: a longer window meets more of the shared cores' spikes);
- 4x clients: four times as many closed-loop clients as the bound; a refused client waits the
  retry hint (``grpc-retry-pushback-ms``), as a well-behaved client does;
- 4x rate: open loop, requests sent at 4x the queries/s measured at capacity, each once (a
  refused request is not retried), the harsher case: every refusal costs the server a call;
- unbounded: the same server without a bound, closed-loop clients at each of ``--levels``
  (where p50 leaves the unloaded value is the capacity: how ``SEARCH_MAX_CONCURRENT``'s default
  was chosen); with ``--unbounded-4x`` the 4x rate too, for comparison (its queue grows in
  Triton and PostgreSQL until requests time out: not on a stack others are using).

Each row: p50/p99 of the admitted requests, refusals and timeouts.

Target (issue 13): at 4x, admitted p99 <= 3x the p50 at capacity, and no timeouts. The numbers
go with the load average: the cores are shared.

    python -m bench.overload [--capacity 4] [--seconds 20] [--levels 1,2,4,8]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import beir, report
from bench.latency import case_variant
from bench.target import Target, connect, stack_parser
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Principal, Role
from rag.proto.rag.v1 import search_pb2, search_pb2_grpc
from rag.stack.process import free_port
from rag.stack.secrets import read_env_file

TOP_K = 10
TENANT = "bench-overload"
DEADLINE_S = 10.0
USERS = 64  # requests rotate over this many users: the per-user rate limit stays out of the way
TARGET_P99_OVER_P50 = 3.0


@dataclass
class Outcomes:
    latencies_s: list[float] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    def row(self) -> dict[str, Any]:
        return report.percentiles(self.latencies_s) | {
            "admitted": len(self.latencies_s),
            "refused": self.codes.get("RESOURCE_EXHAUSTED", 0),
            "timeouts": self.codes.get("DEADLINE_EXCEEDED", 0),
            "other_errors": sum(n for code, n in self.codes.items() if code not in _COUNTED),
            "qps": len(self.latencies_s) / self.elapsed_s if self.elapsed_s else 0.0,
            "codes": dict(self.codes),
        }


_COUNTED = {"OK", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}


def ensure_tenant(target: Target, data: Path, documents: int) -> None:
    """The first ``documents`` SciFact abstracts in the bench's own tenant (idempotent)."""
    from bench.indexing import ingest_texts, ingestion

    dataset = beir.load(data)
    ids = sorted(dataset.corpus)[:documents]
    with ingestion(target.settings) as ingest:
        counts = ingest.documents.counts_by_status(tenant=TENANT)
        if counts.get("indexed", 0) + counts.get("quarantined", 0) >= len(ids):
            print(f"reusing tenant {TENANT} ({counts.get('indexed', 0)} documents indexed)", flush=True)
            return
        print(f"ingesting {len(ids)} documents into tenant {TENANT} ...", flush=True)
        items = [(f"beir://{dataset.name}/{d}.txt", dataset.document_text(d)) for d in ids]
        run = ingest_texts(items, tenant=TENANT, ingestion=ingest, batch=64)
        print(f"ingested: {run.indexed} indexed, {run.quarantined} quarantined", flush=True)


@contextlib.contextmanager
def api_server(target: Target, search_max_concurrent: int) -> Iterator[str]:
    """An API process on the stack's data with ``SEARCH_MAX_CONCURRENT`` set; its address."""
    port = free_port()
    env = os.environ | read_env_file(target.stack.env_path)
    env |= {
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(port),
        "PROMETHEUS_ENABLED": "false",
        "SEARCH_MAX_CONCURRENT": str(search_max_concurrent),
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "grpc_services"], env=env)
    address = f"127.0.0.1:{port}"
    try:
        asyncio.run(_wait_serving(address, process))
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _wait_serving(address: str, process: subprocess.Popen[bytes], timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the API process exited with {process.returncode} before serving")
            with contextlib.suppress(grpc.aio.AioRpcError):
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.5)
    raise SystemExit(f"the API on {address} was not SERVING within {timeout_s:.0f} s")


class Searcher:
    """Sends searches with a fresh query text each, over one channel, rotating users."""

    def __init__(self, target: Target, address: str, texts: list[str]) -> None:
        tokens = JwtTokens.from_settings(target.settings)
        run = os.urandom(4).hex()
        self._metadata = [
            [
                (
                    "authorization",
                    f"Bearer {tokens.issue_access(Principal.of(f'ovl-{run}-{n}', TENANT, Role.USER)).token}",
                )
            ]
            for n in range(USERS)
        ]
        self._texts = texts
        self._rng = random.Random(time.time_ns())
        self._sent = 0
        self.address = address

    async def one(self, stub: Any, out: Outcomes) -> float:
        """One search; the retry hint in seconds when refused, else 0."""
        n = self._sent
        self._sent += 1
        text = case_variant(self._texts[n % len(self._texts)], self._rng)
        request = search_pb2.SearchRequest(query=text, top_k=TOP_K, mode=search_pb2.SEARCH_MODE_HYBRID)
        began = time.perf_counter()
        try:
            await stub.Search(request, metadata=self._metadata[n % USERS], timeout=DEADLINE_S)
        except grpc.aio.AioRpcError as exc:
            out.codes[exc.code().name] += 1
            pushback = dict(exc.trailing_metadata() or ()).get("grpc-retry-pushback-ms", "0")
            return int(pushback) / 1000
        out.latencies_s.append(time.perf_counter() - began)
        out.codes["OK"] += 1
        return 0.0

    async def closed_loop(self, clients: int, requests: int, *, seconds: float | None = None) -> Outcomes:
        """``clients`` each sending its next search when the last came back, ``requests`` in all
        (or for ``seconds``); a refused client waits the retry hint (x1-1.5, against herds)."""
        out = Outcomes()
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = cast(Any, search_pb2_grpc.SearchServiceStub(channel))
            left = requests
            until = time.perf_counter() + seconds if seconds is not None else None

            async def client() -> None:
                nonlocal left
                while (left > 0) if until is None else (time.perf_counter() < until):
                    left -= 1
                    if wait := await self.one(stub, out):
                        await asyncio.sleep(wait * self._rng.uniform(1.0, 1.5))

            began = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(clients)))
            out.elapsed_s = time.perf_counter() - began
        return out

    async def open_loop(self, rate: float, seconds: float) -> Outcomes:
        """``rate`` requests/s for ``seconds``, each sent on schedule whatever came back."""
        out = Outcomes()
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = cast(Any, search_pb2_grpc.SearchServiceStub(channel))
            tasks: list[asyncio.Task[float]] = []
            began = time.perf_counter()
            for i in range(int(rate * seconds)):
                delay = began + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self.one(stub, out)))
            await asyncio.gather(*tasks)
            out.elapsed_s = time.perf_counter() - began
        return out


def main(argv: list[str] | None = None) -> int:
    parser = stack_parser("bench.overload", __doc__, data_help="BEIR folder (SciFact)")
    parser.add_argument("--documents", type=int, default=300, help="abstracts in the bench's tenant")
    parser.add_argument("--capacity", type=int, default=None, help="default: the API's SEARCH_MAX_CONCURRENT")
    parser.add_argument("--levels", default="1,2,4,8", help="closed-loop levels without a bound ('' skips)")
    parser.add_argument("--requests", type=int, default=48, help="requests per closed-loop level")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the 4x open-loop phase")
    parser.add_argument(
        "--unbounded-4x", action="store_true", help="also send the 4x rate to the server without a bound"
    )
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    target = connect(args.state_dir, start=args.start)
    capacity = args.capacity or target.settings.SEARCH_MAX_CONCURRENT
    ensure_tenant(target, args.data, args.documents)
    texts = list(beir.all_queries(args.data).values())
    header = [
        "phase",
        "clients/rate",
        "admitted",
        "p50 ms",
        "p99 ms",
        "queries/s",
        "refused",
        "timeouts",
        "other",
    ]
    rows: list[list[Any]] = []
    payload: dict[str, Any] = {"tenant": TENANT, "capacity": capacity, "deadline_s": DEADLINE_S}

    def add(phase: str, load: str, outcome: Outcomes) -> dict[str, Any]:
        stats = outcome.row()
        rows.append(
            [phase, load]
            + [
                stats[k]
                for k in ("admitted", "p50_ms", "p99_ms", "qps", "refused", "timeouts", "other_errors")
            ]
        )
        return stats

    with api_server(target, capacity) as address:
        searcher = Searcher(target, address, texts)
        asyncio.run(searcher.closed_loop(2, 8))  # warm up the channel, pools and models
        at_capacity = add(
            "capacity",
            f"{capacity} clients",
            asyncio.run(searcher.closed_loop(capacity, 0, seconds=args.seconds)),
        )
        clients = add(
            "4x clients",
            f"{4 * capacity} clients",
            asyncio.run(searcher.closed_loop(4 * capacity, 0, seconds=args.seconds)),
        )
        rate = 4 * at_capacity["qps"]
        overloaded = add("4x rate", f"{rate:.1f} req/s", asyncio.run(searcher.open_loop(rate, args.seconds)))
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if levels:
        # The same server without a bound: where p50 leaves its unloaded value.
        with api_server(target, 10_000) as address:
            searcher = Searcher(target, address, texts)
            asyncio.run(searcher.closed_loop(2, 8))
            payload["levels"] = [
                {"clients": level}
                | add(
                    "unbounded", f"{level} clients", asyncio.run(searcher.closed_loop(level, args.requests))
                )
                for level in levels
            ]
            if args.unbounded_4x:
                payload["unbounded_4x_rate"] = add(
                    "unbounded 4x rate",
                    f"{rate:.1f} req/s",
                    asyncio.run(searcher.open_loop(rate, args.seconds)),
                )
    payload |= {
        "at_capacity": at_capacity,
        "at_4x_clients": clients,
        "at_4x_rate": overloaded,
        "rate_4x": rate,
    }
    checks: dict[str, Any] = {}
    for name, row in (("clients", clients), ("rate", overloaded)):
        ratio = row["p99_ms"] / at_capacity["p50_ms"] if at_capacity["p50_ms"] else None
        met = ratio is not None and ratio <= TARGET_P99_OVER_P50 and row["timeouts"] == 0
        checks[name] = {"p99_over_p50_at_capacity": ratio, "timeouts": row["timeouts"], "target_met": met}
    payload["checks"] = checks
    title = (
        f"Overload: gRPC hybrid top-{TOP_K} Search, SEARCH_MAX_CONCURRENT={capacity}, deadline"
        f" {DEADLINE_S:g} s; {report.load_now()}"
    )
    print(report.table(title, header, rows))
    for name, check in checks.items():
        print(
            f"4x {name}: admitted p99 = {check['p99_over_p50_at_capacity'] or 0:.2f}x p50 at capacity,"
            f" {check['timeouts']} timeouts (target <= {TARGET_P99_OVER_P50:g}x and none:"
            f" {report.verdict(check['target_met'])})"
        )
    path = report.save("overload", payload, args.results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
