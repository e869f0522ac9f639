"""Notify listeners when what search results depend on changes.

The API keeps the active embedding model version and each tenant's document generation in
memory instead of reading them on every search (the cache key needs both). It may do so only
while it hears every change: a row-level trigger on ``tenant_generations`` sends
``tenant:<name>`` and a statement-level trigger on ``embedding_indexes`` sends ``index`` on the
channel ``rag_search_changes``. PostgreSQL delivers them at commit, in commit order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE FUNCTION rag_notify_tenant_generation() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('rag_search_changes', 'tenant:' || NEW.tenant);
        RETURN NULL;
    END $$;
    CREATE TRIGGER tenant_generations_notify AFTER INSERT OR UPDATE ON tenant_generations
        FOR EACH ROW EXECUTE FUNCTION rag_notify_tenant_generation();

    CREATE FUNCTION rag_notify_everything() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('rag_search_changes', TG_ARGV[0]);
        RETURN NULL;
    END $$;
    CREATE TRIGGER embedding_indexes_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON embedding_indexes
        FOR EACH STATEMENT EXECUTE FUNCTION rag_notify_everything('index');
    CREATE TRIGGER tenant_generations_truncate_notify AFTER DELETE OR TRUNCATE ON tenant_generations
        FOR EACH STATEMENT EXECUTE FUNCTION rag_notify_everything('all');
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER IF EXISTS tenant_generations_truncate_notify ON tenant_generations;
    DROP TRIGGER IF EXISTS embedding_indexes_notify ON embedding_indexes;
    DROP TRIGGER IF EXISTS tenant_generations_notify ON tenant_generations;
    DROP FUNCTION IF EXISTS rag_notify_everything();
    DROP FUNCTION IF EXISTS rag_notify_tenant_generation();
    """)
