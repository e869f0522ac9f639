"""``query_history`` rows, written off the request path.

A search answered from the cache takes about a millisecond; one INSERT round trip through a
worker thread would be most of it. Once started, the writer queues records and a background task
writes them in batches (one transaction, one pipelined ``executemany``, synchronous_commit off:
history is telemetry) every ``flush_interval_s`` or ``max_batch`` records. ``close`` writes what
is queued. Not started, ``record`` writes at once (Airflow tasks, tests, scripts).

The queue is bounded: when PostgreSQL cannot keep up, records beyond ``max_pending`` are dropped
and counted in ``rag_query_history_dropped_total`` (with a warning), so history can never hold up
or exhaust the memory of the searches it describes. A failed batch is retried once, then dropped
and counted the same way.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import astuple

from prometheus_client import Counter
from psycopg_pool import ConnectionPool

from rag.core.search import QueryRecord

log = logging.getLogger(__name__)

DROPPED = Counter(
    "rag_query_history_dropped_total", "query_history rows not written (queue full or write failed)"
)
WRITTEN = Counter("rag_query_history_written_total", "query_history rows written")

_INSERT = """
INSERT INTO query_history (tenant, username, request_id, kind, query, top_k, result_count,
                           latency_ms, cache_hit, embedding_model_version, status)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


class QueryHistory:
    def __init__(
        self,
        pool: ConnectionPool,
        *,
        max_batch: int = 500,
        flush_interval_s: float = 0.2,
        max_pending: int = 10_000,
    ) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._flush_interval_s = flush_interval_s
        self._queue: asyncio.Queue[QueryRecord] = asyncio.Queue(maxsize=max_pending)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._dropped_warned = False

    def write(self, records: list[QueryRecord]) -> None:
        """Insert ``records`` now, in one transaction (blocking)."""
        if not records:
            return
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = off")
            with conn.cursor() as cur:
                cur.executemany(_INSERT, [astuple(r) for r in records])
        WRITTEN.inc(len(records))

    async def record(self, record: QueryRecord) -> None:
        if self._task is None:
            await asyncio.to_thread(self.write, [record])
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            DROPPED.inc()
            if not self._dropped_warned:
                log.warning("query_history queue full (%d rows): dropping rows", self._queue.maxsize)
                self._dropped_warned = True

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="query-history-writer")

    async def close(self) -> None:
        """Stop the writer and write everything still queued."""
        if self._task is None:
            return
        self._stopping = True
        await self._task  # it notices within flush_interval_s; never cancelled mid-write
        self._task = None
        await self._flush(self._drain())

    def _drain(self) -> list[QueryRecord]:
        batch: list[QueryRecord] = []
        while len(batch) < self._max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return batch

    async def _run(self) -> None:
        while not self._stopping:
            try:
                first = await asyncio.wait_for(self._queue.get(), self._flush_interval_s)
            except TimeoutError:
                continue
            if self._queue.qsize() < self._max_batch - 1:
                await asyncio.sleep(self._flush_interval_s)  # let a batch gather
            await self._flush([first, *self._drain()])

    async def _flush(self, batch: list[QueryRecord]) -> None:
        while batch:
            for attempt in (1, 2):
                try:
                    await asyncio.to_thread(self.write, batch)
                    self._dropped_warned = False
                    break
                except Exception as exc:  # the database is down or rejected the batch
                    if attempt == 2:
                        DROPPED.inc(len(batch))
                        log.warning("could not write %d query_history rows: %s", len(batch), exc)
                    else:
                        await asyncio.sleep(self._flush_interval_s)
            batch = self._drain() if self._task is None else []
