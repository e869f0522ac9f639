"""Outage retries counted apart from a document's attempts.

``attempts`` counts the claims of a document whose worker may have died (the sweeper and
``claim`` quarantine it at the cap: 'worker died during parsing 3 times'). A dependency that is
down (Triton, PostgreSQL, object storage) is no fault of the document: the pipeline gives such a
claim's attempt back and counts the retry in ``outage_retries`` instead, so an outage never
quarantines documents. The column is reset with ``attempts`` when new content is received.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE documents ADD COLUMN IF NOT EXISTS outage_retries integer NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("ALTER TABLE documents DROP COLUMN IF EXISTS outage_retries")
