"""The backup catalogue (``backups``) and the per-table inventory a restore is checked against.

A row moves ``running -> succeeded | failed``, and ``-> expired`` once retention has deleted its
object. Starting a backup is an upsert on (bucket, object key), so a retried task reuses its row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from rag.core.errors import NotFound

DATABASE = "database"
MODEL_REPOSITORY = "model_repository"


@dataclass(frozen=True)
class BackupRecord:
    id: int
    kind: str
    bucket: str
    object_key: str
    size_bytes: int | None
    sha256: str | None
    status: str
    row_counts: dict[str, int]
    checksums: dict[str, str]
    details: dict[str, Any]
    error_reason: str | None
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> BackupRecord:
        values = {f.name: row[f.name] for f in dataclasses.fields(cls)}
        values["sha256"] = values["sha256"].strip() if values["sha256"] else None
        return cls(**values)


@dataclass(frozen=True)
class TableState:
    rows: int
    checksum: str


# Tables of the RAG schema (partitions are counted through their parent). The checksum is the
# sum of a 60-bit md5 prefix of each primary key: order-independent, so no sort and constant
# memory, yet a lost, extra or renumbered row changes it.
_TABLES = """
    SELECT c.relname,
           coalesce((SELECT array_agg(a.attname ORDER BY k.ord)
                     FROM pg_index i
                     CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                     WHERE i.indrelid = c.oid AND i.indisprimary), '{}') AS pk
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
    ORDER BY c.relname
"""


def table_inventory(conn: psycopg.Connection[Any]) -> dict[str, TableState]:
    """Row count and primary-key checksum of every RAG table, in ``conn``'s snapshot."""
    inventory = {}
    for name, pk in conn.execute(_TABLES).fetchall():
        keyed = sql.SQL("ROW({})").format(sql.SQL(", ").join(map(sql.Identifier, pk))) if pk else sql.SQL("t")
        row = conn.execute(
            sql.SQL(
                "SELECT count(*),"
                " coalesce(sum(('x' || left(md5(({key})::text), 15))::bit(60)::bigint::numeric), 0)"
                " FROM {table} AS t"
            ).format(key=keyed, table=sql.Identifier(name))
        ).fetchone()
        assert row is not None
        inventory[str(name)] = TableState(int(row[0]), str(row[1]))
    return inventory


def compare_inventories(expected: Mapping[str, TableState], actual: Mapping[str, TableState]) -> list[str]:
    """What differs between two inventories, one line per table (empty: identical)."""
    problems = []
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table), actual.get(table)
        if want is None:
            problems.append(f"{table}: not in the backup's inventory")
        elif got is None:
            problems.append(f"{table}: missing after the restore")
        elif want.rows != got.rows:
            problems.append(f"{table}: {got.rows} rows, expected {want.rows}")
        elif want.checksum != got.checksum:
            problems.append(f"{table}: primary-key checksum differs ({want.rows} rows)")
    return problems


def copy_catalogue(src: psycopg.Connection[Any], dst: psycopg.Connection[Any]) -> None:
    """Replace ``dst``'s ``backups`` rows with ``src``'s, in one transaction of ``dst`` (the
    columns both have: the two databases may be at different migrations), and move its id
    sequence past them."""
    columns_of = (
        "SELECT array_agg(attname::text) FROM pg_attribute"
        " WHERE attrelid = 'backups'::regclass AND attnum > 0 AND NOT attisdropped"
    )
    src_cols = src.execute(columns_of).fetchone()
    dst_cols = dst.execute(columns_of).fetchone()
    assert src_cols is not None and dst_cols is not None
    names = sql.SQL(", ").join(map(sql.Identifier, sorted(set(src_cols[0]) & set(dst_cols[0]))))
    with dst.transaction():
        dst.execute("DELETE FROM backups")
        with (
            src.cursor().copy(sql.SQL("COPY (SELECT {} FROM backups) TO STDOUT").format(names)) as out,
            dst.cursor().copy(sql.SQL("COPY backups ({}) FROM STDIN").format(names)) as into,
        ):
            for block in out:
                into.write(block)
        dst.execute(
            "SELECT setval(pg_get_serial_sequence('backups', 'id'), coalesce(max(id), 0) + 1, false)"
            " FROM backups"
        )


class BackupCatalogue:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def _one(
        self, query: str | sql.Composed, params: Sequence[Any] | Mapping[str, Any]
    ) -> BackupRecord | None:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(query, params).fetchone()
        return BackupRecord.of_row(row) if row else None

    def _many(self, query: str, params: Sequence[Any] | Mapping[str, Any]) -> list[BackupRecord]:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return [BackupRecord.of_row(r) for r in cur.execute(query, params).fetchall()]

    def start(self, kind: str, bucket: str, object_key: str) -> BackupRecord:
        """Record a backup as running (a retry of the same object starts its row over)."""
        record = self._one(
            """INSERT INTO backups (kind, bucket, object_key, status)
               VALUES (%s, %s, %s, 'running')
               ON CONFLICT (bucket, object_key) DO UPDATE
                   SET status = 'running', error_reason = NULL, started_at = now(), finished_at = NULL
               RETURNING *""",
            (kind, bucket, object_key),
        )
        assert record is not None
        return record

    def succeed(
        self,
        backup_id: int,
        *,
        size_bytes: int,
        sha256: str,
        inventory: Mapping[str, TableState] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> BackupRecord:
        inventory = inventory or {}
        record = self._one(
            """UPDATE backups SET status = 'succeeded', size_bytes = %s, sha256 = %s, row_counts = %s,
                      checksums = %s, details = details || %s, finished_at = now(), error_reason = NULL
               WHERE id = %s RETURNING *""",
            (
                size_bytes,
                sha256,
                Jsonb({t: s.rows for t, s in inventory.items()}),
                Jsonb({t: s.checksum for t, s in inventory.items()}),
                Jsonb(dict(details or {})),
                backup_id,
            ),
        )
        if record is None:
            raise NotFound(f"backup {backup_id} is not in the catalogue")
        return record

    def fail(self, backup_id: int, reason: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE backups SET status = 'failed', error_reason = %s, finished_at = now() WHERE id = %s",
                (reason[:2000], backup_id),
            )

    def get(self, bucket: str, object_key: str) -> BackupRecord:
        record = self._one(
            "SELECT * FROM backups WHERE bucket = %s AND object_key = %s", (bucket, object_key)
        )
        if record is None:
            raise NotFound(f"backup s3://{bucket}/{object_key} is not in the catalogue")
        return record

    def latest(self, kind: str, bucket: str) -> BackupRecord | None:
        """The newest succeeded backup of ``kind``."""
        return self._one(
            """SELECT * FROM backups WHERE kind = %s AND bucket = %s AND status = 'succeeded'
               ORDER BY started_at DESC, id DESC LIMIT 1""",
            (kind, bucket),
        )

    def history(self, kind: str, bucket: str) -> list[BackupRecord]:
        """Every backup of ``kind``, newest first."""
        return self._many(
            "SELECT * FROM backups WHERE kind = %s AND bucket = %s ORDER BY started_at DESC, id DESC",
            (kind, bucket),
        )

    def abandon_running(self, kind: str, *, older_than_s: float) -> list[BackupRecord]:
        """Mark as failed the backups still ``running`` long after any run could have finished."""
        return self._many(
            """UPDATE backups SET status = 'failed', finished_at = now(),
                      error_reason = 'abandoned: still running after ' || %s || ' s (the task died?)'
               WHERE kind = %s AND status = 'running' AND started_at < now() - make_interval(secs => %s)
               RETURNING *""",
            (int(older_than_s), kind, older_than_s),
        )

    def mark_expired(self, backup_id: int) -> None:
        with self.pool.connection() as conn:
            conn.execute("UPDATE backups SET status = 'expired' WHERE id = %s", (backup_id,))

    def record_drill(self, backup_id: int, result: Mapping[str, Any]) -> None:
        """Keep the outcome of the latest restore drill of a backup next to it."""
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE backups SET details = details || jsonb_build_object('last_drill', %s::jsonb)"
                " WHERE id = %s",
                (Jsonb(dict(result)), backup_id),
            )

    def purge_expired(self, *, older_than_days: int) -> int:
        """Delete catalogue rows of backups expired (or failed) more than ``older_than_days`` ago."""
        with self.pool.connection() as conn:
            cur = conn.execute(
                """DELETE FROM backups WHERE status IN ('expired', 'failed')
                   AND started_at < now() - make_interval(days => %s)""",
                (older_than_days,),
            )
            return cur.rowcount
