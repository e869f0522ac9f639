"""Database dumps and model-repository snapshots into object storage, and their retention.

The dump is plain SQL (``pg_dump --format=plain``) through gzip level 1, uploaded as
``rag_db_backup_YYYYmmdd_HHMMSS.sql.gz``: the deployment guide's format, which any ``psql``
restores (``gunzip -c ... | psql``), streamed so that it never sits on local disk. gzip -1 is
~4x faster than pg_dump's default compression on vectors (shared/NOTES.md); a custom-format
archive would buy parallel restore, but a restore is dominated by the one HNSW index build.

pg_dump runs in a snapshot exported by the transaction that counts and checksums every table,
so the catalogue's row counts and checksums describe exactly what the dump holds, however busy
the database is while it runs.
"""

from __future__ import annotations

import gzip
import logging
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg_pool import ConnectionPool

from rag.adapters.objectstore import BlobStore
from rag.adapters.postgres import tools
from rag.adapters.postgres.backups import (
    DATABASE,
    MODEL_REPOSITORY,
    BackupCatalogue,
    BackupRecord,
    table_inventory,
)
from rag.core.errors import NotFound, RagError, Unavailable
from rag.operations.streams import exit_and_stderr, upload_produced
from rag.settings import Settings

log = logging.getLogger(__name__)

DB_PREFIX = "rag_db_backup_"
DB_KEY = re.compile(r"^rag_db_backup_(\d{8}_\d{6})\.sql\.gz$")
MODELS_PREFIX = "rag_model_repository_"
MODELS_KEY = re.compile(r"^rag_model_repository_(\d{8}_\d{6})\.tar\.gz$")
STAMP = "%Y%m%d_%H%M%S"
GZIP_LEVEL = 1
# A dump still "running" after this long belongs to a task that died.
ABANDONED_AFTER_S = 24 * 3600.0


def database_key(at: datetime) -> str:
    return f"{DB_PREFIX}{at.astimezone(UTC):{STAMP}}.sql.gz"


def model_repository_key(at: datetime) -> str:
    return f"{MODELS_PREFIX}{at.astimezone(UTC):{STAMP}}.tar.gz"


def key_time(key: str) -> datetime | None:
    """The UTC time in a backup object's name (None: not a backup object)."""
    match = DB_KEY.match(key) or MODELS_KEY.match(key)
    return datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC) if match else None


@dataclass(frozen=True)
class BackupOutcome:
    record: BackupRecord
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.record.id,
            "bucket": self.record.bucket,
            "object_key": self.record.object_key,
            "size_bytes": self.record.size_bytes,
            "sha256": self.record.sha256,
            "row_counts": self.record.row_counts,
            "seconds": round(self.seconds, 3),
        }


def _dump(argv: list[str], env: dict[str, str], filename: str) -> Any:
    """A producer: pg_dump's output through gzip level 1 into the sink."""

    def produce(sink: IO[bytes]) -> None:
        with tempfile.TemporaryFile() as stderr:
            with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, env=env) as proc:
                assert proc.stdout is not None
                try:
                    with gzip.GzipFile(
                        filename, mode="wb", compresslevel=GZIP_LEVEL, fileobj=sink, mtime=0
                    ) as gz:
                        shutil.copyfileobj(proc.stdout, gz, 1 << 20)
                except BaseException:
                    proc.kill()
                    raise
                code, message = exit_and_stderr(proc, stderr)
            if code != 0:
                raise Unavailable(f"pg_dump exited with {code}: {message}")

    return produce


@contextmanager
def _failed_on_error(catalogue: BackupCatalogue, backup_id: int) -> Iterator[None]:
    """Mark the catalogue row failed, with a reason, when the block raises (and let it raise)."""
    try:
        yield
    except BaseException as exc:
        catalogue.fail(backup_id, str(exc) if isinstance(exc, RagError) else f"{type(exc).__name__}: {exc}")
        raise


def backup_database(
    settings: Settings, pool: ConnectionPool, blobs: BlobStore, *, now: datetime | None = None
) -> BackupOutcome:
    """Dump the RAG database into ``S3_BUCKET_BACKUPS`` and catalogue it (size, sha256, rows)."""
    began = time.monotonic()
    now = now or datetime.now(UTC)
    bucket, key = settings.S3_BUCKET_BACKUPS, database_key(now)
    catalogue = BackupCatalogue(pool)
    record = catalogue.start(DATABASE, bucket, key)
    with _failed_on_error(catalogue, record.id):
        # The snapshot's transaction must stay open until pg_dump has attached to it; no
        # timeout may cut it (counting a large table takes a while).
        with psycopg.connect(
            settings.DATABASE_URL,
            connect_timeout=10,
            application_name="rag-backup",
            options="-c statement_timeout=0 -c idle_in_transaction_session_timeout=0",
        ) as snap:
            snap.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            snap.read_only = True
            major = tools.server_major(snap)
            snapshot, server_version = tools.export_snapshot(snap)
            inventory = table_inventory(snap)
            pg_dump = tools.find_tool("pg_dump", min_major=major)
            conninfo, env = tools.client_args(settings.DATABASE_URL)
            argv = [
                str(pg_dump),
                "--format=plain",
                "--no-password",
                f"--snapshot={snapshot}",
                "--lock-wait-timeout=120s",
                f"--dbname={conninfo}",
            ]
            dump_began = time.monotonic()
            stored = upload_produced(
                blobs, bucket, key, _dump(argv, env, key.removesuffix(".gz")), content_type="application/gzip"
            )
            dump_seconds = time.monotonic() - dump_began
        record = catalogue.succeed(
            record.id,
            size_bytes=stored.size_bytes,
            sha256=stored.sha256,
            inventory=inventory,
            details={
                "format": "plain",
                "compression": f"gzip -{GZIP_LEVEL}",
                "pg_dump": f"{pg_dump} ({tools.tool_major(pg_dump)})",
                "server_version": server_version,
                "dump_seconds": round(dump_seconds, 3),
            },
        )
    outcome = BackupOutcome(record, time.monotonic() - began)
    log.info(
        "database backup s3://%s/%s: %d bytes in %.1fs, %d tables, %s",
        bucket,
        key,
        stored.size_bytes,
        outcome.seconds,
        len(inventory),
        {t: s.rows for t, s in inventory.items()},
    )
    return outcome


def _skip_caches(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in Path(info.name).parts else info


def backup_model_repository(
    settings: Settings, pool: ConnectionPool, blobs: BlobStore, *, now: datetime | None = None
) -> BackupOutcome:
    """Snapshot ``TRITON_MODEL_REPOSITORY`` as a tar.gz into ``S3_BUCKET_BACKUPS``."""
    began = time.monotonic()
    repository = Path(settings.TRITON_MODEL_REPOSITORY).resolve()
    if not repository.is_dir():
        raise NotFound(f"TRITON_MODEL_REPOSITORY {repository} is not a folder on this worker")
    now = now or datetime.now(UTC)
    bucket, key = settings.S3_BUCKET_BACKUPS, model_repository_key(now)
    catalogue = BackupCatalogue(pool)
    record = catalogue.start(MODEL_REPOSITORY, bucket, key)
    files = 0

    def produce(sink: IO[bytes]) -> None:
        nonlocal files
        with (
            gzip.GzipFile(
                key.removesuffix(".gz"), mode="wb", compresslevel=GZIP_LEVEL, fileobj=sink, mtime=0
            ) as gz,
            tarfile.open(fileobj=gz, mode="w|") as tar,
        ):
            tar.add(repository, arcname="model_repository", filter=_skip_caches)
            files = len(tar.getmembers())

    with _failed_on_error(catalogue, record.id):
        stored = upload_produced(blobs, bucket, key, produce, content_type="application/gzip")
        record = catalogue.succeed(
            record.id,
            size_bytes=stored.size_bytes,
            sha256=stored.sha256,
            details={"source": str(repository), "members": files, "compression": f"gzip -{GZIP_LEVEL}"},
        )
    outcome = BackupOutcome(record, time.monotonic() - began)
    log.info(
        "model repository snapshot s3://%s/%s: %d members, %d bytes in %.1fs",
        bucket,
        key,
        files,
        stored.size_bytes,
        outcome.seconds,
    )
    return outcome


@dataclass
class RetentionReport:
    expired: list[str] = field(default_factory=list)
    orphans_deleted: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    kept: int = 0

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def _expire(catalogue: BackupCatalogue, blobs: BlobStore, records: list[BackupRecord]) -> list[str]:
    gone = []
    for record in records:
        blobs.delete(record.bucket, record.object_key)
        catalogue.mark_expired(record.id)
        gone.append(record.object_key)
    return gone


def apply_retention(
    settings: Settings,
    pool: ConnectionPool,
    blobs: BlobStore,
    *,
    keep_days: int = 7,
    keep_snapshots: int = 5,
    now: datetime | None = None,
) -> RetentionReport:
    """Expire database dumps older than ``keep_days`` and all but the last ``keep_snapshots``
    model-repository snapshots, in object storage and in the catalogue.

    The newest successful dump is always kept, however old: if backups have been failing for a
    week, retention must not delete the last good one. Objects named like backups that the
    catalogue does not know (e.g. a crash between upload and catalogue) go by the time in their
    name.
    """
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=keep_days)
    bucket = settings.S3_BUCKET_BACKUPS
    catalogue = BackupCatalogue(pool)
    report = RetentionReport()
    for kind in (DATABASE, MODEL_REPOSITORY):
        for record in catalogue.abandon_running(kind, older_than_s=ABANDONED_AFTER_S):
            blobs.delete(record.bucket, record.object_key)  # whatever part of it was uploaded
            report.abandoned.append(record.object_key)

    dumps = [r for r in catalogue.history(DATABASE, bucket) if r.status != "expired"]
    newest = next((r for r in dumps if r.status == "succeeded"), None)
    report.expired += _expire(
        catalogue,
        blobs,
        [r for r in dumps if r.status != "running" and r.started_at < cutoff and r is not newest],
    )
    snapshots = [r for r in catalogue.history(MODEL_REPOSITORY, bucket) if r.status != "expired"]
    succeeded = [r for r in snapshots if r.status == "succeeded"]
    report.expired += _expire(
        catalogue,
        blobs,
        succeeded[keep_snapshots:] + [r for r in snapshots if r.status == "failed" and r.started_at < cutoff],
    )
    report.kept = sum(1 for r in dumps if r.object_key not in report.expired) + min(
        len(succeeded), keep_snapshots
    )

    known = {r.object_key for r in dumps + snapshots if r.object_key not in report.expired}
    for prefix in (DB_PREFIX, MODELS_PREFIX):
        for info in blobs.list(bucket, prefix):
            stamp = key_time(info.key)
            if info.key not in known and stamp is not None and stamp < cutoff:
                blobs.delete(bucket, info.key)
                report.orphans_deleted.append(info.key)
    log.info("backup retention (%d days, %d snapshots): %s", keep_days, keep_snapshots, report.summary())
    return report
