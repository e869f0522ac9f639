"""Documents and chunks in PostgreSQL: the ingestion status machine, enforced in SQL.

Every statement is scoped by tenant where a caller's tenant applies, uses bound parameters, and
is idempotent: receiving the same content is a no-op, writing a document's chunks replaces them
in one transaction, retries never duplicate rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from rag.core.documents import Chunk, DocumentStatus
from rag.core.errors import FailedPrecondition, NotFound

# Which states a status may be entered from (the quarantine reason is required in SQL too).
_ENTER_FROM: dict[DocumentStatus, tuple[str, ...]] = {
    DocumentStatus.PARSED: ("received",),
    DocumentStatus.CHUNKED: ("parsed",),
    DocumentStatus.EMBEDDED: ("chunked",),
    DocumentStatus.INDEXED: ("embedded",),
    DocumentStatus.QUARANTINED: ("received", "parsed", "chunked", "embedded"),
}


@dataclass(frozen=True)
class DocumentRecord:
    id: uuid.UUID
    tenant: str
    source_uri: str
    title: str
    content_hash: str
    size_bytes: int
    mime_type: str
    status: DocumentStatus
    error_reason: str | None
    attempts: int
    embedding_model_version: str | None
    blob_key: str | None
    metadata: dict[str, str]
    deadline_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DocumentRecord:
        return cls(
            id=row["id"],
            tenant=row["tenant"],
            source_uri=row["source_uri"],
            title=row["title"],
            content_hash=row["content_hash"],
            size_bytes=row["size_bytes"],
            mime_type=row["mime_type"],
            status=DocumentStatus(row["status"]),
            error_reason=row["error_reason"],
            attempts=row["attempts"],
            embedding_model_version=row["embedding_model_version"],
            blob_key=row["blob_key"],
            metadata=dict(row["metadata"] or {}),
            deadline_at=row["deadline_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True)
class Swept:
    """What the sweeper did: documents sent back for another attempt, and those given up on."""

    reset: list[uuid.UUID]
    quarantined: list[uuid.UUID]


@dataclass(frozen=True)
class Received:
    """Outcome of receiving content: the document, and whether anything changed."""

    document: DocumentRecord
    changed: bool


_COLUMNS = sql.SQL(
    "id, tenant, source_uri, title, content_hash, size_bytes, mime_type, status::text AS status, "
    "error_reason, attempts, embedding_model_version, blob_key, metadata, deadline_at, created_at, updated_at"
)


class DocumentRepository:
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
    ) -> Received:
        """Record a document as ``received``; unchanged content (same hash) changes nothing."""
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
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
                    error_reason = NULL, attempts = 0, claimed_until = NULL
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
                return Received(DocumentRecord.from_row(row), changed=True)
            cur.execute(
                sql.SQL("SELECT {cols} FROM documents WHERE tenant = %s AND source_uri = %s").format(
                    cols=_COLUMNS
                ),
                (tenant, source_uri),
            )
            existing = cur.fetchone()
            assert existing is not None
            return Received(DocumentRecord.from_row(existing), changed=False)

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
        return DocumentRecord.from_row(row)

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
            return [DocumentRecord.from_row(r) for r in cur.fetchall()]

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
        with self.pool.connection() as conn:
            rows = conn.execute(
                """
                SELECT status::text, count(*) FROM documents
                WHERE (%(tenant)s::text IS NULL OR tenant = %(tenant)s)
                  AND (cardinality(%(ids)s::uuid[]) = 0 OR id = ANY(%(ids)s::uuid[]))
                GROUP BY status
                """,
                {"tenant": tenant, "ids": list(ids)},
            ).fetchall()
        counts = {status.value: 0 for status in DocumentStatus}
        counts.update({status: int(n) for status, n in rows})
        return counts

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
                    "from": list(_ENTER_FROM[target]),
                },
            )
            if cur.rowcount != 1:
                raise FailedPrecondition(
                    f"document {document_id} cannot move to {target} from its current status"
                )

    def quarantine(self, document_id: uuid.UUID, reason: str) -> None:
        self.advance(document_id, DocumentStatus.QUARANTINED, reason=reason[:2000])

    def claim(self, document_id: uuid.UUID, *, deadline_s: float) -> int | None:
        """Claim a ``received`` document for processing until the deadline: count the attempt,
        push the deadline out; the attempt number, or None when it is not ``received`` or
        another worker's claim is still running (that worker will move it on)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                """
                UPDATE documents SET attempts = attempts + 1,
                       deadline_at = now() + make_interval(secs => %(deadline)s),
                       claimed_until = now() + make_interval(secs => %(deadline)s)
                WHERE id = %(id)s AND status = 'received'
                  AND (claimed_until IS NULL OR claimed_until < now())
                RETURNING attempts
                """,
                {"deadline": deadline_s, "id": document_id},
            ).fetchone()
            exists = (
                row is not None
                or conn.execute("SELECT 1 FROM documents WHERE id = %s", (document_id,)).fetchone()
            )
        if not exists:
            raise NotFound(f"document {document_id} does not exist")
        return None if row is None else int(row[0])

    def reset_to_received(self, document_id: uuid.UUID) -> None:
        """A retry after a transient failure starts again from ``received``, claimable at once."""
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE documents SET status = 'received', error_reason = NULL, claimed_until = NULL"
                " WHERE id = %s AND status IN ('received', 'parsed', 'chunked', 'embedded')",
                (document_id,),
            )

    def write_chunks(
        self,
        document_id: uuid.UUID,
        chunks: Sequence[Chunk],
        vectors: NDArray[np.float32],
        *,
        model_version: str,
    ) -> None:
        """Replace the document's chunks and mark it ``indexed``, all in one transaction."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT tenant, status::text FROM documents WHERE id = %s FOR UPDATE", (document_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"document {document_id} does not exist")
            tenant, status = row
            if status != "embedded":
                raise FailedPrecondition(f"document {document_id} is {status}, not embedded")
            conn.execute("DELETE FROM chunks WHERE document_id = %s", (document_id,))
            with conn.cursor().copy(
                "COPY chunks (document_id, tenant, ordinal, text, heading, page, char_start, char_end,"
                " token_count, embedding, embedding_model_version) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(
                    ["uuid", "text", "int4", "text", "text", "int4", "int4", "int4", "int4", "vector", "text"]
                )
                for chunk, vector in zip(chunks, vectors, strict=True):
                    copy.write_row(
                        (
                            document_id,
                            tenant,
                            chunk.ordinal,
                            chunk.text,
                            chunk.heading,
                            chunk.page,
                            chunk.char_start,
                            chunk.char_end,
                            chunk.token_count,
                            vector,
                            model_version,
                        )
                    )
            # BM25 postings from the new chunks' tsvectors (old postings went with the old chunks).
            conn.execute(
                "SELECT rag_index_chunk_terms(array_agg(id)) FROM chunks WHERE document_id = %s",
                (document_id,),
            )
            conn.execute(
                "UPDATE documents SET status = 'indexed', error_reason = NULL, embedding_model_version = %s"
                " WHERE id = %s",
                (model_version, document_id),
            )

    def delete(self, document_ids: Iterable[uuid.UUID], *, tenant: str | None = None) -> list[DocumentRecord]:
        """Delete documents (their chunks cascade); returns what was deleted. Idempotent."""
        ids = list(document_ids)
        if not ids:
            return []
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                sql.SQL(
                    "DELETE FROM documents WHERE id = ANY(%s::uuid[]) AND (%s::text IS NULL OR tenant = %s)"
                    " RETURNING {cols}"
                ).format(cols=_COLUMNS),
                (ids, tenant, tenant),
            )
            return [DocumentRecord.from_row(r) for r in cur.fetchall()]

    def blob_in_use(self, blob_key: str, *, tenant: str) -> bool:
        """Whether any document of ``tenant`` still stores its bytes under ``blob_key``."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM documents WHERE tenant = %s AND blob_key = %s)",
                (tenant, blob_key),
            ).fetchone()
        return bool(row and row[0])

    def refresh_lexical_statistics(self) -> None:
        """Recompute BM25 document frequencies and lengths (after each ingested batch)."""
        with self.pool.connection() as conn:
            conn.execute("SELECT rag_refresh_bm25_stats()")

    def stale_received(self, *, older_than_s: float, limit: int = 10_000) -> list[uuid.UUID]:
        """Documents left ``received`` for longer than ``older_than_s`` (nobody is processing them:
        an upload while Airflow was down, or a retry after a transient failure), oldest first."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                """
                SELECT id FROM documents
                WHERE status = 'received' AND updated_at < now() - make_interval(secs => %s)
                ORDER BY updated_at, id LIMIT %s
                """,
                (older_than_s, limit),
            ).fetchall()
        return [r[0] for r in rows]

    def requeue_retired_versions(self) -> list[uuid.UUID]:
        """Documents indexed with an embedding version that has been retired go back to
        ``received``: their chunks are invisible to search (it filters by the active version).
        Only an ingestion that began before a re-embedding's cutover and wrote after it leaves
        such documents; the cutover relabels all others in its own transaction."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                """
                UPDATE documents SET status = 'received', error_reason = NULL, claimed_until = NULL
                WHERE status = 'indexed' AND embedding_model_version IN
                      (SELECT model_version FROM embedding_indexes WHERE status = 'retired')
                RETURNING id
                """
            ).fetchall()
        return [r[0] for r in rows]

    def sweep(self, *, max_attempts: int = 3, reason: str = "stuck past its deadline") -> Swept:
        """Documents stuck in ``parsed``/``chunked``/``embedded`` past their deadline (their worker
        died): back to ``received`` for another attempt while they have had fewer than
        ``max_attempts``, else quarantined with the reason and the attempt count."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                """
                WITH stuck AS (
                    SELECT id, status::text AS was, attempts FROM documents
                    WHERE status IN ('parsed', 'chunked', 'embedded') AND deadline_at < now()
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE documents d SET
                    status = CASE WHEN s.attempts < %(max)s THEN 'received'
                                  ELSE 'quarantined' END::document_status,
                    error_reason = CASE WHEN s.attempts < %(max)s THEN NULL
                        ELSE format('%%s after %%s attempts (was %%s)', %(reason)s::text, s.attempts, s.was)
                    END,
                    claimed_until = NULL
                FROM stuck s WHERE d.id = s.id
                RETURNING d.id, d.status::text
                """,
                {"max": max_attempts, "reason": reason},
            ).fetchall()
        return Swept(
            reset=[i for i, status in rows if status == "received"],
            quarantined=[i for i, status in rows if status == "quarantined"],
        )
