"""Routine maintenance: old logs, disk space, VACUUM ANALYZE, query-history partitions, caches."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from rag.core.errors import InvalidInput

log = logging.getLogger(__name__)

# Where the gRPC services keep the L3 (disk) query cache (grpc_services/app.py).
QUERY_CACHE_SUBDIR = "query-cache"


# -- logs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogCleanup:
    files: int
    bytes: int
    directories: int
    roots: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "directories": self.directories,
            "roots": self.roots,
        }


def cleanup_logs(roots: Iterable[Path], *, older_than_days: int, now: float | None = None) -> LogCleanup:
    """Delete files under ``roots`` last modified more than ``older_than_days`` ago, then the
    folders that emptied (never a root). A missing root is skipped; symlinks are not followed."""
    if older_than_days < 1:
        raise InvalidInput("must be at least 1", field="log_retention_days")
    cutoff = (now or time.time()) - older_than_days * 86400
    files = size = directories = 0
    seen = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            log.info("log folder %s does not exist here: skipped", root)
            continue
        seen.append(str(root))
        for folder, _, names in os.walk(root, topdown=False):
            for name in names:
                path = Path(folder, name)
                try:
                    stat = path.lstat()
                    if stat.st_mtime < cutoff:
                        path.unlink()
                        files += 1
                        size += stat.st_size
                except FileNotFoundError:
                    continue  # a concurrent cleanup or rotation got there first
            if Path(folder) != root and not any(Path(folder).iterdir()):
                try:
                    Path(folder).rmdir()
                    directories += 1
                except OSError:
                    pass  # a task started writing there meanwhile
    result = LogCleanup(files, size, directories, tuple(seen))
    log.info("log cleanup (older than %d days): %s", older_than_days, result.summary())
    return result


# -- disk ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiskUsage:
    path: str
    percent: float
    free_bytes: int
    total_bytes: int


def disk_usage(paths: Iterable[Path]) -> list[DiskUsage]:
    """Use of the file system holding each existing path (one entry per file system)."""
    usages: dict[int, DiskUsage] = {}
    for path in paths:
        path = Path(path)
        while not path.exists() and path != path.parent:
            path = path.parent
        device = path.stat().st_dev
        if device in usages:
            continue
        total, used, free = shutil.disk_usage(path)
        # As df reports it: used / (used + available to unprivileged users).
        percent = 100.0 * used / (used + free) if used + free else 0.0
        usages[device] = DiskUsage(str(path), round(percent, 1), free, total)
    return list(usages.values())


def over_threshold(usages: Iterable[DiskUsage], threshold_percent: float) -> list[DiskUsage]:
    return [u for u in usages if u.percent >= threshold_percent]


# -- PostgreSQL ---------------------------------------------------------------------------------
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


def expire_query_cache(cache_root: Path) -> int | None:
    """Remove expired entries from the L3 disk cache; None if there is none on this worker."""
    import asyncio

    from rag.adapters.cache import TieredCache

    folder = cache_root / QUERY_CACHE_SUBDIR
    if not folder.is_dir():
        return None
    cache = TieredCache(redis_url=None, disk_dir=folder)
    try:
        return cache.expire_disk()
    finally:
        asyncio.run(cache.close())
