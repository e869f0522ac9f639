"""A covering index for the chunks of one tenant and one embedding model version.

BM25 scores postings first, then keeps the chunks of the caller's tenant and the active model
version. Without this index PostgreSQL hashes every chunk row of the table (wide rows: text and
vector), 5.6 of the 7.7 ms a SciFact query took; with it, an index-only scan (0.8 ms). Built
CONCURRENTLY so a live table is not locked while it builds.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS chunks_tenant_version_id_idx"
            " ON chunks (tenant, embedding_model_version, id)"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS chunks_tenant_version_id_idx")
