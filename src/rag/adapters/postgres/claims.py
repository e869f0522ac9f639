"""Claims on documents in PostgreSQL: who processes a ``received`` document, how many attempts
it has had, and what happens to documents whose worker died or gave up.

A claim counts an attempt and holds the document until its deadline; a document claimed
:data:`~rag.core.documents.MAX_ATTEMPTS` times is quarantined, naming the stage its workers
died in. An outage gives the attempt back (:meth:`DocumentClaims.reset_to_received`); the
sweeper sends documents whose claim or deadline ran out back for another attempt.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql
from psycopg_pool import ConnectionPool

from rag.core.documents import MAX_ATTEMPTS, Claim
from rag.core.errors import NotFound

# What a worker is doing while a document is in each in-flight status: a worker that died left
# it there, so the status names the stage it died in.
_STAGES = {"received": "parsing", "parsed": "chunking", "chunked": "embedding", "embedded": "indexing"}


def _worker_died(status: str, attempts: str) -> sql.Composed:
    """SQL for the reason a document whose workers kept dying is quarantined with, from the SQL
    expressions of its status and attempt count: 'worker died during parsing 3 times'."""
    return sql.SQL(
        "format('worker died during %%s %%s times', {stages}::jsonb ->> ({status}), {attempts})"
    ).format(stages=sql.Literal(json.dumps(_STAGES)), status=sql.SQL(status), attempts=sql.SQL(attempts))


@dataclass(frozen=True)
class Swept:
    """What the sweeper did: documents sent back for another attempt, and those given up on."""

    reset: list[uuid.UUID]
    quarantined: list[uuid.UUID]


class DocumentClaims:
    """The claim statements of :class:`~rag.adapters.postgres.documents.DocumentRepository`."""

    pool: ConnectionPool

    def claim(
        self,
        document_id: uuid.UUID,
        *,
        deadline_s: float,
        max_attempts: int = MAX_ATTEMPTS,
        owner: str | None = None,
    ) -> Claim:
        """Claim a ``received`` document for processing until the deadline: count the attempt and
        push the deadline out. Another worker's claim that has not run out is left alone (that
        worker will move it on).

        A document claimed ``max_attempts`` times already is quarantined instead of claimed
        again. Its last claim ran out with the document still ``received`` (any other failure
        quarantines it or gives the claim back), so its worker died fetching or parsing it:
        'worker died during parsing 3 times'. Attempts count every claim since the document
        was received, retries after a transient failure included, except those that ended in a
        dependency outage: :meth:`reset_to_received` gives such an attempt back. ``owner`` names
        the claim's holder for :meth:`release_claims`.
        """
        with self.pool.connection() as conn:
            row = conn.execute(
                sql.SQL("""
                UPDATE documents SET
                    attempts = CASE WHEN attempts < %(max)s THEN attempts + 1 ELSE attempts END,
                    status = CASE WHEN attempts < %(max)s THEN status
                                  ELSE 'quarantined' END::document_status,
                    error_reason = CASE WHEN attempts < %(max)s THEN error_reason
                        WHEN claimed_until IS NOT NULL THEN {died}
                        ELSE format('gave up after %%s attempts that did not finish', attempts) END,
                    deadline_at = CASE WHEN attempts < %(max)s
                        THEN now() + make_interval(secs => %(deadline)s) ELSE deadline_at END,
                    claimed_until = CASE WHEN attempts < %(max)s
                        THEN now() + make_interval(secs => %(deadline)s) END,
                    claimed_by = CASE WHEN attempts < %(max)s THEN %(owner)s END
                WHERE id = %(id)s AND status = 'received'
                  AND (claimed_until IS NULL OR claimed_until < now())
                RETURNING status::text, attempts, error_reason
                """).format(died=_worker_died("'received'", "attempts")),
                {"deadline": deadline_s, "id": document_id, "max": max_attempts, "owner": owner},
            ).fetchone()
            exists = (
                row is not None
                or conn.execute("SELECT 1 FROM documents WHERE id = %s", (document_id,)).fetchone()
            )
        if not exists:
            raise NotFound(f"document {document_id} does not exist")
        if row is None:
            return Claim()
        status, attempts, reason = row
        return Claim(quarantined=reason) if status == "quarantined" else Claim(attempt=int(attempts))

    def release_claims(self, document_ids: Sequence[uuid.UUID], *, owner: str) -> list[uuid.UUID]:
        """Give back the claims ``owner`` still holds on ``document_ids`` (its earlier try died
        with them: the database went away under it, or it was killed): those documents go back
        to ``received``, claimable at once, their attempts kept. Returns them."""
        if not document_ids:
            return []
        with self.pool.connection() as conn:
            rows = conn.execute(
                """
                UPDATE documents SET status = 'received', claimed_until = NULL, claimed_by = NULL
                WHERE id = ANY(%(ids)s::uuid[]) AND claimed_by = %(owner)s AND claimed_until IS NOT NULL
                  AND status IN ('received', 'parsed', 'chunked', 'embedded')
                RETURNING id
                """,
                {"ids": list(document_ids), "owner": owner},
            ).fetchall()
        return [r[0] for r in rows]

    def reset_to_received(self, document_id: uuid.UUID, *, outage: str | None = None) -> None:
        """A retry after a transient failure starts again from ``received``, claimable at once.

        With ``outage`` (the error of a dependency that is down), the claim's attempt is given
        back and counted in ``outage_retries`` instead: an outage never quarantines a document.
        The error stays as the document's ``error_reason`` until it moves on.
        """
        with self.pool.connection() as conn:
            conn.execute(
                """
                UPDATE documents SET status = 'received', error_reason = %(outage)s, claimed_until = NULL,
                       attempts = CASE WHEN %(outage)s::text IS NULL THEN attempts
                                       ELSE greatest(attempts - 1, 0) END,
                       outage_retries = outage_retries + (%(outage)s::text IS NOT NULL)::int
                WHERE id = %(id)s AND status IN ('received', 'parsed', 'chunked', 'embedded')
                """,
                {"id": document_id, "outage": outage[:2000] if outage else None},
            )

    def in_progress(self, document_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """Those of ``document_ids`` a worker is processing now: past ``received`` and not
        terminal, or ``received`` under a claim that has not run out."""
        if not document_ids:
            return []
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT id FROM documents WHERE id = ANY(%s::uuid[])"
                " AND (status NOT IN ('received', 'indexed', 'quarantined')"
                "      OR (status = 'received' AND claimed_until > now()))"
                " ORDER BY created_at, id",
                (list(document_ids),),
            ).fetchall()
        return [r[0] for r in rows]

    def stale_received(self, *, older_than_s: float, limit: int = 10_000) -> list[uuid.UUID]:
        """Documents left ``received`` for longer than ``older_than_s`` and not under a running
        claim (nobody is processing them: an upload while Airflow was down, or a retry after a
        transient failure), oldest first. Claims that ran out are :meth:`sweep`'s."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                """
                SELECT id FROM documents
                WHERE status = 'received' AND updated_at < now() - make_interval(secs => %s)
                  AND (claimed_until IS NULL OR claimed_until < now())
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
                UPDATE documents SET status = 'received', error_reason = NULL, claimed_until = NULL,
                       attempts = 0, outage_retries = 0
                WHERE status = 'indexed' AND embedding_model_version IN
                      (SELECT model_version FROM embedding_indexes WHERE status = 'retired')
                RETURNING id
                """
            ).fetchall()
        return [r[0] for r in rows]

    def sweep(self, *, max_attempts: int = MAX_ATTEMPTS) -> Swept:
        """Documents whose worker died: stuck in ``parsed``/``chunked``/``embedded`` past their
        deadline, or ``received`` under a claim that ran out. With fewer than ``max_attempts``
        attempts they go back to ``received``, unclaimed, for another one; else they are
        quarantined, naming the stage: 'worker died during chunking 3 times'."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                sql.SQL("""
                WITH stuck AS (
                    SELECT id, status::text AS was, attempts FROM documents
                    WHERE (status IN ('parsed', 'chunked', 'embedded') AND deadline_at < now())
                       OR (status = 'received' AND claimed_until < now())
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE documents d SET
                    status = CASE WHEN s.attempts < %(max)s THEN 'received'
                                  ELSE 'quarantined' END::document_status,
                    error_reason = CASE WHEN s.attempts < %(max)s THEN NULL ELSE {died} END,
                    claimed_until = NULL
                FROM stuck s WHERE d.id = s.id
                RETURNING d.id, d.status::text
                """).format(died=_worker_died("s.was", "s.attempts")),
                {"max": max_attempts},
            ).fetchall()
        return Swept(
            reset=[i for i, status in rows if status == "received"],
            quarantined=[i for i, status in rows if status == "quarantined"],
        )
