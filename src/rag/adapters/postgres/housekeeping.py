"""Database housekeeping: ``query_history``'s monthly partitions and their retention, and
``VACUUM (ANALYZE)`` of the RAG tables (for rag.operations' maintenance, cleanup and restore)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)


def rag_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """The RAG schema's tables the connected role owns (partition parents cover their partitions)."""
    rows = conn.execute(
        """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND pg_has_role(c.relowner, 'USAGE')
        ORDER BY c.relname
        """
    ).fetchall()
    return [str(r[0]) for r in rows]


def vacuum_analyze(database_url: str, tables: Iterable[str] | None = None) -> dict[str, float]:
    """``VACUUM (ANALYZE)`` each RAG table (outside a transaction, no statement timeout);
    returns the seconds per table. The postings' index-only scans need the visibility map."""
    seconds: dict[str, float] = {}
    with psycopg.connect(
        database_url, autocommit=True, connect_timeout=10, options="-c statement_timeout=0"
    ) as conn:
        for table in tables if tables is not None else rag_tables(conn):
            began = time.monotonic()
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
            seconds[table] = round(time.monotonic() - began, 3)
    log.info("VACUUM ANALYZE: %s", seconds)
    return seconds


def ensure_query_history_partitions(conn: psycopg.Connection[Any], *, today: date | None = None) -> list[str]:
    """This month's and next month's ``query_history`` partitions (idempotent)."""
    today = today or date.today()
    following = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    names = []
    for month in (today.replace(day=1), following):
        row = conn.execute("SELECT rag_ensure_query_history_partition(%s)", (month,)).fetchone()
        assert row is not None
        names.append(str(row[0]))
    log.info("query_history partitions ensured: %s", names)
    return names


@dataclass(frozen=True)
class HistoryRemoved:
    rows: int
    partitions: int


def delete_query_history_before(pool: ConnectionPool, *, days: int) -> HistoryRemoved:
    """Remove ``query_history`` older than ``days``: whole monthly partitions that end before the
    cutoff are dropped (cheap, no bloat); rows in the partition that straddles the cutoff and in
    the default partition are deleted."""
    rows = partitions = 0
    with pool.connection() as conn:
        names = conn.execute(
            """
            SELECT c.relname FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'query_history'::regclass
              AND c.relname ~ '^query_history_y[0-9]{4}m[0-9]{2}$'
              AND (to_date(substring(c.relname from 16 for 4) || substring(c.relname from 21 for 2), 'YYYYMM')
                   + interval '1 month') <= now() - make_interval(days => %s)
            """,
            (days,),
        ).fetchall()
        for (name,) in names:
            with conn.transaction():
                count = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
                ).fetchone()
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
            partitions += 1
            rows += int(count[0]) if count else 0
        deleted = conn.execute(
            "DELETE FROM query_history WHERE created_at < now() - make_interval(days => %s)", (days,)
        )
        rows += deleted.rowcount
    return HistoryRemoved(rows=rows, partitions=partitions)
