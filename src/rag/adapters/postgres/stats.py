"""System-wide counts for operators (AdminService.GetStats, metrics gauges)."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import ConnectionPool


@dataclass(frozen=True)
class SystemStats:
    documents_by_status: dict[str, int]
    chunks: int
    queries: int
    queries_last_24h: int
    cache_hit_rate: float
    embedding_model_version: str


def system_stats(pool: ConnectionPool) -> SystemStats:
    with pool.connection() as conn:
        rows = conn.execute("SELECT status::text, count(*) FROM documents GROUP BY status").fetchall()
        by_status: dict[str, int] = {str(k): int(v) for k, v in rows}
        row = conn.execute(
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
        documents_by_status={str(k): int(v) for k, v in by_status.items()},
        chunks=int(row[0]),
        queries=int(row[1]),
        queries_last_24h=int(row[2]),
        cache_hit_rate=float(row[3]),
        embedding_model_version=str(row[4] or ""),
    )
