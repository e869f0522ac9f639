"""System-wide counts for operators (AdminService.GetStats); the metrics gauges read theirs
through :mod:`rag.adapters.postgres.state`."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from rag.adapters.postgres.documents import count_by_status


@dataclass(frozen=True)
class SystemStats:
    documents_by_status: dict[str, int]
    chunks: int
    queries: int
    queries_last_24h: int
    cache_hit_rate: float
    embedding_model_version: str


def system_stats(pool: ConnectionPool) -> SystemStats:
    with pool.connection() as conn, conn.cursor() as cur:
        by_status = count_by_status(cur)
        row = cur.execute(
            """
            SELECT (SELECT count(*) FROM chunks c JOIN embedding_indexes e
                      ON e.model_version = c.embedding_model_version AND e.status = 'active'),
                   (SELECT count(*) FROM query_history),
                   (SELECT count(*) FROM query_history WHERE created_at > now() - interval '24 hours'),
                   (SELECT coalesce(avg(cache_hit::int), 0) FROM query_history
                     WHERE created_at > now() - interval '24 hours'),
                   (SELECT model_version FROM embedding_indexes WHERE status = 'active')
            """
        ).fetchone()
    assert row is not None
    return SystemStats(
        documents_by_status=by_status,
        chunks=int(row[0]),
        queries=int(row[1]),
        queries_last_24h=int(row[2]),
        cache_hit_rate=float(row[3]),
        embedding_model_version=str(row[4] or ""),
    )
