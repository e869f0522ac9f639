"""Retrieval queries: dense (pgvector HNSW, iterative scans) and BM25 over the postings table.

Every query is confined to the caller's tenant and to one embedding model version in SQL, and
so are the BM25 statistics it scores with (another tenant's documents never change its scores).
Filters (document ids, document metadata, creation dates) are applied inside the index scan's
filter with iterative scans on, so a selective filter does not starve the top-k (pgvector 0.8).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from rag.adapters.postgres.rows import from_row
from rag.core.search import ChunkHit, Filters

BM25_K1 = 1.2
BM25_B = 0.75


def _filter_params(filters: Filters) -> dict[str, Any]:
    return {
        "f_empty": filters.empty,
        "f_ids": list(filters.document_ids),
        "f_meta": json.dumps(filters.metadata),
        "f_after": filters.created_after,
        "f_before": filters.created_before,
    }


# Documents of the tenant that pass the filters (a semi-join the planner hashes once).
_FILTER = sql.SQL("""
    AND (%(f_empty)s OR c.document_id IN (
        SELECT d.id FROM documents d
        WHERE d.tenant = %(tenant)s
          AND (cardinality(%(f_ids)s::uuid[]) = 0 OR d.id = ANY(%(f_ids)s::uuid[]))
          AND d.metadata @> %(f_meta)s::jsonb
          AND (%(f_after)s::timestamptz IS NULL OR d.created_at >= %(f_after)s)
          AND (%(f_before)s::timestamptz IS NULL OR d.created_at < %(f_before)s)))
""")

_DENSE = sql.SQL(
    """
    SELECT c.id, c.embedding <=> %(vector)s AS distance
    FROM chunks c
    WHERE c.tenant = %(tenant)s AND c.embedding_model_version = %(version)s
    {filter}
    ORDER BY c.embedding <=> %(vector)s
    LIMIT %(k)s
    """
).format(filter=_FILTER)

_LEXICAL = sql.SQL(
    """
    WITH q AS (
        SELECT DISTINCT lexeme AS term FROM unnest(to_tsvector('english', %(query)s))
    ), stats AS (
        SELECT greatest(coalesce(max(n), 0), 1)::float8 AS n,
               greatest(coalesce(max(total_len), 0), 1)::float8 / greatest(coalesce(max(n), 0), 1) AS avgdl
        FROM lexical_corpus_stats WHERE tenant = %(tenant)s AND embedding_model_version = %(version)s
    ), weights AS MATERIALIZED (
        -- Once per query term: one probe of the primary key for its document frequency.
        SELECT q.term, ln(1.0 + (s.n - t.df + 0.5) / (t.df + 0.5)) AS idf, s.avgdl
        FROM q CROSS JOIN stats s
        CROSS JOIN LATERAL (
            SELECT coalesce(max(df), 1) AS df FROM lexical_term_stats
            WHERE tenant = %(tenant)s AND embedding_model_version = %(version)s AND term = q.term) t
    ), scored AS (
        SELECT p.chunk_id,
               sum(w.idf * p.tf * (%(k1)s::float8 + 1.0)
                   / (p.tf + %(k1)s::float8
                      * (1.0 - %(b)s::float8 + %(b)s::float8 * p.dl / w.avgdl))) AS score
        FROM weights w
        JOIN chunk_terms p ON p.tenant = %(tenant)s AND p.term = w.term
        GROUP BY p.chunk_id
    )
    SELECT c.id, scored.score
    FROM scored JOIN chunks c ON c.id = scored.chunk_id
    WHERE c.tenant = %(tenant)s AND c.embedding_model_version = %(version)s
    {filter}
    ORDER BY scored.score DESC, c.id
    LIMIT %(k)s
    """
).format(filter=_FILTER)


class SearchRepository:
    """The search index port (:class:`rag.core.ports.SearchIndex`) over PostgreSQL."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def sample_chunks(
        self, model_version: str, limit: int
    ) -> list[tuple[int, str, NDArray[np.float32], str]]:
        """Up to ``limit`` random chunks of ``model_version``: (id, tenant, vector, text), for
        checking that a restored index finds its own chunks."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, tenant, embedding, text FROM chunks WHERE embedding_model_version = %s"
                " ORDER BY random() LIMIT %s",
                (model_version, limit),
            ).fetchall()
        return [
            (
                int(chunk_id),
                str(tenant),
                np.asarray(
                    embedding.to_numpy() if hasattr(embedding, "to_numpy") else embedding, dtype=np.float32
                ),
                str(text),
            )
            for chunk_id, tenant, embedding, text in rows
        ]

    def dense(
        self, *, tenant: str, version: str, vector: NDArray[np.float32], k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        """Nearest chunks by cosine distance. ef_search >= k, or HNSW caps the result count.

        The settings are the session's (only HNSW scans read them, and every one sets its own),
        sent in one pipeline with the query: one network round trip.
        """
        with self.pool.connection() as conn, conn.pipeline():
            conn.execute(
                "SELECT set_config('hnsw.ef_search', %s, false),"
                " set_config('hnsw.iterative_scan', 'relaxed_order', false)",
                (str(max(40, min(1000, 2 * k))),),
            )
            cursor = conn.execute(
                _DENSE,
                {"tenant": tenant, "version": version, "vector": vector, "k": k, **_filter_params(filters)},
            )
            rows = cursor.fetchall()
        # relaxed_order may return rows slightly out of order: sort by the exact distance.
        return sorted(((int(i), float(d)) for i, d in rows), key=lambda r: r[1])

    def lexical(
        self, *, tenant: str, version: str, query: str, k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        """BM25 over the postings (OR semantics over the query's lexemes), scored with the
        document frequencies and lengths of ``tenant``'s chunks of ``version`` only."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                _LEXICAL,
                {
                    "tenant": tenant,
                    "version": version,
                    "query": query,
                    "k": k,
                    "k1": BM25_K1,
                    "b": BM25_B,
                    **_filter_params(filters),
                },
            ).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def hits(
        self, chunk_ids: list[int], *, tenant: str, vector: NDArray[np.float32] | None = None
    ) -> dict[int, ChunkHit]:
        """Chunk details; with the query ``vector``, also each chunk's cosine similarity to it."""
        if not chunk_ids:
            return {}
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                """
                SELECT c.id AS chunk_id, c.document_id, d.title AS document_title, d.source_uri, c.text,
                       c.heading, c.page, c.char_start, c.char_end,
                       CASE WHEN %(vector)s::vector IS NULL THEN NULL
                            ELSE 1 - (c.embedding <=> %(vector)s::vector) END AS similarity
                FROM chunks c JOIN documents d ON d.id = c.document_id
                WHERE c.id = ANY(%(ids)s::bigint[]) AND c.tenant = %(tenant)s
                """,
                {"ids": chunk_ids, "tenant": tenant, "vector": vector},
            )
            return {
                row["chunk_id"]: from_row(
                    ChunkHit, row, similarity=None if row["similarity"] is None else float(row["similarity"])
                )
                for row in cur.fetchall()
            }
