"""Delete what is older than a retention window (AdminService.SystemCleanup, maintenance)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from psycopg import sql
from psycopg_pool import ConnectionPool

from rag.adapters.objectstore import BlobStore
from rag.adapters.postgres.documents import DocumentRepository
from rag.core.documents import DocumentStatus
from rag.core.errors import InvalidInput
from rag.settings import Settings

log = logging.getLogger(__name__)


def cleanup_older_than(
    pool: ConnectionPool, blobs: BlobStore, settings: Settings, days: int
) -> dict[str, int]:
    """Remove query history and quarantined documents older than ``days``; returns counts.

    Whole monthly partitions that end before the cutoff are dropped (cheap, no bloat); rows in
    the partition that straddles the cutoff and in the default partition are deleted. A
    quarantined document's blob goes too unless another document of its tenant shares it, and so
    do uploads a crash cut off (staged in object storage) before the cutoff.
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
        old = conn.execute(
            "SELECT id FROM documents"
            " WHERE status = 'quarantined' AND updated_at < now() - make_interval(days => %s)",
            (days,),
        ).fetchall()

    def drop_blob(key: str) -> None:
        blobs.delete(settings.S3_BUCKET_DOCUMENTS, key)
        removed["blobs"] += 1

    # Under the blobs' locks, like DeleteDocument: an upload of the same bytes keeps its blob.
    gone = DocumentRepository(pool).delete(
        [doc_id for (doc_id,) in old], status=DocumentStatus.QUARANTINED, drop_blob=drop_blob
    )
    removed["quarantined_documents"] = len(gone)
    # Uploads cut off by a crashed API process (each live upload removes its own staging).
    cutoff = datetime.now(UTC) - timedelta(days=days)
    removed["staged_uploads"] = blobs.discard_staged_before(settings.S3_BUCKET_DOCUMENTS, cutoff)
    log.info("cleanup older than %d days: %s", days, removed)
    return removed
