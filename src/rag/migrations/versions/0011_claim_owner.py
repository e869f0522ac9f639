"""Who holds a document's claim, so that a retry of the same task takes its claims back.

A worker whose database died under it (or that was killed) cannot give its claims back; they
ran until ``claimed_until`` (the pipeline's 15-minute deadline) and only the sweeper took the
documents back after that. The claim now names its owner (Airflow's task instance: DAG, run,
task and map index; a retry is the same task instance), and the owner's next try releases what
its dead try held before it starts.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE documents ADD COLUMN IF NOT EXISTS claimed_by text")


def downgrade() -> None:
    op.execute("ALTER TABLE documents DROP COLUMN IF EXISTS claimed_by")
