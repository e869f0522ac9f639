"""Relevance labels: a tenant's queries and the grade of each labelled document (issue 15).

``label_queries`` holds a tenant's labelled queries: the text (stripped, 1..1000 characters,
the Search rule), and the benchmark's id when the query came from a qrels import. A text is
unique per tenant, and so is an external id. The text's uniqueness is kept on ``md5(text)``:
a btree entry holds at most ~2.7 kB, and 1000 characters of 4-byte UTF-8 do not fit.

``relevance_labels`` holds one grade per (query, document), the latest, with who gave it, how
(``feedback`` through GradeResult, ``import`` from a qrels file) and when. A label belongs to
the tenant of its query and of its document, and SQL enforces both: composite foreign keys on
(query_id, tenant) and (tenant, document_id), for which ``label_queries`` gets a unique
(id, tenant) and ``documents`` a unique (tenant, id). A label of another tenant's document is
refused by the database, whatever the code above it does. Deleting a document or a query
deletes its labels. ``chunk_id`` records which passage the caller saw; it has no foreign key,
because re-embedding replaces a document's chunk rows and the label stays true of the document.

The ``user`` role gets ``labels:write`` (``rag.core.auth``; admins hold it through
``system:admin``, readonly does not).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'documents_tenant_id_key') THEN
            ALTER TABLE documents ADD CONSTRAINT documents_tenant_id_key UNIQUE (tenant, id);
        END IF;
    END $$;

    CREATE TABLE IF NOT EXISTS label_queries (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant      text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
        text        text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 1000 AND text = btrim(text)),
        external_id text CHECK (external_id IS NULL OR char_length(external_id) BETWEEN 1 AND 256),
        created_at  timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT label_queries_id_tenant_key UNIQUE (id, tenant)
    );
    CREATE UNIQUE INDEX IF NOT EXISTS label_queries_tenant_text_key
        ON label_queries (tenant, md5(text));
    CREATE UNIQUE INDEX IF NOT EXISTS label_queries_tenant_external_id_key
        ON label_queries (tenant, external_id) WHERE external_id IS NOT NULL;

    CREATE TABLE IF NOT EXISTS relevance_labels (
        query_id    bigint NOT NULL,
        tenant      text NOT NULL,
        document_id uuid NOT NULL,
        chunk_id    bigint,
        grade       smallint NOT NULL CHECK (grade BETWEEN 0 AND 3),
        labelled_by text NOT NULL CHECK (char_length(labelled_by) BETWEEN 1 AND 128),
        source      text NOT NULL CHECK (source IN ('feedback', 'import')),
        labelled_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (query_id, document_id),
        CONSTRAINT relevance_labels_query_fkey FOREIGN KEY (query_id, tenant)
            REFERENCES label_queries (id, tenant) ON DELETE CASCADE,
        CONSTRAINT relevance_labels_document_fkey FOREIGN KEY (tenant, document_id)
            REFERENCES documents (tenant, id) ON DELETE CASCADE
    );
    CREATE INDEX IF NOT EXISTS relevance_labels_tenant_document_idx
        ON relevance_labels (tenant, document_id);

    UPDATE roles SET permissions = array_append(permissions, 'labels:write')
        WHERE name = 'user' AND NOT 'labels:write' = ANY(permissions);
    """)


def downgrade() -> None:
    op.execute("""
    UPDATE roles SET permissions = array_remove(permissions, 'labels:write') WHERE name = 'user';
    DROP TABLE IF EXISTS relevance_labels;
    DROP TABLE IF EXISTS label_queries;
    ALTER TABLE documents DROP CONSTRAINT IF EXISTS documents_tenant_id_key;
    """)
