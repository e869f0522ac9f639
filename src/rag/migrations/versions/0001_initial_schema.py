"""Initial schema: documents, chunks (pgvector HNSW + tsvector), query history, users and roles,
model deployments, embedding indexes, backup catalogue.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE EXTENSION IF NOT EXISTS vector;

    CREATE FUNCTION rag_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.updated_at := now();
        RETURN NEW;
    END $$;

    -- Roles and users (SPEC §4). system:admin implies every permission (checked in code).
    CREATE TABLE roles (
        name        text PRIMARY KEY,
        permissions text[] NOT NULL,
        description text NOT NULL DEFAULT ''
    );
    INSERT INTO roles (name, permissions, description) VALUES
        ('admin', ARRAY['documents:read', 'documents:write', 'documents:delete',
                        'models:manage', 'system:admin'], 'Operators: everything'),
        ('user', ARRAY['documents:read', 'documents:write', 'query:execute',
                       'generate:execute'], 'Applications: upload, search, generate'),
        ('readonly', ARRAY['documents:read', 'query:execute'], 'Read and search only');

    CREATE TABLE users (
        id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        username      text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{1,128}$'),
        password_hash text NOT NULL,
        role          text NOT NULL REFERENCES roles (name),
        tenant        text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
        disabled      boolean NOT NULL DEFAULT false,
        created_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now()
    );
    CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
        FOR EACH ROW EXECUTE FUNCTION rag_set_updated_at();

    -- Documents and their status machine (SPEC §1).
    CREATE TYPE document_status AS ENUM
        ('received', 'parsed', 'chunked', 'embedded', 'indexed', 'quarantined');

    CREATE TABLE documents (
        id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant                  text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
        source_uri              text NOT NULL CHECK (length(source_uri) BETWEEN 1 AND 2048),
        title                   text NOT NULL DEFAULT '',
        content_hash            char(64) NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
        size_bytes              bigint NOT NULL CHECK (size_bytes >= 0),
        mime_type               text NOT NULL DEFAULT 'application/octet-stream',
        status                  document_status NOT NULL DEFAULT 'received',
        error_reason            text,
        attempts                integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        embedding_model_version text,
        blob_key                text,
        metadata                jsonb NOT NULL DEFAULT '{}'::jsonb,
        deadline_at             timestamptz,
        created_at              timestamptz NOT NULL DEFAULT now(),
        updated_at              timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT documents_tenant_source_key UNIQUE (tenant, source_uri),
        CONSTRAINT documents_quarantine_has_reason
            CHECK (status <> 'quarantined' OR error_reason IS NOT NULL)
    );
    CREATE INDEX documents_status_idx ON documents (status);
    CREATE INDEX documents_created_at_idx ON documents (created_at);
    CREATE INDEX documents_tenant_status_created_idx ON documents (tenant, status, created_at);
    CREATE INDEX documents_tenant_hash_idx ON documents (tenant, content_hash);
    CREATE TRIGGER documents_updated_at BEFORE UPDATE ON documents
        FOR EACH ROW EXECUTE FUNCTION rag_set_updated_at();

    -- Chunks: one row per (document, ordinal, embedding model version) so retries upsert and a
    -- re-embedding can write a new version beside the serving one.
    CREATE TABLE chunks (
        id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        document_id             uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
        tenant                  text NOT NULL,
        ordinal                 integer NOT NULL CHECK (ordinal >= 0),
        text                    text NOT NULL,
        heading                 text,
        page                    integer CHECK (page IS NULL OR page >= 1),
        char_start              integer NOT NULL,
        char_end                integer NOT NULL,
        token_count             integer NOT NULL CHECK (token_count >= 0),
        embedding               vector(384),
        embedding_model_version text NOT NULL,
        tsv                     tsvector GENERATED ALWAYS AS
                                    (to_tsvector('english', coalesce(heading, '') || ' ' || text)) STORED,
        created_at              timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT chunks_span CHECK (char_start >= 0 AND char_end >= char_start),
        CONSTRAINT chunks_document_ordinal_version_key
            UNIQUE (document_id, ordinal, embedding_model_version)
    );
    CREATE INDEX chunks_embedding_hnsw_idx ON chunks
        USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
    CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);
    CREATE INDEX chunks_tenant_document_idx ON chunks (tenant, document_id);

    -- Embedding index versions: which model version serves, which is being built (shadow).
    CREATE TABLE embedding_indexes (
        model_version text PRIMARY KEY,
        dimension     integer NOT NULL CHECK (dimension > 0),
        status        text NOT NULL CHECK (status IN ('building', 'active', 'retired', 'failed')),
        quality       jsonb NOT NULL DEFAULT '{}'::jsonb,
        reason        text,
        created_at    timestamptz NOT NULL DEFAULT now(),
        activated_at  timestamptz
    );
    CREATE UNIQUE INDEX embedding_indexes_one_active_idx ON embedding_indexes ((true))
        WHERE status = 'active';

    -- Query history, partitioned by month; a default partition keeps rows that arrive before
    -- their month's partition exists (nothing is lost), and the function moves them over.
    CREATE TABLE query_history (
        id                      bigint GENERATED ALWAYS AS IDENTITY,
        created_at              timestamptz NOT NULL DEFAULT now(),
        tenant                  text NOT NULL,
        username                text,
        request_id              text,
        kind                    text NOT NULL CHECK (kind IN ('search', 'generate')),
        query                   text NOT NULL,
        top_k                   integer,
        result_count            integer NOT NULL DEFAULT 0,
        latency_ms              double precision NOT NULL,
        cache_hit               boolean NOT NULL DEFAULT false,
        embedding_model_version text,
        status                  text NOT NULL DEFAULT 'ok',
        PRIMARY KEY (id, created_at)
    ) PARTITION BY RANGE (created_at);
    CREATE TABLE query_history_default PARTITION OF query_history DEFAULT;
    CREATE INDEX query_history_tenant_created_idx ON query_history (tenant, created_at);

    CREATE FUNCTION rag_ensure_query_history_partition(month date) RETURNS text
    LANGUAGE plpgsql AS $$
    DECLARE
        lo   timestamptz := date_trunc('month', month)::date;
        hi   timestamptz := (date_trunc('month', month) + interval '1 month')::date;
        name text := format('query_history_y%sm%s', to_char(lo, 'YYYY'), to_char(lo, 'MM'));
    BEGIN
        IF to_regclass(name) IS NOT NULL THEN
            RETURN name;
        END IF;
        EXECUTE format('CREATE TABLE %I (LIKE query_history INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
        EXECUTE format(
            'WITH moved AS (DELETE FROM query_history_default
                            WHERE created_at >= %L AND created_at < %L RETURNING *)
             INSERT INTO %I SELECT * FROM moved', lo, hi, name);
        EXECUTE format('ALTER TABLE query_history ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       name, lo, hi);
        RETURN name;
    END $$;
    SELECT rag_ensure_query_history_partition(current_date);
    SELECT rag_ensure_query_history_partition((current_date + interval '1 month')::date);

    -- Model deployments: what MLflow version serves as which Triton version.
    CREATE TABLE model_deployments (
        id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        model_name       text NOT NULL,
        kind             text NOT NULL CHECK (kind IN ('embedder', 'reranker', 'generator')),
        registered_model text NOT NULL,
        mlflow_version   text NOT NULL,
        triton_version   integer CHECK (triton_version IS NULL OR triton_version >= 1),
        status           text NOT NULL CHECK (status IN ('deploying', 'serving', 'retired', 'failed')),
        error_reason     text,
        details          jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at       timestamptz NOT NULL DEFAULT now(),
        updated_at       timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX model_deployments_one_serving_idx ON model_deployments (model_name)
        WHERE status = 'serving';
    CREATE TRIGGER model_deployments_updated_at BEFORE UPDATE ON model_deployments
        FOR EACH ROW EXECUTE FUNCTION rag_set_updated_at();

    -- Backup catalogue (database dumps and model-repository snapshots).
    CREATE TABLE backups (
        id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind         text NOT NULL CHECK (kind IN ('database', 'model_repository')),
        bucket       text NOT NULL,
        object_key   text NOT NULL,
        size_bytes   bigint CHECK (size_bytes IS NULL OR size_bytes >= 0),
        sha256       char(64),
        status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'expired')),
        row_counts   jsonb NOT NULL DEFAULT '{}'::jsonb,
        error_reason text,
        started_at   timestamptz NOT NULL DEFAULT now(),
        finished_at  timestamptz,
        CONSTRAINT backups_object_key UNIQUE (bucket, object_key)
    );
    CREATE INDEX backups_kind_finished_idx ON backups (kind, finished_at DESC);
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE IF EXISTS backups;
    DROP TABLE IF EXISTS model_deployments;
    DROP FUNCTION IF EXISTS rag_ensure_query_history_partition(date);
    DROP TABLE IF EXISTS query_history CASCADE;
    DROP TABLE IF EXISTS embedding_indexes;
    DROP TABLE IF EXISTS chunks;
    DROP TABLE IF EXISTS documents;
    DROP TYPE IF EXISTS document_status;
    DROP TABLE IF EXISTS users;
    DROP TABLE IF EXISTS roles;
    DROP FUNCTION IF EXISTS rag_set_updated_at();
    """)
