"""Documents in PostgreSQL: receiving, reading, listing, the status machine and deletion.

Every statement is scoped by tenant where a caller's tenant applies, uses bound parameters, and
is idempotent: receiving the same content is a no-op, writing a document's chunks replaces them
in one transaction, retries never duplicate rows. :class:`DocumentRepository` is the document
store port (:class:`rag.core.ports.DocumentStore`); its claims are in :mod:`.claims`, its chunk
rows in :mod:`.chunks`. The record it returns and the attempts cap are the core's
(:mod:`rag.core.documents`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from rag.adapters.postgres.chunks import DocumentChunks
from rag.adapters.postgres.claims import DocumentClaims
from rag.adapters.postgres.rows import from_row
from rag.core.documents import ADVANCES_FROM, DocumentRecord, DocumentStatus, Received
from rag.core.errors import FailedPrecondition, NotFound, Unavailable

# Advisory-lock class of blob keys (the two-int form: a key space apart from every other lock).
# Recording a document that uses a blob, and deleting a blob no document uses, hold its lock.
_BLOB_LOCKS = 0x626C6F62


def _lock_blobs(cur: psycopg.Cursor[Any], keys: Iterable[str], *, session: bool = False) -> None:
    """Take the locks of these blob keys (sorted: no deadlock), until the transaction ends or,
    with ``session``, until ``pg_advisory_unlock_all()``."""
    function = "pg_advisory_lock" if session else "pg_advisory_xact_lock"
    for key in sorted(set(keys)):
        cur.execute(f"SELECT {function}(%s, hashtext(%s))", (_BLOB_LOCKS, key))


def count_by_status(
    cur: psycopg.Cursor[Any], *, tenant: str | None = None, ids: Sequence[uuid.UUID] = ()
) -> dict[str, int]:
    """Documents per status (every status, 0 for none), optionally of one tenant or only these
    ids: the one query behind the DAGs' reports, the operators' stats and the state metrics."""
    cur.execute(
        """
        SELECT status::text, count(*) FROM documents
        WHERE (%(tenant)s::text IS NULL OR tenant = %(tenant)s)
          AND (cardinality(%(ids)s::uuid[]) = 0 OR id = ANY(%(ids)s::uuid[]))
        GROUP BY status
        """,
        {"tenant": tenant, "ids": list(ids)},
    )
    counts = {status.value: 0 for status in DocumentStatus}
    counts.update({str(status): int(n) for status, n in cur.fetchall()})
    return counts


_COLUMNS = sql.SQL(
    "id, tenant, source_uri, title, content_hash, size_bytes, mime_type, status::text AS status, "
    "error_reason, attempts, outage_retries, embedding_model_version, blob_key, metadata, deadline_at, "
    "created_at, updated_at"
)


def _record(row: dict[str, Any]) -> DocumentRecord:
    return from_row(
        DocumentRecord, row, status=DocumentStatus(row["status"]), metadata=dict(row["metadata"] or {})
    )


class DocumentRepository(DocumentClaims, DocumentChunks):
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    # -- intake ---------------------------------------------------------------------------------
    def receive(
        self,
        *,
        tenant: str,
        source_uri: str,
        title: str,
        content_hash: str,
        size_bytes: int,
        mime_type: str,
        blob_key: str,
        metadata: dict[str, str],
        deadline_s: float,
        store_blob: Callable[[], None] | None = None,
    ) -> Received:
        """Record a document as ``received``; unchanged content (same hash) changes nothing.

        ``store_blob`` puts the bytes under ``blob_key`` (when they are not there yet); it runs
        under the blob's lock, which is held until the document is recorded: a :meth:`delete`
        that would drop the blob either finished before (``store_blob`` puts it back) or sees
        this document and keeps it. If it raises, nothing is recorded.
        """
        with self.pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            _lock_blobs(cur, [blob_key])
            if store_blob is not None:
                store_blob()
            cur.execute(
                sql.SQL("""
                INSERT INTO documents (tenant, source_uri, title, content_hash, size_bytes, mime_type,
                                       blob_key, metadata, deadline_at, status)
                VALUES (%(tenant)s, %(source_uri)s, %(title)s, %(hash)s, %(size)s, %(mime)s, %(blob)s,
                        %(metadata)s, now() + make_interval(secs => %(deadline)s), 'received')
                ON CONFLICT (tenant, source_uri) DO UPDATE SET
                    title = EXCLUDED.title, content_hash = EXCLUDED.content_hash,
                    size_bytes = EXCLUDED.size_bytes, mime_type = EXCLUDED.mime_type,
                    blob_key = EXCLUDED.blob_key, metadata = EXCLUDED.metadata,
                    deadline_at = EXCLUDED.deadline_at, status = 'received',
                    error_reason = NULL, attempts = 0, outage_retries = 0, claimed_until = NULL
                WHERE documents.content_hash <> EXCLUDED.content_hash
                RETURNING {cols}
                """).format(cols=_COLUMNS),
                {
                    "tenant": tenant,
                    "source_uri": source_uri,
                    "title": title,
                    "hash": content_hash,
                    "size": size_bytes,
                    "mime": mime_type,
                    "blob": blob_key,
                    "metadata": json.dumps(metadata),
                    "deadline": deadline_s,
                },
            )
            row = cur.fetchone()
            if row is not None:
                return Received(_record(row), changed=True)
            cur.execute(
                sql.SQL("SELECT {cols} FROM documents WHERE tenant = %s AND source_uri = %s").format(
                    cols=_COLUMNS
                ),
                (tenant, source_uri),
            )
            existing = cur.fetchone()
            assert existing is not None
            return Received(_record(existing), changed=False)

    # -- reads ----------------------------------------------------------------------------------
    def get(self, document_id: uuid.UUID, *, tenant: str | None = None) -> DocumentRecord:
        """One document; with ``tenant``, another tenant's document is NotFound (no leak)."""
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                sql.SQL(
                    "SELECT {cols} FROM documents WHERE id = %s AND (%s::text IS NULL OR tenant = %s)"
                ).format(cols=_COLUMNS),
                (document_id, tenant, tenant),
            )
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"document {document_id} does not exist")
        return _record(row)

    def list_documents(
        self,
        *,
        tenant: str,
        statuses: Sequence[DocumentStatus] = (),
        limit: int = 50,
        after: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[DocumentRecord]:
        """Newest first, keyset-paginated on (created_at, id)."""
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                sql.SQL("""
                SELECT {cols} FROM documents
                WHERE tenant = %(tenant)s
                  AND (cardinality(%(statuses)s::text[]) = 0 OR status::text = ANY(%(statuses)s::text[]))
                  AND (%(after_ts)s::timestamptz IS NULL
                       OR (created_at, id) < (%(after_ts)s, %(after_id)s::uuid))
                ORDER BY created_at DESC, id DESC
                LIMIT %(limit)s
                """).format(cols=_COLUMNS),
                {
                    "tenant": tenant,
                    "statuses": [s.value for s in statuses],
                    "after_ts": after[0] if after else None,
                    "after_id": after[1] if after else None,
                    "limit": limit,
                },
            )
            return [_record(r) for r in cur.fetchall()]

    def pending(
        self, *, tenant: str | None = None, ids: Sequence[uuid.UUID] = (), limit: int = 10_000
    ) -> list[uuid.UUID]:
        """Documents waiting for the pipeline (``received``), optionally only these ids."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                """
                SELECT id FROM documents
                WHERE status = 'received'
                  AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s)
                  AND (cardinality(%(ids)s::uuid[]) = 0 OR id = ANY(%(ids)s::uuid[]))
                ORDER BY created_at, id LIMIT %(limit)s
                """,
                {"tenant": tenant, "ids": list(ids), "limit": limit},
            ).fetchall()
        return [r[0] for r in rows]

    def counts_by_status(self, *, tenant: str | None = None, ids: Sequence[uuid.UUID] = ()) -> dict[str, int]:
        with self.pool.connection() as conn, conn.cursor() as cur:
            return count_by_status(cur, tenant=tenant, ids=ids)

    def quarantined_before(self, *, days: int) -> list[uuid.UUID]:
        """Documents quarantined (last changed) more than ``days`` ago: what cleanup removes."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT id FROM documents"
                " WHERE status = 'quarantined' AND updated_at < now() - make_interval(days => %s)",
                (days,),
            ).fetchall()
        return [r[0] for r in rows]

    def source_uris(self, *, tenant: str, prefix: str) -> dict[str, uuid.UUID]:
        """Documents of a tenant whose source starts with ``prefix`` (to find deleted sources)."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT source_uri, id FROM documents WHERE tenant = %s AND starts_with(source_uri, %s)",
                (tenant, prefix),
            ).fetchall()
        return {uri: doc_id for uri, doc_id in rows}

    # -- the status machine ---------------------------------------------------------------------
    def advance(
        self,
        document_id: uuid.UUID,
        target: DocumentStatus,
        *,
        reason: str | None = None,
        title: str | None = None,
    ) -> None:
        """Move a document forward; refuse a transition the status machine does not allow.

        ``title`` fills in the title of a document that was received without one.
        """
        if target is DocumentStatus.QUARANTINED and not reason:
            raise FailedPrecondition("a quarantined document needs a reason")
        with self.pool.connection() as conn:
            cur = conn.execute(
                """
                UPDATE documents SET status = %(target)s::document_status,
                       error_reason = CASE WHEN %(target)s = 'quarantined' THEN %(reason)s ELSE NULL END,
                       title = coalesce(nullif(title, ''), %(title)s::text, title)
                WHERE id = %(id)s AND status::text = ANY(%(from)s::text[])
                """,
                {
                    "target": target.value,
                    "reason": reason,
                    "title": title[:500] if title else None,
                    "id": document_id,
                    "from": [s.value for s in ADVANCES_FROM.get(target, ())],
                },
            )
            if cur.rowcount != 1:
                raise FailedPrecondition(
                    f"document {document_id} cannot move to {target} from its current status"
                )

    def quarantine(self, document_id: uuid.UUID, reason: str) -> None:
        self.advance(document_id, DocumentStatus.QUARANTINED, reason=reason[:2000])

    def unfinished(self, document_ids: Sequence[uuid.UUID]) -> list[DocumentRecord]:
        """Those of ``document_ids`` that are neither ``indexed`` nor ``quarantined`` (deleted
        ones are finished), oldest first: what a run that took them on has not done."""
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                sql.SQL(
                    "SELECT {cols} FROM documents WHERE id = ANY(%s::uuid[])"
                    " AND status NOT IN ('indexed', 'quarantined') ORDER BY created_at, id"
                ).format(cols=_COLUMNS),
                (list(document_ids),),
            )
            return [_record(r) for r in cur.fetchall()]

    def delete(
        self,
        document_ids: Iterable[uuid.UUID],
        *,
        tenant: str | None = None,
        status: DocumentStatus | None = None,
        drop_blob: Callable[[str], None] | None = None,
    ) -> list[DocumentRecord]:
        """Delete documents (their chunks cascade), only those in ``status`` if given; returns
        what was deleted. Idempotent.

        ``drop_blob`` is called with each blob key that no document uses any more, after the
        deletion commits and before the blob's lock is released (see :meth:`receive`): an upload
        of the same content either recorded its document before (the blob stays) or stores the
        blob again after. A failed drop leaves an unused blob, never a document without one.
        """
        ids = list(document_ids)
        if not ids:
            return []
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            try:
                deleted, unused = self._delete_holding_blob_locks(
                    conn, cur, ids, tenant=tenant, status=status, lock=drop_blob is not None
                )
                if drop_blob is not None:
                    for key in unused:
                        drop_blob(key)
            finally:
                if drop_blob is not None:
                    cur.execute("SELECT pg_advisory_unlock_all()")
            return deleted

    @staticmethod
    def _delete_holding_blob_locks(
        conn: psycopg.Connection[Any],
        cur: psycopg.Cursor[Any],
        ids: list[uuid.UUID],
        *,
        tenant: str | None,
        status: DocumentStatus | None,
        lock: bool,
    ) -> tuple[list[DocumentRecord], list[str]]:
        """Delete and commit; with ``lock``, the locks of the deleted documents' blobs stay held
        (session locks) and the blobs no document uses any more are returned."""
        where = sql.SQL(
            "id = ANY(%(ids)s::uuid[]) AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s)"
            " AND (%(status)s::text IS NULL OR status::text = %(status)s)"
        )
        params = {"ids": ids, "tenant": tenant, "status": status.value if status else None}
        locked: set[str] = set()
        for _ in range(3):
            with conn.transaction():
                if lock:
                    # Lock before deleting: an upload holds the lock while it waits for a
                    # document row, so locking after the DELETE could deadlock.
                    query = "SELECT DISTINCT blob_key FROM documents WHERE {} AND blob_key IS NOT NULL"
                    cur.execute(sql.SQL(query).format(where), params)
                    keys = {row["blob_key"] for row in cur.fetchall()} - locked
                    _lock_blobs(cur, keys, session=True)
                    locked |= keys
                cur.execute(
                    sql.SQL("DELETE FROM documents WHERE {} RETURNING {}").format(where, _COLUMNS), params
                )
                deleted = [_record(r) for r in cur.fetchall()]
                blobs = {(r.tenant, r.blob_key) for r in deleted if r.blob_key}
                if not lock:
                    return deleted, []
                if {key for _, key in blobs} <= locked:
                    unused = []
                    for owner, key in sorted(blobs):
                        cur.execute(
                            "SELECT EXISTS (SELECT 1 FROM documents WHERE tenant = %s AND blob_key = %s)"
                            " AS used",
                            (owner, key),
                        )
                        row = cur.fetchone()
                        if not (row and row["used"]):
                            unused.append(key)
                    return deleted, unused
                # A document got another blob since the SELECT: again, holding its lock too.
                raise psycopg.Rollback()
        raise Unavailable("documents kept changing while being deleted; retry the deletion")
