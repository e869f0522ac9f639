"""Delete what is older than a retention window (AdminService.SystemCleanup, maintenance)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from psycopg_pool import ConnectionPool

from rag.adapters.objectstore import BlobStore
from rag.adapters.postgres.documents import DocumentRepository
from rag.adapters.postgres.housekeeping import delete_query_history_before
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
    history = delete_query_history_before(pool, days=days)
    removed = {
        "query_history_rows": history.rows,
        "query_history_partitions": history.partitions,
        "quarantined_documents": 0,
        "blobs": 0,
    }
    documents = DocumentRepository(pool)
    old = documents.quarantined_before(days=days)

    def drop_blob(key: str) -> None:
        blobs.delete(settings.S3_BUCKET_DOCUMENTS, key)
        removed["blobs"] += 1

    # Under the blobs' locks, like DeleteDocument: an upload of the same bytes keeps its blob.
    gone = documents.delete(old, status=DocumentStatus.QUARANTINED, drop_blob=drop_blob)
    removed["quarantined_documents"] = len(gone)
    # Uploads cut off by a crashed API process (each live upload removes its own staging).
    cutoff = datetime.now(UTC) - timedelta(days=days)
    removed["staged_uploads"] = blobs.discard_staged_before(settings.S3_BUCKET_DOCUMENTS, cutoff)
    log.info("cleanup older than %d days: %s", days, removed)
    return removed
