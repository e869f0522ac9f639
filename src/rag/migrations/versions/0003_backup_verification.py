"""Backup catalogue: per-table checksums at dump time and the details of dumps and drills.

``row_counts`` alone cannot tell a restore that lost rows from one that holds other rows; a
checksum of each table's primary keys, taken in the dump's own snapshot, can. ``details`` keeps
what an operator wants next to a backup: the tool versions, timings, and the last restore drill.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE backups
        ADD COLUMN checksums jsonb NOT NULL DEFAULT '{}'::jsonb,
        ADD COLUMN details   jsonb NOT NULL DEFAULT '{}'::jsonb;
    CREATE INDEX backups_kind_status_started_idx ON backups (kind, status, started_at DESC);
    """)


def downgrade() -> None:
    op.execute("""
    DROP INDEX IF EXISTS backups_kind_status_started_idx;
    ALTER TABLE backups DROP COLUMN IF EXISTS details, DROP COLUMN IF EXISTS checksums;
    """)
