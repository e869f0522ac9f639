"""BM25 inside PostgreSQL: postings per (tenant, term, chunk), term and corpus statistics.

``ts_rank`` ranks natural-language queries poorly (shared/NOTES.md: 0.60 nDCG@10 on SciFact vs
0.69 for BM25 over a postings table). Postings are written with the chunks (same transaction,
from the chunk's generated tsvector); the statistics are refreshed per ingested batch by
``rag_refresh_bm25_stats()``, which is cheaper than per-row triggers that serialize writers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE chunk_terms (
        tenant   text NOT NULL,
        term     text NOT NULL,
        chunk_id bigint NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
        tf       integer NOT NULL CHECK (tf > 0),
        dl       integer NOT NULL CHECK (dl > 0),
        PRIMARY KEY (tenant, term, chunk_id) INCLUDE (tf, dl)
    );
    CREATE INDEX chunk_terms_chunk_idx ON chunk_terms (chunk_id);

    CREATE TABLE term_stats (
        term text PRIMARY KEY,
        df   integer NOT NULL CHECK (df > 0)
    );
    CREATE TABLE corpus_stats (
        id        integer PRIMARY KEY CHECK (id = 1),
        n         bigint NOT NULL,
        total_len bigint NOT NULL,
        refreshed_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO corpus_stats (id, n, total_len) VALUES (1, 0, 0);

    -- Postings of one chunk from its tsvector: tf = positions of the lexeme, dl = all positions.
    CREATE FUNCTION rag_index_chunk_terms(chunk_ids bigint[]) RETURNS void LANGUAGE sql AS $$
        INSERT INTO chunk_terms (tenant, term, chunk_id, tf, dl)
        SELECT c.tenant, t.lexeme, c.id, t.tf, sum(t.tf) OVER (PARTITION BY c.id)
        FROM chunks c,
             LATERAL (SELECT u.lexeme, greatest(coalesce(array_length(u.positions, 1), 1), 1) AS tf
                      FROM unnest(c.tsv) AS u) AS t
        WHERE c.id = ANY(chunk_ids)
        ON CONFLICT DO NOTHING
    $$;

    CREATE FUNCTION rag_refresh_bm25_stats() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        -- One refresher at a time; readers keep the old statistics until commit.
        PERFORM pg_advisory_xact_lock(hashtext('rag_refresh_bm25_stats'));
        DELETE FROM term_stats;
        INSERT INTO term_stats (term, df) SELECT term, count(*) FROM chunk_terms GROUP BY term;
        UPDATE corpus_stats SET
            n = (SELECT count(DISTINCT chunk_id) FROM chunk_terms),
            total_len = coalesce((SELECT sum(dl) FROM (SELECT DISTINCT chunk_id, dl FROM chunk_terms) d), 0),
            refreshed_at = now()
        WHERE id = 1;
    END $$;

    -- A tenant's generation changes with any change to its documents; cached search results
    -- carry it in their keys, so a delete or re-ingest never serves stale results.
    CREATE TABLE tenant_generations (
        tenant     text PRIMARY KEY,
        generation bigint NOT NULL DEFAULT 1
    );
    CREATE FUNCTION rag_bump_tenant_generation() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO tenant_generations (tenant)
            SELECT DISTINCT tenant FROM new_rows ORDER BY tenant
            ON CONFLICT (tenant) DO UPDATE SET generation = tenant_generations.generation + 1;
        END IF;
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            INSERT INTO tenant_generations (tenant)
            SELECT DISTINCT tenant FROM old_rows ORDER BY tenant
            ON CONFLICT (tenant) DO UPDATE SET generation = tenant_generations.generation + 1;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER documents_generation_insert AFTER INSERT ON documents
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rag_bump_tenant_generation();
    CREATE TRIGGER documents_generation_update AFTER UPDATE ON documents
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION rag_bump_tenant_generation();
    CREATE TRIGGER documents_generation_delete AFTER DELETE ON documents
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION rag_bump_tenant_generation();

    SELECT rag_index_chunk_terms(array_agg(id)) FROM chunks;
    SELECT rag_refresh_bm25_stats();
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER IF EXISTS documents_generation_insert ON documents;
    DROP TRIGGER IF EXISTS documents_generation_update ON documents;
    DROP TRIGGER IF EXISTS documents_generation_delete ON documents;
    DROP FUNCTION IF EXISTS rag_bump_tenant_generation();
    DROP TABLE IF EXISTS tenant_generations;
    DROP FUNCTION IF EXISTS rag_refresh_bm25_stats();
    DROP FUNCTION IF EXISTS rag_index_chunk_terms(bigint[]);
    DROP TABLE IF EXISTS corpus_stats;
    DROP TABLE IF EXISTS term_stats;
    DROP TABLE IF EXISTS chunk_terms;
    """)
