"""Shadow rows of a new embedding version beside the serving one, and the atomic cutover.

Shadow rows live in ``chunks`` itself under another ``embedding_model_version`` (the unique key
is (document, ordinal, version)): same text, heading, page and spans, new vector, their own
BM25 postings. Search filters by the active version, so it never sees them until the cutover
flips ``embedding_indexes`` in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from rag.core.errors import FailedPrecondition


@dataclass(frozen=True)
class SourceChunk:
    id: int
    tenant: str
    text: str


class ShadowIndex:
    """Re-embedding ``source`` (the serving version) into ``target`` (the shadow version)."""

    def __init__(self, pool: ConnectionPool, *, source: str, target: str) -> None:
        if source == target:
            raise FailedPrecondition(f"version {target} already serves: nothing to re-embed")
        self.pool = pool
        self.source = source
        self.target = target

    def ranges(self, *, per_range: int, max_ranges: int = 1000) -> list[tuple[int, int]]:
        """Contiguous id ranges of the source chunks, about ``per_range`` chunks each."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM chunks WHERE embedding_model_version = %s", (self.source,)
            ).fetchone()
            total = int(row[0]) if row else 0
            if total == 0:
                return []
            buckets = max(1, min(max_ranges, -(-total // per_range)))
            rows = conn.execute(
                """
                SELECT min(id), max(id) FROM (
                    SELECT id, ntile(%s) OVER (ORDER BY id) AS bucket
                    FROM chunks WHERE embedding_model_version = %s
                ) b GROUP BY bucket ORDER BY 1
                """,
                (buckets, self.source),
            ).fetchall()
        return [(int(lo), int(hi)) for lo, hi in rows]

    def pending(self, *, lo: int, hi: int, after: int = 0, limit: int = 256) -> list[SourceChunk]:
        """Source chunks in ``[lo, hi]`` (ids above ``after``) without a shadow row yet."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                """
                SELECT c.id, c.tenant, c.text FROM chunks c
                WHERE c.embedding_model_version = %(source)s AND c.id BETWEEN %(lo)s AND %(hi)s
                  AND c.id > %(after)s
                  AND NOT EXISTS (SELECT 1 FROM chunks s WHERE s.document_id = c.document_id
                                  AND s.ordinal = c.ordinal AND s.embedding_model_version = %(target)s)
                ORDER BY c.id LIMIT %(limit)s
                """,
                {
                    "source": self.source,
                    "target": self.target,
                    "lo": lo,
                    "hi": hi,
                    "after": after,
                    "limit": limit,
                },
            ).fetchall()
        return [SourceChunk(int(i), t, x) for i, t, x in rows]

    def missing(self, *, limit: int = 256) -> list[SourceChunk]:
        """Source chunks anywhere without a shadow row (e.g. re-ingested during the run)."""
        return self.pending(lo=0, hi=2**62, limit=limit)

    def write(self, source_ids: Sequence[int], vectors: NDArray[np.float32]) -> int:
        """Upsert the shadow rows of ``source_ids`` and their BM25 postings in one transaction."""
        if len(source_ids) != len(vectors):
            raise ValueError("one vector per chunk")
        if not source_ids:
            return 0
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                """
                INSERT INTO chunks (document_id, tenant, ordinal, text, heading, page, char_start, char_end,
                                    token_count, embedding, embedding_model_version)
                SELECT c.document_id, c.tenant, c.ordinal, c.text, c.heading, c.page, c.char_start,
                       c.char_end, c.token_count, v.embedding, %(target)s
                FROM unnest(%(ids)s::bigint[], %(vectors)s::vector[]) AS v(id, embedding)
                JOIN chunks c ON c.id = v.id AND c.embedding_model_version = %(source)s
                ON CONFLICT (document_id, ordinal, embedding_model_version)
                    DO UPDATE SET embedding = EXCLUDED.embedding
                RETURNING id
                """,
                {
                    "ids": list(source_ids),
                    "vectors": list(vectors),
                    "source": self.source,
                    "target": self.target,
                },
            ).fetchall()
            ids = [r[0] for r in rows]
            conn.execute("SELECT rag_index_chunk_terms(%s::bigint[])", (ids,))
        return len(ids)

    def sample(self, n: int, *, seed: str = "rag") -> list[SourceChunk]:
        """``n`` shadow chunks picked by a seeded hash (the same sample on a re-run)."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, tenant, text FROM chunks WHERE embedding_model_version = %s"
                " ORDER BY md5(id::text || %s), id LIMIT %s",
                (self.target, seed, n),
            ).fetchall()
        return [SourceChunk(int(i), t, x) for i, t, x in rows]

    def nearest(self, vector: NDArray[np.float32], *, k: int) -> list[int]:
        """The ``k`` target-version chunks nearest to ``vector``, across tenants (HNSW, as served)."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "SELECT set_config('hnsw.ef_search', %s, true),"
                " set_config('hnsw.iterative_scan', 'relaxed_order', true)",
                (str(max(40, 2 * k)),),
            )
            rows = conn.execute(
                "SELECT id FROM chunks WHERE embedding_model_version = %s ORDER BY embedding <=> %s LIMIT %s",
                (self.target, vector, k),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def documents_of(self, chunk_ids: Sequence[int]) -> dict[int, str]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, document_id::text FROM chunks WHERE id = ANY(%s::bigint[])", (list(chunk_ids),)
            ).fetchall()
        return {int(i): d for i, d in rows}

    def positions_of(self, chunk_ids: Sequence[int]) -> dict[int, tuple[str, int]]:
        """Each chunk's (document, ordinal): the same chunk under either version."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, document_id::text, ordinal FROM chunks WHERE id = ANY(%s::bigint[])",
                (list(chunk_ids),),
            ).fetchall()
        return {int(i): (d, int(o)) for i, d, o in rows}

    def count(self, version: str) -> int:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM chunks WHERE embedding_model_version = %s", (version,)
            ).fetchone()
        return int(row[0]) if row else 0

    def cut_over(self, quality: dict[str, Any]) -> int:
        """Make the target the active version and retire the source, atomically.

        Holds a lock that blocks chunk writes (not reads) while it checks that every source chunk
        has its shadow row, computes the target's BM25 statistics, then flips both
        ``embedding_indexes`` rows and the documents' version in the same transaction. Returns the
        number of source chunks still without a shadow row (0: cut over; else nothing changed and
        the caller embeds those and tries again).
        """
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SET LOCAL lock_timeout = '30s'")
            conn.execute("LOCK TABLE chunks IN SHARE ROW EXCLUSIVE MODE")
            states: dict[str, str] = dict(
                conn.execute(
                    "SELECT model_version, status FROM embedding_indexes WHERE model_version = ANY(%s)"
                    " FOR UPDATE",
                    ([self.source, self.target],),
                ).fetchall()
            )
            if states.get(self.target) == "active" and states.get(self.source) != "active":
                return 0  # done by an earlier attempt
            if states.get(self.source) != "active" or states.get(self.target) != "building":
                raise FailedPrecondition(
                    f"cannot cut over from {self.source} ({states.get(self.source)}) to {self.target} "
                    f"({states.get(self.target)}): expected active -> building"
                )
            row = conn.execute(
                """
                SELECT count(*) FROM chunks c WHERE c.embedding_model_version = %(source)s
                AND NOT EXISTS (SELECT 1 FROM chunks s WHERE s.document_id = c.document_id
                                AND s.ordinal = c.ordinal AND s.embedding_model_version = %(target)s)
                """,
                {"source": self.source, "target": self.target},
            ).fetchone()
            missing = int(row[0]) if row else 0
            if missing:
                return missing
            # BM25 statistics are per version: the target's, exact under the lock, serve with it.
            conn.execute("SELECT rag_refresh_bm25_stats(NULL, %s::text[])", ([self.target],))
            conn.execute(
                "UPDATE embedding_indexes SET status = 'retired' WHERE model_version = %s", (self.source,)
            )
            conn.execute(
                "UPDATE embedding_indexes SET status = 'active', activated_at = now(), reason = NULL,"
                " quality = quality || %s WHERE model_version = %s",
                (Jsonb(quality), self.target),
            )
            conn.execute(
                "UPDATE documents SET embedding_model_version = %s WHERE embedding_model_version = %s",
                (self.target, self.source),
            )
        return 0

    def delete_version(self, version: str, *, batch: int = 2000) -> int:
        """Delete one version's chunks (their postings cascade), a batch per transaction."""
        deleted = 0
        while True:
            with self.pool.connection() as conn:
                cur = conn.execute(
                    "DELETE FROM chunks WHERE id IN (SELECT id FROM chunks WHERE embedding_model_version = %s"
                    " LIMIT %s)",
                    (version, batch),
                )
            deleted += cur.rowcount
            if cur.rowcount < batch:
                return deleted
