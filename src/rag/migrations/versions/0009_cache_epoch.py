"""A global cache epoch, part of every search cache key, that a restore renews.

A restore replaces the whole database, so the tenant generations and the index version that
the cache keys carry can go back to values that earlier, different results were cached under.
The one-row table ``cache_epoch`` holds a random value the API reads with them
(``SearchVersions``); a restore writes a fresh one before its database goes live, so nothing
cached before it is found again. A random value never repeats, so rolling the database back
cannot bring an old epoch back either. Changing it notifies ``all`` on ``rag_search_changes``
(the function of migration 0004), so API processes re-read it at once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE IF NOT EXISTS cache_epoch (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        epoch text NOT NULL,
        changed_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO cache_epoch (epoch) VALUES (gen_random_uuid()::text) ON CONFLICT (singleton) DO NOTHING;
    DROP TRIGGER IF EXISTS cache_epoch_notify ON cache_epoch;
    CREATE TRIGGER cache_epoch_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cache_epoch
        FOR EACH STATEMENT EXECUTE FUNCTION rag_notify_everything('all');
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER IF EXISTS cache_epoch_notify ON cache_epoch;
    DROP TABLE IF EXISTS cache_epoch;
    """)
