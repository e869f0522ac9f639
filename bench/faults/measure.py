"""What a cell measures in the database, read straight from PostgreSQL (one short connection per
question, so a measurement never holds a connection across an outage).

- lost: acknowledged upload ids with no ``documents`` row, and files of the cell's folder with
  no document of the tenant (a file's ``source_uri`` is its ``file://`` URI);
- duplicated chunk rows: rows beyond the first per (document, ordinal, embedding model version)
  in ``chunks`` (the columns of its unique key, migration 0001);
- non-terminal: documents of the tenant neither ``indexed`` nor ``quarantined``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from rag.adapters.postgres.errors import database_errors
from rag.core.errors import RagError
from rag.settings import Settings

TERMINAL = ("indexed", "quarantined")
# What a measurement raises while PostgreSQL is down: the driver's errors, translated as the
# product's adapters translate them (Unavailable, DeadlineExceeded).
DatabaseError = RagError


@contextmanager
def _connect(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    with (
        database_errors(),
        psycopg.connect(settings.DATABASE_URL, autocommit=True, connect_timeout=5) as conn,
    ):
        yield conn


def folder_uri(folder: Path) -> str:
    return folder.resolve().as_uri().rstrip("/") + "/"


def folder_document_ids(settings: Settings, tenant: str, folder: Path) -> list[str]:
    with _connect(settings) as conn:
        rows = conn.execute(
            "SELECT id FROM documents WHERE tenant = %s AND starts_with(source_uri, %s)",
            (tenant, folder_uri(folder)),
        ).fetchall()
    return [str(r[0]) for r in rows]


def unfinished(settings: Settings, ids: Sequence[str]) -> list[str]:
    """Those of ``ids`` that exist and are neither indexed nor quarantined."""
    if not ids:
        return []
    with _connect(settings) as conn:
        rows = conn.execute(
            "SELECT id FROM documents WHERE id = ANY(%s::uuid[]) AND status::text <> ALL(%s)",
            (list(ids), list(TERMINAL)),
        ).fetchall()
    return [str(r[0]) for r in rows]


def status_counts(settings: Settings, tenant: str) -> Counter[str]:
    with _connect(settings) as conn:
        rows = conn.execute(
            "SELECT status::text, count(*) FROM documents WHERE tenant = %s GROUP BY 1", (tenant,)
        ).fetchall()
    return Counter({status: int(n) for status, n in rows})


def non_terminal(settings: Settings, tenant: str) -> list[tuple[str, str, str, float | None]]:
    """(id, status, last error, seconds until its claim or deadline runs out) of each document
    of the tenant that is not terminal (what the sweeper waits for before it takes one back)."""
    with _connect(settings) as conn:
        rows = conn.execute(
            """
            SELECT id, status::text, coalesce(error_reason, ''),
                   extract(epoch FROM CASE WHEN status = 'received' THEN claimed_until
                                           ELSE deadline_at END - now())::float8
            FROM documents WHERE tenant = %s AND status::text <> ALL(%s) ORDER BY created_at
            """,
            (tenant, list(TERMINAL)),
        ).fetchall()
    return [(str(i), s, r, None if left is None else round(float(left), 1)) for i, s, r, left in rows]


def tenant_document_ids(settings: Settings, tenant: str) -> list[str]:
    with _connect(settings) as conn:
        rows = conn.execute("SELECT id FROM documents WHERE tenant = %s", (tenant,)).fetchall()
    return [str(r[0]) for r in rows]


@dataclass(frozen=True)
class Losses:
    uploads_acknowledged: int
    uploads_lost: list[str]  # acknowledged ids with no document row
    files: int
    files_lost: list[str]  # files of the folder with no document of the tenant

    @property
    def lost(self) -> int:
        return len(self.uploads_lost) + len(self.files_lost)


def missing(settings: Settings, ids: Sequence[str]) -> list[str]:
    """Those of ``ids`` with no ``documents`` row."""
    with _connect(settings) as conn:
        rows = conn.execute("SELECT id FROM documents WHERE id = ANY(%s::uuid[])", (list(ids),)).fetchall()
    present = {str(r[0]) for r in rows}
    return [i for i in ids if i not in present]


def losses(
    settings: Settings, tenant: str, acknowledged: Sequence[str], folder: Path, files: Sequence[str]
) -> Losses:
    with _connect(settings) as conn:
        uris = {
            str(r[0])
            for r in conn.execute(
                "SELECT source_uri FROM documents WHERE tenant = %s AND starts_with(source_uri, %s)",
                (tenant, folder_uri(folder)),
            ).fetchall()
        }
    base = folder_uri(folder)
    return Losses(
        uploads_acknowledged=len(acknowledged),
        uploads_lost=missing(settings, acknowledged),
        files=len(files),
        files_lost=[name for name in files if base + name not in uris],
    )


def duplicated_chunks(settings: Settings, tenant: str) -> int:
    """Chunk rows beyond the first per (document, ordinal, embedding model version)."""
    with _connect(settings) as conn:
        row = conn.execute(
            """
            SELECT coalesce(sum(n - 1), 0) FROM (
                SELECT count(*) AS n FROM chunks WHERE tenant = %s
                GROUP BY document_id, ordinal, embedding_model_version HAVING count(*) > 1
            ) AS dup
            """,
            (tenant,),
        ).fetchone()
    return int(row[0]) if row else 0


def chunk_count(settings: Settings, tenant: str) -> int:
    with _connect(settings) as conn:
        row = conn.execute("SELECT count(*) FROM chunks WHERE tenant = %s", (tenant,)).fetchone()
    return int(row[0]) if row else 0
