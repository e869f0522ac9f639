"""BM25 statistics per tenant and embedding model version.

``term_stats`` and ``corpus_stats`` counted every tenant's chunks (and, during a re-embedding,
both versions' copies): one tenant's uploads changed another tenant's scores, a cross-tenant
signal. ``lexical_term_stats`` (document frequency per tenant, version and term) and
``lexical_corpus_stats`` (chunk count and total length per tenant and version) replace them;
search reads only its caller's tenant and the active version.

``rag_refresh_bm25_stats(tenants, versions)`` recomputes them from the postings, for the given
tenants and versions only (NULL: all), and writes only the rows that changed. A tenant whose
statistics changed gets a new generation, so its cached search results (keyed by generation)
are not served with the old scores. The upgrade backfills the statistics from the postings.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

REFRESH = """
CREATE OR REPLACE FUNCTION rag_refresh_bm25_stats(tenants text[] DEFAULT NULL, versions text[] DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    changed text[];
    more text[];
BEGIN
    -- One refresher at a time; readers keep the old statistics until commit.
    PERFORM pg_advisory_xact_lock(hashtext('rag_refresh_bm25_stats'));

    WITH fresh AS (
        SELECT p.tenant, c.embedding_model_version, p.term, count(*)::integer AS df
        FROM chunk_terms p JOIN chunks c ON c.id = p.chunk_id
        WHERE (tenants IS NULL OR p.tenant = ANY(tenants))
          AND (versions IS NULL OR c.embedding_model_version = ANY(versions))
        GROUP BY 1, 2, 3
    ), gone AS (
        DELETE FROM lexical_term_stats s
        WHERE (tenants IS NULL OR s.tenant = ANY(tenants))
          AND (versions IS NULL OR s.embedding_model_version = ANY(versions))
          AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.tenant = s.tenant
                          AND f.embedding_model_version = s.embedding_model_version AND f.term = s.term)
        RETURNING s.tenant
    ), put AS (
        INSERT INTO lexical_term_stats AS s (tenant, embedding_model_version, term, df)
        SELECT tenant, embedding_model_version, term, df FROM fresh
        ON CONFLICT (tenant, embedding_model_version, term) DO UPDATE SET df = EXCLUDED.df
            WHERE s.df <> EXCLUDED.df
        RETURNING s.tenant
    )
    SELECT array_agg(DISTINCT tenant) INTO changed
    FROM (SELECT tenant FROM gone UNION ALL SELECT tenant FROM put) t;

    -- A chunk's length (dl) is on each of its postings.
    WITH fresh AS (
        SELECT c.tenant, c.embedding_model_version, count(*) AS n, sum(d.dl) AS total_len
        FROM (SELECT DISTINCT chunk_id, dl FROM chunk_terms
              WHERE tenants IS NULL OR tenant = ANY(tenants)) d
        JOIN chunks c ON c.id = d.chunk_id
        WHERE versions IS NULL OR c.embedding_model_version = ANY(versions)
        GROUP BY 1, 2
    ), gone AS (
        DELETE FROM lexical_corpus_stats s
        WHERE (tenants IS NULL OR s.tenant = ANY(tenants))
          AND (versions IS NULL OR s.embedding_model_version = ANY(versions))
          AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.tenant = s.tenant
                          AND f.embedding_model_version = s.embedding_model_version)
        RETURNING s.tenant
    ), put AS (
        INSERT INTO lexical_corpus_stats AS s (tenant, embedding_model_version, n, total_len)
        SELECT tenant, embedding_model_version, n, total_len FROM fresh
        ON CONFLICT (tenant, embedding_model_version) DO UPDATE
            SET n = EXCLUDED.n, total_len = EXCLUDED.total_len, updated_at = now()
            WHERE (s.n, s.total_len) <> (EXCLUDED.n, EXCLUDED.total_len)
        RETURNING s.tenant
    )
    SELECT array_agg(DISTINCT tenant) INTO more
    FROM (SELECT tenant FROM gone UNION ALL SELECT tenant FROM put) t;

    -- New scores: cached results of these tenants must not be served (same order as the
    -- documents triggers take these rows, so the two never deadlock).
    INSERT INTO tenant_generations (tenant)
    SELECT DISTINCT t FROM unnest(coalesce(changed, '{}') || coalesce(more, '{}')) AS t ORDER BY t
    ON CONFLICT (tenant) DO UPDATE SET generation = tenant_generations.generation + 1;
END $$;
"""

# Revision 0002's global statistics, restored by the downgrade.
GLOBAL_REFRESH = """
CREATE OR REPLACE FUNCTION rag_refresh_bm25_stats() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('rag_refresh_bm25_stats'));
    DELETE FROM term_stats;
    INSERT INTO term_stats (term, df) SELECT term, count(*) FROM chunk_terms GROUP BY term;
    UPDATE corpus_stats SET
        n = (SELECT count(DISTINCT chunk_id) FROM chunk_terms),
        total_len = coalesce((SELECT sum(dl) FROM (SELECT DISTINCT chunk_id, dl FROM chunk_terms) d), 0),
        refreshed_at = now()
    WHERE id = 1;
END $$;
"""


def upgrade() -> None:
    op.execute(
        """
    CREATE TABLE IF NOT EXISTS lexical_term_stats (
        tenant                  text NOT NULL,
        embedding_model_version text NOT NULL,
        term                    text NOT NULL,
        df                      integer NOT NULL CHECK (df > 0),
        PRIMARY KEY (tenant, embedding_model_version, term) INCLUDE (df)
    );
    CREATE TABLE IF NOT EXISTS lexical_corpus_stats (
        tenant                  text NOT NULL,
        embedding_model_version text NOT NULL,
        n                       bigint NOT NULL CHECK (n > 0),
        total_len               bigint NOT NULL CHECK (total_len >= 0),
        updated_at              timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, embedding_model_version)
    );
    DROP FUNCTION IF EXISTS rag_refresh_bm25_stats();
    DROP TABLE IF EXISTS term_stats;
    DROP TABLE IF EXISTS corpus_stats;
    """
    )
    op.execute(REFRESH)
    op.execute("SELECT rag_refresh_bm25_stats()")  # the backfill, from the postings


def downgrade() -> None:
    op.execute(
        """
    DROP FUNCTION IF EXISTS rag_refresh_bm25_stats(text[], text[]);
    DROP TABLE IF EXISTS lexical_term_stats;
    DROP TABLE IF EXISTS lexical_corpus_stats;
    CREATE TABLE IF NOT EXISTS term_stats (
        term text PRIMARY KEY,
        df   integer NOT NULL CHECK (df > 0)
    );
    CREATE TABLE IF NOT EXISTS corpus_stats (
        id        integer PRIMARY KEY CHECK (id = 1),
        n         bigint NOT NULL,
        total_len bigint NOT NULL,
        refreshed_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO corpus_stats (id, n, total_len) VALUES (1, 0, 0) ON CONFLICT DO NOTHING;
    """
    )
    op.execute(GLOBAL_REFRESH)
    op.execute("SELECT rag_refresh_bm25_stats()")
