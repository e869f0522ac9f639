"""Relevance labels in PostgreSQL (tables ``label_queries`` and ``relevance_labels``, migration
0013); implements :class:`rag.core.ports.LabelStore`.

Every statement names the tenant and uses bound parameters; the tables' composite foreign keys
refuse a label whose document is another tenant's even if a statement forgot. A document that
is not the tenant's is :class:`NotFound` with the message an unknown id gets, so that a caller
learns nothing of other tenants. Constraint violations become :mod:`rag.core.errors` here; the
pool (:mod:`rag.adapters.postgres.pool`) translates lost connections and refused values.

A query row is found by its text (``md5(text)``, see the migration) or, for imported queries, by
its external id. A (query, document) pair holds one label: grading it again replaces the grade,
who gave it, how, and when. Blocking: the API calls these methods in worker threads.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from rag.adapters.postgres.rows import from_row
from rag.core.auth import validate_tenant
from rag.core.errors import InvalidInput, NotFound
from rag.core.labels import (
    ImportCounts,
    LabelledQuery,
    LabelSource,
    RelevanceLabel,
    validate_external_id,
    validate_grade,
    validate_labeller,
)
from rag.core.search import validate_query

_DOCUMENTS_OF_TENANT = "SELECT id FROM documents WHERE tenant = %s AND id = ANY(%s::uuid[])"
_CHUNK_OF_DOCUMENT = "SELECT 1 FROM chunks WHERE id = %s AND document_id = %s AND tenant = %s"
# DO UPDATE (not DO NOTHING) so that RETURNING answers for an existing query too.
_UPSERT_QUERY = """
    INSERT INTO label_queries (tenant, text, external_id) VALUES (%(tenant)s, %(text)s, %(key)s)
    ON CONFLICT (tenant, md5(text))
        DO UPDATE SET external_id = coalesce(label_queries.external_id, EXCLUDED.external_id)
    RETURNING id, coalesce(external_id, '#' || id) AS query_key, text AS query_text
"""
# An imported query: the stored query of the same text takes the external id when it has none
# (a caller graded it first), else the query of that external id is created or takes the text.
_UPSERT_IMPORTED_QUERY = """
    WITH adopted AS (
        UPDATE label_queries SET external_id = %(key)s
        WHERE tenant = %(tenant)s AND md5(text) = md5(%(text)s) AND text = %(text)s
          AND external_id IS NULL
          AND NOT EXISTS (SELECT 1 FROM label_queries WHERE tenant = %(tenant)s AND external_id = %(key)s)
        RETURNING id
    )
    INSERT INTO label_queries (tenant, text, external_id)
    SELECT %(tenant)s, %(text)s, %(key)s WHERE NOT EXISTS (SELECT 1 FROM adopted)
    ON CONFLICT (tenant, external_id) WHERE external_id IS NOT NULL DO UPDATE SET text = EXCLUDED.text
"""
_UPSERT_LABEL = """
    INSERT INTO relevance_labels (query_id, tenant, document_id, chunk_id, grade, labelled_by, source)
    VALUES (%(query_id)s, %(tenant)s, %(document_id)s, %(chunk_id)s, %(grade)s, %(by)s, %(source)s)
    ON CONFLICT (query_id, document_id) DO UPDATE SET
        chunk_id = EXCLUDED.chunk_id, grade = EXCLUDED.grade, labelled_by = EXCLUDED.labelled_by,
        source = EXCLUDED.source, labelled_at = now()
    RETURNING document_id::text AS document_id, chunk_id, grade, labelled_by, source, labelled_at
"""
_UPSERT_IMPORTED_LABEL = """
    INSERT INTO relevance_labels (query_id, tenant, document_id, grade, labelled_by, source)
    SELECT q.id, q.tenant, %(document_id)s, %(grade)s, %(by)s, 'import'
    FROM label_queries q WHERE q.tenant = %(tenant)s AND q.external_id = %(key)s
    ON CONFLICT (query_id, document_id) DO UPDATE SET
        chunk_id = NULL, grade = EXCLUDED.grade, labelled_by = EXCLUDED.labelled_by,
        source = EXCLUDED.source, labelled_at = now()
"""
_SELECT_LABELS = """
    SELECT coalesce(q.external_id, '#' || q.id) AS query_key, q.text AS query_text,
           l.document_id::text AS document_id, l.chunk_id, l.grade, l.labelled_by, l.source, l.labelled_at
    FROM relevance_labels l JOIN label_queries q ON q.id = l.query_id AND q.tenant = l.tenant
    WHERE l.tenant = %(tenant)s
    ORDER BY l.labelled_at DESC, q.id, l.document_id
    LIMIT %(limit)s OFFSET %(offset)s
"""
_SELECT_GRADES = """
    SELECT q.id, coalesce(q.external_id, '#' || q.id) AS query_key, q.text AS query_text,
           l.document_id::text AS document_id, l.grade
    FROM label_queries q JOIN relevance_labels l ON l.query_id = q.id AND l.tenant = q.tenant
    WHERE q.tenant = %s
    ORDER BY q.id, l.document_id
"""
_DELETE_QUERIES = """
    DELETE FROM label_queries
    WHERE tenant = %(tenant)s
      AND (%(key)s::text IS NULL OR external_id = %(key)s OR (external_id IS NULL AND '#' || id = %(key)s))
"""


def _label(row: dict[str, Any]) -> RelevanceLabel:
    return from_row(RelevanceLabel, row, source=LabelSource(row["source"]))


def _absent(document_id: uuid.UUID) -> NotFound:
    # The same words for an unknown id and another tenant's document (tenant isolation).
    return NotFound(f"document {document_id} does not exist")


class LabelRepository:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def grade(
        self,
        tenant: str,
        query_text: str,
        document_id: uuid.UUID,
        grade: int,
        *,
        chunk_id: int | None = None,
        labelled_by: str,
        source: LabelSource = LabelSource.FEEDBACK,
        external_id: str | None = None,
    ) -> RelevanceLabel:
        """Record ``grade`` of the tenant's document for the query (stripped; created when new).

        NotFound when the document is not the tenant's, or ``chunk_id`` is not one of its chunks.
        """
        validate_tenant(tenant)
        text = validate_query(query_text)
        validate_grade(grade)
        validate_labeller(labelled_by)
        if external_id is not None:
            validate_external_id(external_id)
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_DOCUMENTS_OF_TENANT, (tenant, [document_id]))
            if cur.fetchone() is None:
                raise _absent(document_id)
            if chunk_id is not None:
                cur.execute(_CHUNK_OF_DOCUMENT, (chunk_id, document_id, tenant))
                if cur.fetchone() is None:
                    raise NotFound(f"chunk {chunk_id} is not a chunk of document {document_id}")
            try:
                cur.execute(_UPSERT_QUERY, {"tenant": tenant, "text": text, "key": external_id})
                query = cur.fetchone()
                assert query is not None
                cur.execute(
                    _UPSERT_LABEL,
                    {
                        "query_id": query["id"],
                        "tenant": tenant,
                        "document_id": document_id,
                        "chunk_id": chunk_id,
                        "grade": grade,
                        "by": labelled_by,
                        "source": source.value,
                    },
                )
            except pg_errors.ForeignKeyViolation:  # the document was deleted meanwhile
                raise _absent(document_id) from None
            except pg_errors.UniqueViolation:
                raise InvalidInput(
                    f"{external_id!r} is the id of another query of the tenant", field="external_id"
                ) from None
            label = cur.fetchone()
        assert label is not None
        return _label({**label, "query_key": query["query_key"], "query_text": query["query_text"]})

    def import_labels(
        self,
        tenant: str,
        queries: Mapping[str, str],
        qrels: Sequence[tuple[str, uuid.UUID, int]],
        *,
        labelled_by: str,
    ) -> ImportCounts:
        """Store ``qrels`` (query id, document id, grade) with the texts of their queries, all in
        one transaction: either every label is stored, or (an error) none is.

        A query is stored under its id (its external id); a query of the same text that a caller
        graded first takes the id. Only the queries the qrels name are stored. A pair that
        appears twice keeps its last grade. NotFound, and nothing stored, when a document is not
        the tenant's.
        """
        validate_tenant(tenant)
        validate_labeller(labelled_by)
        pairs: dict[tuple[str, uuid.UUID], int] = {}
        for query_id, document_id, grade in qrels:
            if query_id not in queries:
                raise InvalidInput(
                    f"the qrels name the query {query_id!r}, which has no text", field="queries"
                )
            pairs[query_id, document_id] = validate_grade(grade)
        texts = {query_id: validate_query(queries[query_id]) for query_id, _ in pairs}
        _refuse_shared_texts(texts)
        documents = sorted({document_id for _, document_id in pairs})
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.execute(_DOCUMENTS_OF_TENANT, (tenant, documents))
            missing = sorted(set(documents) - {row[0] for row in cur.fetchall()})
            if missing:
                raise NotFound(
                    f"{len(missing)} of the labelled documents are not documents of tenant {tenant} "
                    f"(the first: {missing[0]}); nothing was imported"
                )
            try:
                cur.executemany(
                    _UPSERT_IMPORTED_QUERY,
                    [{"tenant": tenant, "key": key, "text": text} for key, text in texts.items()],
                )
                cur.executemany(
                    _UPSERT_IMPORTED_LABEL,
                    [
                        {
                            "tenant": tenant,
                            "key": key,
                            "document_id": document_id,
                            "grade": grade,
                            "by": labelled_by,
                        }
                        for (key, document_id), grade in pairs.items()
                    ],
                )
            except pg_errors.ForeignKeyViolation:  # a document was deleted meanwhile
                raise NotFound(
                    "a labelled document was deleted during the import; nothing was imported"
                ) from None
            except pg_errors.UniqueViolation:
                raise InvalidInput(
                    "a query of the import has the text of a stored query with another id; "
                    "nothing was imported",
                    field="queries",
                ) from None
        return ImportCounts(queries=len(texts), labels=len(pairs))

    def labelled_queries(self, tenant: str) -> list[LabelledQuery]:
        """Every labelled query of the tenant with its grades, in the order the queries were
        first stored."""
        validate_tenant(tenant)
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_SELECT_GRADES, (tenant,))
            rows = cur.fetchall()
        grouped: dict[int, tuple[str, str, dict[str, int]]] = {}
        for row in rows:
            _, _, grades = grouped.setdefault(row["id"], (row["query_key"], row["query_text"], {}))
            grades[row["document_id"]] = int(row["grade"])
        return [LabelledQuery(key, text, grades) for key, text, grades in grouped.values()]

    def delete(self, tenant: str, query_key: str | None = None) -> int:
        """Delete the query of ``query_key`` with its labels, or every query of the tenant;
        how many queries were deleted."""
        validate_tenant(tenant)
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.execute(_DELETE_QUERIES, {"tenant": tenant, "key": query_key})
            return int(cur.rowcount)

    def list(self, tenant: str, *, limit: int = 100, offset: int = 0) -> list[RelevanceLabel]:
        """The tenant's labels, the latest first."""
        validate_tenant(tenant)
        if limit < 1 or offset < 0:
            raise InvalidInput(f"limit must be at least 1 and offset at least 0, got {limit} and {offset}")
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_SELECT_LABELS, {"tenant": tenant, "limit": limit, "offset": offset})
            return [_label(row) for row in cur.fetchall()]


def _refuse_shared_texts(texts: Mapping[str, str]) -> None:
    seen: dict[str, str] = {}
    for key, text in texts.items():
        if text in seen:
            raise InvalidInput(
                f"the queries {seen[text]!r} and {key!r} have the same text; one query, one id",
                field="queries",
            )
        seen[text] = key
