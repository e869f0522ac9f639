"""Routine maintenance: old logs, disk space, caches. The database's share (VACUUM ANALYZE,
query-history partitions) is :mod:`rag.adapters.postgres.housekeeping`."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.core.errors import InvalidInput

log = logging.getLogger(__name__)


# -- logs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogCleanup:
    files: int
    bytes: int
    directories: int
    roots: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        return asdict(self)


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


def expire_query_cache(cache_root: Path) -> int | None:
    """Remove expired entries from the L3 disk cache; None if there is none on this worker."""
    import asyncio

    from rag.adapters.cache import QUERY_CACHE_SUBDIR, TieredCache

    folder = cache_root / QUERY_CACHE_SUBDIR
    if not folder.is_dir():
        return None
    cache = TieredCache(redis_url=None, disk_dir=folder)
    try:
        return cache.expire_disk()
    finally:
        asyncio.run(cache.close())
