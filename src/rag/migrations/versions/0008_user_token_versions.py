"""Per-user token version: revoking access and refresh tokens.

Every token carries the version its user had when it was issued (claim ``ver``); the API
refuses a token whose version is below the user's current one. A row-level trigger raises
``users.token_version`` when an account is disabled or changes role or tenant (whoever runs
the UPDATE: the CLI, an admin's SQL), and ``rag users revoke`` raises it directly. Every change
is sent as ``<version>:<username>`` on the channel ``rag_token_versions``, at commit, so each
API process can keep the versions in memory.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE users ADD COLUMN IF NOT EXISTS token_version integer NOT NULL DEFAULT 0
        CHECK (token_version >= 0);

    CREATE OR REPLACE FUNCTION rag_users_token_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.role IS DISTINCT FROM OLD.role
           OR NEW.tenant IS DISTINCT FROM OLD.tenant
           OR (NEW.disabled AND NOT OLD.disabled) THEN
            NEW.token_version := GREATEST(NEW.token_version, OLD.token_version + 1);
        END IF;
        IF NEW.token_version IS DISTINCT FROM OLD.token_version THEN
            PERFORM pg_notify('rag_token_versions', NEW.token_version || ':' || NEW.username);
        END IF;
        RETURN NEW;
    END $$;

    DROP TRIGGER IF EXISTS users_token_version ON users;
    CREATE TRIGGER users_token_version BEFORE UPDATE ON users
        FOR EACH ROW EXECUTE FUNCTION rag_users_token_version();
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER IF EXISTS users_token_version ON users;
    DROP FUNCTION IF EXISTS rag_users_token_version();
    ALTER TABLE users DROP COLUMN IF EXISTS token_version;
    """)
