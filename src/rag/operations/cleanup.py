"""Delete what is older than a retention window (AdminService.SystemCleanup, maintenance)."""

from __future__ import annotations

import logging

from psycopg import sql
from psycopg_pool import ConnectionPool

from rag.adapters.objectstore import BlobStore
from rag.core.errors import InvalidInput
from rag.settings import Settings

log = logging.getLogger(__name__)


def cleanup_older_than(
    pool: ConnectionPool, blobs: BlobStore, settings: Settings, days: int
) -> dict[str, int]:
    """Remove query history and quarantined documents older than ``days``; returns counts.

    Whole monthly partitions that end before the cutoff are dropped (cheap, no bloat); rows in
    the partition that straddles the cutoff and in the default partition are deleted. A
    quarantined document's blob goes too unless another document of its tenant shares it.
    """
    if days < 1:
        raise InvalidInput("must be at least 1", field="days_old")
    removed = {"query_history_rows": 0, "query_history_partitions": 0, "quarantined_documents": 0, "blobs": 0}
    with pool.connection() as conn:
        partitions = conn.execute(
            """
            SELECT c.relname FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'query_history'::regclass
              AND c.relname ~ '^query_history_y[0-9]{4}m[0-9]{2}$'
              AND (to_date(substring(c.relname from 16 for 4) || substring(c.relname from 21 for 2), 'YYYYMM')
                   + interval '1 month') <= now() - make_interval(days => %s)
            """,
            (days,),
        ).fetchall()
        for (name,) in partitions:
            with conn.transaction():
                count = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
                ).fetchone()
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
            removed["query_history_partitions"] += 1
            removed["query_history_rows"] += int(count[0]) if count else 0
        deleted = conn.execute(
            "DELETE FROM query_history WHERE created_at < now() - make_interval(days => %s)", (days,)
        )
        removed["query_history_rows"] += deleted.rowcount
        gone = conn.execute(
            """
            DELETE FROM documents
            WHERE status = 'quarantined' AND updated_at < now() - make_interval(days => %s)
            RETURNING tenant, blob_key
            """,
            (days,),
        ).fetchall()
        removed["quarantined_documents"] = len(gone)
        for tenant, blob_key in gone:
            if not blob_key:
                continue
            shared = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM documents WHERE tenant = %s AND blob_key = %s)",
                (tenant, blob_key),
            ).fetchone()
            if not (shared and shared[0]):
                blobs.delete(settings.S3_BUCKET_DOCUMENTS, blob_key)
                removed["blobs"] += 1
    log.info("cleanup older than %d days: %s", days, removed)
    return removed
