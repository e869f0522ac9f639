"""Pure parts of backups, restores, maintenance and re-embedding (no servers)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import pytest

from rag.adapters.postgres import tools
from rag.adapters.postgres.backups import TableState, compare_inventories
from rag.core.errors import InvalidInput, Unavailable
from rag.ingestion.reembed import query_sentence
from rag.operations.backup import _failed_on_error, database_key, key_time, model_repository_key
from rag.operations.maintenance import cleanup_logs, disk_usage, over_threshold
from rag.operations.streams import upload_produced


def test_backup_keys_follow_the_guide_and_parse_back() -> None:
    at = datetime(2026, 1, 22, 2, 0, 5, tzinfo=UTC)
    assert database_key(at) == "rag_db_backup_20260122_020005.sql.gz"
    assert model_repository_key(at) == "rag_model_repository_20260122_020005.tar.gz"
    assert key_time(database_key(at)) == at and key_time(model_repository_key(at)) == at
    assert key_time("rag_db_backup_latest.sql.gz") is None and key_time("notes.txt") is None


def test_inventory_comparison_names_every_difference() -> None:
    expected = {"chunks": TableState(10, "1"), "documents": TableState(2, "2"), "users": TableState(0, "0")}
    assert compare_inventories(expected, dict(expected)) == []
    actual = {"chunks": TableState(9, "1"), "documents": TableState(2, "3"), "extra": TableState(1, "1")}
    assert compare_inventories(expected, actual) == [
        "chunks: 9 rows, expected 10",
        "documents: primary-key checksum differs (2 rows)",
        "extra: not in the backup's inventory",
        "users: missing after the restore",
    ]


def test_dsn_helpers_keep_urls_and_hide_the_password() -> None:
    url = "postgresql://rag:s%40cret@db.example:5432/rag"
    assert (
        tools.with_database(url, "rag_restore_drill")
        == "postgresql://rag:s%40cret@db.example:5432/rag_restore_drill"
    )
    assert tools.database_name(url) == "rag" and tools.role_name(url) == "rag"
    conninfo, env = tools.client_args(url)
    assert "s@cret" not in conninfo and "cret" not in conninfo and env["PGPASSWORD"] == "s@cret"
    assert "dbname=rag" in conninfo and "host=db.example" in conninfo


class _Memory:
    """A stand-in for BlobStore's streaming upload."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail_after = fail_after

    def upload_stream(self, bucket: str, key: str, stream: IO[bytes], **_: Any) -> None:
        data = io.BytesIO()
        while block := stream.read(1000):
            data.write(block)
            if self.fail_after is not None and data.tell() > self.fail_after:
                raise OSError("connection reset")
        self.objects[key] = data.getvalue()

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop(key, None)


def test_streamed_upload_hashes_what_it_stores_and_drops_a_failed_producer() -> None:
    store = _Memory()
    payload = os.urandom(300_000)

    def produce(sink: IO[bytes]) -> None:
        with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=1) as gz:
            gz.write(payload)

    stored = upload_produced(store, "b", "k", produce, content_type="application/gzip")  # type: ignore[arg-type]
    assert gzip.decompress(store.objects["k"]) == payload
    assert stored.size_bytes == len(store.objects["k"])
    assert stored.sha256 == hashlib.sha256(store.objects["k"]).hexdigest()

    def broken(sink: IO[bytes]) -> None:
        sink.write(b"partial dump")
        raise RuntimeError("pg_dump exited with 1")

    with pytest.raises(RuntimeError, match="pg_dump exited"):
        upload_produced(store, "b", "bad", broken, content_type="application/gzip")  # type: ignore[arg-type]
    assert "bad" not in store.objects  # a truncated object never looks like a backup

    failing = _Memory(fail_after=10_000)

    def endless(sink: IO[bytes]) -> None:
        while True:
            sink.write(b"x" * 65536)

    with pytest.raises(OSError, match="connection reset"):
        upload_produced(failing, "b", "k", endless, content_type="application/gzip")  # type: ignore[arg-type]


def test_log_cleanup_removes_old_files_and_emptied_folders_only(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    (root / "dag_id=x" / "run_id=old").mkdir(parents=True)
    (root / "dag_id=x" / "run_id=new").mkdir(parents=True)
    old = root / "dag_id=x" / "run_id=old" / "attempt=1.log"
    new = root / "dag_id=x" / "run_id=new" / "attempt=1.log"
    old.write_text("old")
    new.write_text("new")
    past = time.time() - 8 * 86400
    os.utime(old, (past, past))
    result = cleanup_logs([root, tmp_path / "missing"], older_than_days=7)
    assert (result.files, result.directories) == (1, 1)
    assert not old.parent.exists() and new.exists() and root.exists()
    with pytest.raises(InvalidInput):
        cleanup_logs([root], older_than_days=0)


def test_disk_usage_is_per_file_system(tmp_path: Path) -> None:
    usages = disk_usage([tmp_path, tmp_path / "a" / "b"])
    assert len(usages) == 1
    assert over_threshold(usages, 100.1) == [] and over_threshold(usages, 0) == usages


def test_query_sentence_is_the_longest_sentence_of_the_chunk() -> None:
    text = "Asthma attacks\n\nAsthma narrows the airways. Inhaled corticosteroids prevent attacks, while salbutamol helps."
    assert query_sentence(text) == "Inhaled corticosteroids prevent attacks, while salbutamol helps."
    assert query_sentence("Short title") == "Short title"


class _Catalogue:
    def __init__(self) -> None:
        self.failed: list[tuple[int, str]] = []

    def fail(self, backup_id: int, reason: str) -> None:
        self.failed.append((backup_id, reason))


def test_a_failed_backup_is_catalogued_with_its_reason_and_still_raises() -> None:
    catalogue = _Catalogue()
    with pytest.raises(Unavailable), _failed_on_error(cast(Any, catalogue), 7):
        raise Unavailable("object storage is down")
    with pytest.raises(OSError), _failed_on_error(cast(Any, catalogue), 8):
        raise OSError("disk full")
    with _failed_on_error(cast(Any, catalogue), 9):
        pass

    assert catalogue.failed == [(7, "object storage is down"), (8, "OSError: disk full")]


def test_the_task_summaries_name_every_field() -> None:
    from rag.operations.backup import RetentionReport
    from rag.operations.maintenance import LogCleanup

    cleanup = LogCleanup(files=3, bytes=4096, directories=1, roots=("/var/log/rag-system",))
    retention = RetentionReport(expired=["a.sql.gz"], orphans_deleted=[], abandoned=["b"], kept=2)

    assert cleanup.summary() == {
        "files": 3,
        "bytes": 4096,
        "directories": 1,
        "roots": ("/var/log/rag-system",),
    }
    assert retention.summary() == {
        "expired": ["a.sql.gz"],
        "orphans_deleted": [],
        "abandoned": ["b"],
        "kept": 2,
    }
