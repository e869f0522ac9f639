"""The system's state as PostgreSQL holds it, read in one short read-only transaction (for the
API's state metrics, grpc_services.state_metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from rag.adapters.postgres.documents import count_by_status
from rag.core.documents import TERMINAL_STATUSES as TERMINAL_STATUSES  # re-exported for the metrics
from rag.core.documents import DocumentStatus

DOCUMENT_STATUSES = tuple(s.value for s in DocumentStatus)
BACKUP_KINDS = ("database", "model_repository")

# One read-only transaction; the statement timeout keeps a slow database from holding a scrape.
STATE_QUERIES: dict[str, str | sql.Composed] = {
    "overdue": sql.SQL(
        "SELECT status::text, count(*) FROM documents WHERE deadline_at < now()"
        " AND status::text NOT IN ({}) GROUP BY status"
    ).format(sql.SQL(", ").join(sql.Literal(s.value) for s in TERMINAL_STATUSES)),
    "backups": (
        "SELECT kind, extract(epoch FROM max(finished_at))::float8 FROM backups"
        " WHERE status = 'succeeded' AND finished_at IS NOT NULL GROUP BY kind"
    ),
    "indexes": (
        "SELECT model_version, status, dimension FROM embedding_indexes"
        " WHERE status IN ('active', 'building') ORDER BY model_version"
    ),
}


@dataclass(frozen=True)
class StateSnapshot:
    documents: dict[str, int] = field(default_factory=dict)
    overdue: dict[str, int] = field(default_factory=dict)
    last_backup: dict[str, float] = field(default_factory=dict)
    indexes: tuple[tuple[str, str, int], ...] = ()


def read_state(pool: Any, timeout_s: float = 2.0) -> StateSnapshot:
    """Read a snapshot through a psycopg_pool ``ConnectionPool`` (sync: scrapes run in a thread)."""
    with pool.connection(timeout=timeout_s) as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
        cur.execute("SELECT set_config('statement_timeout', %s, true)", (str(int(timeout_s * 1000)),))
        documents = count_by_status(cur)
        rows = {}
        for name, query in STATE_QUERIES.items():
            cur.execute(query)
            rows[name] = cur.fetchall()
    return StateSnapshot(
        documents=documents,
        overdue={str(s): int(n) for s, n in rows["overdue"]},
        last_backup={str(k): float(t) for k, t in rows["backups"]},
        indexes=tuple((str(v), str(s), int(d)) for v, s, d in rows["indexes"]),
    )
