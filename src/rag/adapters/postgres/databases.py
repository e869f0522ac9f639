"""Whole databases, through a privileged (admin) connection: create one for a restore, drop it,
and swap it in for the live one by renaming. psycopg's errors end here, as
:mod:`rag.core.errors` that say what to fix.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from rag.adapters.postgres.errors import database_errors
from rag.core.errors import FailedPrecondition

log = logging.getLogger(__name__)

ADMIN_HINT = (
    "restoring needs a PostgreSQL role that may create databases and the vector extension "
    "(a superuser): configure the admin connection"
)


def admin_connect(dsn: str) -> psycopg.Connection[Any]:
    """An autocommit connection with the admin role (use it in a ``with`` block)."""
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise FailedPrecondition(f"cannot connect with the admin connection: {exc}".strip()) from None


def exists(conn: psycopg.Connection[Any], name: str) -> bool:
    with database_errors():
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def recreate(conn: psycopg.Connection[Any], name: str, owner: str) -> None:
    """An empty ``name`` owned by ``owner``; an existing one must already be ``owner``'s."""
    with database_errors():
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if row is not None and row[0] != owner:
            raise FailedPrecondition(
                f"database {name!r} exists and belongs to {row[0]!r}, not to the RAG role "
                f"{owner!r}: refusing to replace it"
            )
        try:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                    sql.Identifier(name), sql.Identifier(owner)
                )
            )
        except pg_errors.InsufficientPrivilege as exc:
            raise FailedPrecondition(f"{ADMIN_HINT} ({exc})".strip()) from None


def drop(conn: psycopg.Connection[Any], name: str) -> None:
    with database_errors():
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def swap(conn: psycopg.Connection[Any], *, staging: str, live: str, previous: str) -> None:
    """Rename ``live`` to ``previous`` and ``staging`` to ``live``, ending every session of
    both (they would block the renames). ``live`` is put back if the second rename fails."""
    live_id, staging_id, previous_id = (sql.Identifier(n) for n in (live, staging, previous))
    with database_errors():
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(live_id))
        try:
            for attempt in range(10):
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
                    ([live, staging],),
                )
                try:
                    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(live_id, previous_id))
                    break
                except pg_errors.ObjectInUse:
                    if attempt == 9:
                        raise FailedPrecondition(
                            f"database {live!r} stayed in use while it was being replaced; "
                            "stop its clients and restore again"
                        ) from None
                    time.sleep(0.5)
            try:
                conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(staging_id, live_id))
            except psycopg.Error:
                conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(previous_id, live_id))
                raise
        finally:
            current = previous_id if exists(conn, previous) else live_id
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(current))
