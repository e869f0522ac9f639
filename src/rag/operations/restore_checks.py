"""The checks of a restore: the dump against its catalogue entry before psql sees it, and the
restored database against the catalogue (tables) and against search (dense and BM25).

See :mod:`rag.operations.restore` for where each runs.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

import psycopg

from rag.adapters.objectstore import BlobStore
from rag.adapters.postgres.backups import BackupRecord, TableState, compare_inventories, table_inventory
from rag.core.errors import FailedPrecondition
from rag.settings import Settings

log = logging.getLogger(__name__)


def fetch_checked(
    blobs: BlobStore, backup: BackupRecord, into: IO[bytes], *, work_dir: Path | None = None
) -> None:
    """Download the dump into ``into``, counting and hashing it; refuse it unless its size
    and sha256 are the catalogue's. Nothing of it reaches psql before this returns."""
    key = backup.object_key
    if not backup.sha256 or backup.size_bytes is None:
        raise FailedPrecondition(
            f"backup {key} has no recorded sha256 and size, so it cannot be checked; "
            "restore a backup catalogued by backup_database"
        )
    free = shutil.disk_usage(work_dir or tempfile.gettempdir()).free
    if free < backup.size_bytes:
        raise FailedPrecondition(
            f"backup {key} needs {backup.size_bytes} bytes of temporary space to be checked, "
            f"{free} are free in {work_dir or tempfile.gettempdir()}: free some, or set TMPDIR"
        )
    digest, size = hashlib.sha256(), 0
    body = blobs.open_stream(backup.bucket, key)
    try:
        while chunk := body.read(1 << 20):
            size += len(chunk)
            if size > backup.size_bytes:
                break
            digest.update(chunk)
            into.write(chunk)
    finally:
        body.close()
    if size != backup.size_bytes:
        found = "more than" if size > backup.size_bytes else f"{size} bytes, not"
        raise FailedPrecondition(
            f"backup {key} is {found} the {backup.size_bytes} bytes the catalogue says: "
            "the object is corrupt or was replaced; nothing was restored"
        )
    if digest.hexdigest() != backup.sha256:
        raise FailedPrecondition(
            f"backup {key} has sha256 {digest.hexdigest()}, the catalogue says {backup.sha256}: "
            "the object is corrupt or was replaced; nothing was restored"
        )
    into.flush()


def verify(dsn: str, backup: BackupRecord, database: str) -> dict[str, int]:
    """Row counts and checksums per table of ``database`` (reached at ``dsn``) must equal the
    catalogue's (taken at dump time)."""
    with psycopg.connect(dsn, connect_timeout=10, options="-c statement_timeout=0") as conn:
        actual = table_inventory(conn)
    if backup.checksums:
        expected = {t: TableState(n, backup.checksums.get(t, "")) for t, n in backup.row_counts.items()}
    else:  # catalogued before checksums were kept: counts only
        expected = {t: TableState(n, "") for t, n in backup.row_counts.items()}
        actual = {t: TableState(s.rows, "") for t, s in actual.items()}
    problems = compare_inventories(expected, actual)
    if problems:
        raise FailedPrecondition(
            f"database {database!r} restored from {backup.object_key} does not match the catalogue: "
            + "; ".join(problems)
        )
    return {t: s.rows for t, s in actual.items()}


def sample_search(settings: Settings, dsn: str, database: str, *, samples: int = 3) -> list[dict[str, Any]]:
    """Dense and BM25 search work on the restored index of ``database`` (reached at ``dsn``): a
    chunk's own vector finds it first, and its own words find it in the BM25 top 10."""
    from rag.adapters.postgres.indexes import IndexRegistry
    from rag.adapters.postgres.pool import create_pool
    from rag.adapters.postgres.search import SearchRepository
    from rag.core.search import Filters

    checks: list[dict[str, Any]] = []
    scratch = settings.model_copy(update={"DATABASE_URL": dsn})
    with create_pool(scratch, min_size=1, name="rag-restore-check") as pool:
        active = IndexRegistry(pool).active()
        if active is None:
            log.warning("restored database %s has no active embedding index: no search to check", database)
            return checks
        search = SearchRepository(pool)
        for chunk_id, tenant, vector, text in search.sample_chunks(active.model_version, samples):
            dense = search.dense(
                tenant=tenant, version=active.model_version, vector=vector, k=5, filters=Filters()
            )
            # An identical chunk elsewhere has the same vector: any hit at distance 0 will do.
            exact = {i for i, d in dense if d <= 1e-6}
            dense_ok = bool(dense) and (dense[0][0] == chunk_id or chunk_id in exact)
            words = " ".join(text.split()[:24])
            lexical = search.lexical(
                tenant=tenant, version=active.model_version, query=words, k=10, filters=Filters()
            )
            lexical_ok = chunk_id in {i for i, _ in lexical}
            checks.append(
                {
                    "chunk_id": chunk_id,
                    "dense_first": dense[0][0] if dense else None,
                    "dense_ok": dense_ok,
                    "bm25_hits": len(lexical),
                    "bm25_ok": lexical_ok,
                }
            )
    failed = [c for c in checks if not (c["dense_ok"] and c["bm25_ok"])]
    if failed:
        raise FailedPrecondition(f"search on the restored database {database!r} failed: {failed}")
    return checks
