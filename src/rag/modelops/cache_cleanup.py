"""Delete old entries of the model cache (``HF_CACHE_DIR``): ModelService.CleanupCache.

The cache holds converted weights (``gguf``), downloaded model versions (``downloads``) and the
disk level of the query cache. An entry is a direct child of one of those folders; one not
modified for the given number of days goes, whole. A model in use is already in memory, and a
later load converts or downloads again, so nothing that serves depends on what this removes.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.adapters.cache import QUERY_CACHE_SUBDIR

# The folders under the cache root whose entries may go (converted weights, downloads, L3).
CLEANED_SUBDIRS = ("gguf", "downloads", QUERY_CACHE_SUBDIR)


@dataclass(frozen=True)
class CacheCleanup:
    entries_removed: int
    bytes_freed: int


def _old_entries(root: Path, cutoff: float) -> Iterator[Path]:
    if root.is_dir():
        for entry in root.iterdir():
            if entry.stat().st_mtime < cutoff:
                yield entry


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def remove_old_cache_entries(cache_dir: Path, days: int, *, now: float | None = None) -> CacheCleanup:
    """Delete the entries of :data:`CLEANED_SUBDIRS` under ``cache_dir`` last modified more
    than ``days`` days before ``now`` (default: the current time); how many went and their bytes."""
    cutoff = (time.time() if now is None else now) - days * 86400
    removed = freed = 0
    for sub in CLEANED_SUBDIRS:
        for entry in _old_entries(cache_dir / sub, cutoff):
            freed += _size(entry)
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return CacheCleanup(entries_removed=removed, bytes_freed=freed)
