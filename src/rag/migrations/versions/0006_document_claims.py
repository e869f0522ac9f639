"""A claim on a ``received`` document, so two workers never process it at once.

Two ingestion runs can be handed the same document (an upload triggers a run; the same bytes
uploaded again, or the sweeper, trigger another). Both saw ``received``; one moved it on, the
other's transition failed, and its retry path put the document back to ``received`` under the
first worker's feet: the document ended nowhere until the sweeper came. A worker now claims the
document first (``claimed_until`` in the future, set only while it is ``received`` and unclaimed);
a worker that cannot claim leaves it alone. Every statement that puts a document back to
``received`` clears the claim.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE documents ADD COLUMN claimed_until timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE documents DROP COLUMN IF EXISTS claimed_until")
