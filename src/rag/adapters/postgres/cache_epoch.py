"""The global cache epoch (migration 0009): one random value in every search cache key.

:func:`renew` gives a database a fresh one; a restore calls it before the restored database
goes live, so no cache level serves what was cached before (the API reads the epoch with the
index version and tenant generation, :mod:`rag.adapters.postgres.search_versions`).
"""

from __future__ import annotations

import uuid

import psycopg

from rag.adapters.postgres.errors import database_errors


def renew(conninfo: str) -> str | None:
    """A fresh epoch in the database at ``conninfo``; None if it has no ``cache_epoch`` table
    (a database not migrated to 0009, whose API would not run either)."""
    epoch = uuid.uuid4().hex
    with database_errors(), psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SELECT to_regclass('cache_epoch') IS NOT NULL").fetchone()
        if row is None or not row[0]:
            return None
        conn.execute(
            "INSERT INTO cache_epoch (singleton, epoch) VALUES (true, %s)"
            " ON CONFLICT (singleton) DO UPDATE SET epoch = EXCLUDED.epoch, changed_at = now()",
            (epoch,),
        )
    return epoch
