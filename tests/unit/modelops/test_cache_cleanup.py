"""remove_old_cache_entries: old entries of the three cache folders go, whole; nothing else."""

from __future__ import annotations

import os
import time
from pathlib import Path

from rag.adapters.cache import QUERY_CACHE_SUBDIR
from rag.modelops.cache_cleanup import CLEANED_SUBDIRS, remove_old_cache_entries

DAY = 86400.0


def _age(path: Path, days: float, now: float) -> None:
    os.utime(path, (now - days * DAY, now - days * DAY))


def test_entries_older_than_the_window_go_with_their_bytes_and_the_rest_stays(tmp_path: Path) -> None:
    now = time.time()
    assert set(CLEANED_SUBDIRS) == {"gguf", "downloads", QUERY_CACHE_SUBDIR}
    old_file = tmp_path / "gguf" / "generator-1.gguf"
    old_dir = tmp_path / "downloads" / "rag-embedder-3"
    fresh = tmp_path / QUERY_CACHE_SUBDIR / "cache.db"
    elsewhere = tmp_path / "hub" / "models--old"  # not a folder the cleanup owns
    for folder in (old_file.parent, old_dir / "1", fresh.parent, elsewhere):
        folder.mkdir(parents=True, exist_ok=True)
    old_file.write_bytes(b"x" * 100)
    (old_dir / "1" / "model.safetensors").write_bytes(b"y" * 50)
    (old_dir / "config.json").write_bytes(b"z" * 7)
    fresh.write_bytes(b"q" * 30)
    for path in (old_file, old_dir, elsewhere):
        _age(path, 40, now)
    _age(fresh, 2, now)

    cleaned = remove_old_cache_entries(tmp_path, 30, now=now)

    assert (cleaned.entries_removed, cleaned.bytes_freed) == (2, 157)
    assert not old_file.exists() and not old_dir.exists()
    assert fresh.exists() and elsewhere.exists()


def test_a_missing_cache_folder_is_nothing_to_clean(tmp_path: Path) -> None:
    cleaned = remove_old_cache_entries(tmp_path / "absent", 1)
    assert (cleaned.entries_removed, cleaned.bytes_freed) == (0, 0)
