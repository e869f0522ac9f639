"""PostgreSQL from the API process: async (psycopg's async pool) or sync in worker threads.

The same two statements run both ways, through the product's blocking pool (``create_pool``)
and through psycopg's async pool with the same connection settings: a search-like query (a
tenant's 10 nearest chunks by cosine distance) and a get-by-id (one document row of a
tenant). Each way runs them from an asyncio loop, as the gRPC
servicers do: ``await`` on an async connection, or ``asyncio.to_thread`` around a blocking one,
with 1 and 8 concurrent callers. The sync pool is measured as a transactional pool (BEGIN and
COMMIT around each checkout, like the async pool) and as an autocommit one.

The data lives in a tenant of its own (``bench-pg-<random>``): documents with 10 chunks each and
random unit vectors, deleted at the end (also after a failure).

    python -m bench.pg_access [--requests 400] [--documents 100]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from pgvector.psycopg import register_vector_async
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from bench import report
from bench.target import add_arguments, connect
from rag.adapters.postgres.pool import application_name, create_pool
from rag.core.documents import EMBEDDING_DIMENSION
from rag.settings import Settings

CHUNKS_PER_DOCUMENT = 10
VERSION = "bench-pg-access"
CONCURRENCY = (1, 8)

SEARCH = """
    SELECT c.id, c.embedding <=> %(vector)s AS distance FROM chunks c
    WHERE c.tenant = %(tenant)s AND c.embedding_model_version = %(version)s
    ORDER BY c.embedding <=> %(vector)s LIMIT 10
"""
GET = """
    SELECT id, tenant, source_uri, title, status, size_bytes, created_at, updated_at
    FROM documents WHERE id = %(id)s AND tenant = %(tenant)s
"""

Call = Callable[[str, dict[str, Any]], Awaitable[int]]


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    vectors = rng.standard_normal((n, EMBEDDING_DIMENSION)).astype(np.float32)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


@contextmanager
def bench_tenant(pool: ConnectionPool, documents: int, seed: int) -> Iterator[tuple[str, list[uuid.UUID]]]:
    """A tenant of its own with ``documents`` documents of 10 chunks each; deleted on exit."""
    tenant = f"bench-pg-{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(seed)
    ids = [uuid.uuid4() for _ in range(documents)]
    try:
        with pool.connection() as conn:
            for number, doc_id in enumerate(ids):
                conn.execute(
                    "INSERT INTO documents (id, tenant, source_uri, title, content_hash, size_bytes,"
                    " status, embedding_model_version) VALUES (%s, %s, %s, %s, %s, %s, 'indexed', %s)",
                    (
                        doc_id,
                        tenant,
                        f"bench://pg-access/{number}",
                        f"document {number}",
                        hashlib.sha256(doc_id.bytes).hexdigest(),
                        1000,
                        VERSION,
                    ),
                )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO chunks (document_id, tenant, ordinal, text, char_start, char_end,"
                    " token_count, embedding, embedding_model_version)"
                    " VALUES (%s, %s, %s, %s, 0, 10, 3, %s, %s)",
                    [
                        (doc_id, tenant, ordinal, f"chunk {ordinal} of {doc_id}", vector, VERSION)
                        for doc_id in ids
                        for ordinal, vector in enumerate(_unit_vectors(rng, CHUNKS_PER_DOCUMENT))
                    ],
                )
        yield tenant, ids
    finally:
        with pool.connection() as conn:
            conn.execute("DELETE FROM documents WHERE tenant = %s", (tenant,))  # chunks cascade


async def open_async_pool(settings: Settings, size: int) -> AsyncConnectionPool:
    """psycopg's async pool with the product pool's connection settings: the way the API no
    longer takes (it reaches PostgreSQL through the blocking pool in threads)."""
    pool: AsyncConnectionPool = AsyncConnectionPool(
        settings.DATABASE_URL,
        min_size=size,
        max_size=size,
        open=False,
        configure=register_vector_async,
        kwargs={
            "connect_timeout": 10,
            "options": f"-c statement_timeout={settings.DATABASE_STATEMENT_TIMEOUT_MS}",
            "application_name": application_name("bench-pg-async"),
        },
    )
    await pool.open(wait=True, timeout=settings.DATABASE_POOL_TIMEOUT)
    return pool


def async_call(pool: AsyncConnectionPool) -> Call:
    async def call(statement: str, params: dict[str, Any]) -> int:
        async with pool.connection() as conn:
            cursor = await conn.execute(statement, params)
            return len(await cursor.fetchall())

    return call


def thread_call(pool: ConnectionPool) -> Call:
    def blocking(statement: str, params: dict[str, Any]) -> int:
        with pool.connection() as conn:
            return len(conn.execute(statement, params).fetchall())

    async def call(statement: str, params: dict[str, Any]) -> int:
        return await asyncio.to_thread(blocking, statement, params)

    return call


async def measure(
    call: Call, statement: str, params: list[dict[str, Any]], concurrency: int
) -> tuple[list[float], float]:
    """``params`` run through ``call`` by ``concurrency`` closed-loop callers: latencies, seconds."""
    queue = list(reversed(params))
    latencies: list[float] = []

    async def caller() -> None:
        while queue:
            one = queue.pop()
            began = time.perf_counter()
            rows = await call(statement, one)
            latencies.append(time.perf_counter() - began)
            if rows == 0:
                raise RuntimeError(f"the benchmark's own data is missing: {statement.split()[0:4]}")

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies, time.perf_counter() - began


async def run(
    settings: Settings, tenant: str, ids: list[uuid.UUID], requests: int, seed: int
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    vectors = _unit_vectors(np.random.default_rng(seed + 1), requests)
    workloads = {
        "search": (SEARCH, [{"tenant": tenant, "version": VERSION, "vector": v} for v in vectors]),
        "get": (GET, [{"tenant": tenant, "id": rng.choice(ids)} for _ in range(requests)]),
    }
    size = max(CONCURRENCY)
    async_pool = await open_async_pool(settings, size)
    tx_pool = await asyncio.to_thread(create_pool, settings, min_size=size, name="bench-pg-sync")
    auto_pool = await asyncio.to_thread(
        create_pool, settings, min_size=size, name="bench-pg-sync-auto", autocommit=True
    )
    ways: dict[str, Call] = {
        "async": async_call(async_pool),
        "sync in threads": thread_call(tx_pool),
        "sync in threads, autocommit": thread_call(auto_pool),
    }
    rows: list[dict[str, Any]] = []
    try:
        await asyncio.to_thread(tx_pool.wait)
        await asyncio.to_thread(auto_pool.wait)
        for query, (statement, params) in workloads.items():
            for concurrency in CONCURRENCY:
                for way, call in ways.items():
                    await measure(call, statement, params[: 4 * size], size)  # warm plans and caches
                    latencies, elapsed = await measure(call, statement, params, concurrency)
                    rows.append(
                        {
                            "query": query,
                            "way": way,
                            "clients": concurrency,
                            **report.percentiles(latencies),
                            "qps": len(latencies) / elapsed,
                        }
                    )
    finally:
        await async_pool.close()
        await asyncio.to_thread(tx_pool.close)
        await asyncio.to_thread(auto_pool.close)
    return rows


def _vs_async(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The row's p50 as a ratio of the async way's on the same query and clients."""
    (base,) = (
        r for r in rows if (r["query"], r["clients"], r["way"]) == (row["query"], row["clients"], "async")
    )
    return report.ratio(row["p50_ms"], base["p50_ms"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_access", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--requests", type=int, default=400, help="statements per query, way and concurrency")
    parser.add_argument(
        "--documents", type=int, default=100, help="documents of the bench tenant (10 chunks each)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    target = connect(args.state_dir, start=args.start, need=("postgres",))
    with (
        create_pool(target.settings, min_size=1, name="bench-pg-data") as pool,
        bench_tenant(pool, args.documents, args.seed) as (tenant, ids),
    ):
        rows = asyncio.run(run(target.settings, tenant, ids, args.requests, args.seed))
    print(
        report.table(
            f"PostgreSQL access from an asyncio loop ({args.requests} statements each); {report.load_now()}",
            ["query", "way", "clients", "p50 ms", "p99 ms", "queries/s", "p50/async"],
            [
                [r["query"], r["way"], r["clients"], r["p50_ms"], r["p99_ms"], r["qps"], _vs_async(r, rows)]
                for r in rows
            ],
        )
    )
    path = report.save("pg_access", {"rows": rows, "documents": args.documents}, args.results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
