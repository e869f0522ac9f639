"""Tokens of a deleted account end with it: deleted usernames keep their token version.

Migration 0008 raises an account's token version when it is disabled or changes role or tenant,
but a row deleted from ``users`` (by an admin's SQL, or a restore of an older dump) took its
version with it: every API process then read version 0 for the name, and the account's tokens
kept working until they expired. A deleted account's name now stays in ``retired_usernames``
with the version after its last one, sent on ``rag_token_versions`` like any raise, so every
token issued to it is refused. An account created again under the same name starts at that
version (its old tokens stay refused) and takes the name out of the table.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE IF NOT EXISTS retired_usernames (
        username text PRIMARY KEY,
        token_version integer NOT NULL CHECK (token_version > 0),
        retired_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE OR REPLACE FUNCTION rag_users_retire() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO retired_usernames (username, token_version)
            VALUES (OLD.username, OLD.token_version + 1)
            ON CONFLICT (username) DO UPDATE
                SET token_version = GREATEST(retired_usernames.token_version, EXCLUDED.token_version),
                    retired_at = now();
        PERFORM pg_notify('rag_token_versions', (OLD.token_version + 1) || ':' || OLD.username);
        RETURN OLD;
    END $$;

    DROP TRIGGER IF EXISTS users_retire ON users;
    CREATE TRIGGER users_retire AFTER DELETE ON users
        FOR EACH ROW EXECUTE FUNCTION rag_users_retire();

    CREATE OR REPLACE FUNCTION rag_users_reuse() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        retired integer;
    BEGIN
        DELETE FROM retired_usernames WHERE username = NEW.username RETURNING token_version INTO retired;
        IF retired IS NOT NULL AND retired > NEW.token_version THEN
            NEW.token_version := retired;
        END IF;
        RETURN NEW;
    END $$;

    DROP TRIGGER IF EXISTS users_reuse ON users;
    CREATE TRIGGER users_reuse BEFORE INSERT ON users
        FOR EACH ROW EXECUTE FUNCTION rag_users_reuse();
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER IF EXISTS users_reuse ON users;
    DROP FUNCTION IF EXISTS rag_users_reuse();
    DROP TRIGGER IF EXISTS users_retire ON users;
    DROP FUNCTION IF EXISTS rag_users_retire();
    DROP TABLE IF EXISTS retired_usernames;
    """)
