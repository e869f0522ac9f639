"""Chunk rows in PostgreSQL: a document's chunks, vectors and BM25 postings, written in the
transaction that marks it ``indexed``, and the BM25 statistics refreshed after a batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from psycopg_pool import ConnectionPool

from rag.core.documents import Chunk
from rag.core.errors import FailedPrecondition, NotFound


class DocumentChunks:
    """The chunk statements of :class:`~rag.adapters.postgres.documents.DocumentRepository`."""

    pool: ConnectionPool

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

    def refresh_lexical_statistics(self, tenants: Sequence[str] | None = None) -> None:
        """Recompute the BM25 document frequencies and lengths of ``tenants`` (None: every
        tenant), per embedding model version, after each ingested batch. A tenant whose
        statistics changed gets a new generation (its cached search results are not served)."""
        with self.pool.connection() as conn:
            conn.execute(
                "SELECT rag_refresh_bm25_stats(%s::text[])", (None if tenants is None else list(tenants),)
            )
