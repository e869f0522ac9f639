"""``backup_database`` and ``restore_database`` through ``dag.test()`` against the real stack."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from rag.adapters.cache import TieredCache
from rag.adapters.objectstore import BlobStore
from rag.adapters.postgres import tools
from rag.adapters.postgres.backups import BackupCatalogue, BackupRecord
from rag.adapters.postgres.pool import create_pool
from rag.adapters.postgres.search_versions import SearchVersions
from rag.adapters.triton import TritonClient, TritonOptions
from rag.core.errors import FailedPrecondition, InvalidInput, Unavailable
from rag.core.search import SearchMode, SearchRequest, SearchResult
from rag.operations.restore import Restorer
from rag.operations.restore_plan import plan_restore
from rag.retrieval.service import Caller, RetrievalService
from rag.settings import Settings
from rag.stack.components.airflow import Airflow
from rag.stack.components.postgres import Postgres
from rag.stack.stack import LocalStack
from tests.fixtures.airflow import load_dag

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def admin_connection(dag_env: dict[str, str], stack: LocalStack) -> Iterator[str]:
    """The Airflow connection ``rag_postgres_admin`` the stack gives its Airflow (a superuser)."""
    extra = Airflow(stack.ctx).connections_env()
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield Postgres(stack.ctx).superuser_dsn()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.fixture(scope="module")
def backup(
    admin_connection: str,
    topics_tenant: tuple[str, dict[str, str]],
    settings: Settings,
    blobs: BlobStore,
) -> dict[str, Any]:
    """One run of backup_database, after planting backups that retention must remove."""
    bucket = settings.S3_BUCKET_BACKUPS
    planted = {
        "old_dump": "rag_db_backup_20200101_000000.sql.gz",  # catalogued, 10 days old
        "orphan": "rag_db_backup_20200102_000000.sql.gz",  # in S3 only, its name says 2020
    }
    for key in planted.values():
        blobs.put(bucket, key, gzip.compress(b"-- not a real dump\n"))
    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO backups (kind, bucket, object_key, status, started_at, finished_at)"
            " VALUES ('database', %s, %s, 'succeeded', now() - interval '10 days', now() - interval '10 days')"
            " ON CONFLICT (bucket, object_key) DO UPDATE SET status = 'succeeded', started_at = EXCLUDED.started_at",
            (bucket, planted["old_dump"]),
        )
        # Five model-repository snapshots, older than the one this run takes: the oldest must go.
        for day in range(1, 6):
            key = f"rag_model_repository_2020010{day}_000000.tar.gz"
            blobs.put(bucket, key, b"not a real snapshot")
            conn.execute(
                "INSERT INTO backups (kind, bucket, object_key, status, started_at)"
                " VALUES ('model_repository', %s, %s, 'succeeded', now() - make_interval(days => 10 - %s))"
                " ON CONFLICT (bucket, object_key) DO UPDATE SET status = 'succeeded',"
                " started_at = EXCLUDED.started_at",
                (bucket, key, day),
            )
        documents = conn.execute("SELECT count(*) FROM documents").fetchone()
    began = time.monotonic()
    run = load_dag("backup_database").test()
    seconds = time.monotonic() - began
    assert str(run.state) == "success", _states(run)
    pool = create_pool(settings, min_size=1)
    try:
        record = BackupCatalogue(pool).latest("database", bucket)
    finally:
        pool.close()
    assert record is not None
    print(f"backup_database DAG run: {seconds:.1f}s, dump {record.size_bytes} bytes ({record.details})")
    return {"record": record, "planted": planted, "documents_before": documents[0] if documents else 0}


def test_backup_is_catalogued_with_size_checksum_and_row_counts(
    backup: dict[str, Any], settings: Settings, blobs: BlobStore
) -> None:
    record = backup["record"]
    assert record.status == "succeeded" and record.object_key.startswith("rag_db_backup_")
    assert record.object_key.endswith(".sql.gz") and len(record.object_key) == len(
        "rag_db_backup_20260101_000000.sql.gz"
    )
    data = blobs.get(record.bucket, record.object_key)
    assert record.size_bytes == len(data) and record.sha256 == hashlib.sha256(data).hexdigest()
    text = gzip.decompress(data).decode()
    assert "PostgreSQL database dump" in text and "CREATE TABLE public.chunks" in text
    assert record.row_counts["documents"] >= backup["documents_before"] >= 8
    assert record.row_counts["chunks"] >= 8 and set(record.checksums) == set(record.row_counts)


def test_retention_expires_old_dumps_orphans_and_extra_model_snapshots(
    backup: dict[str, Any], settings: Settings, blobs: BlobStore, db: psycopg.Connection
) -> None:
    bucket = settings.S3_BUCKET_BACKUPS
    for key in backup["planted"].values():
        assert not blobs.exists(bucket, key), key
    status = db.execute(
        "SELECT status FROM backups WHERE bucket = %s AND object_key = %s",
        (bucket, backup["planted"]["old_dump"]),
    ).fetchone()
    assert status == ("expired",)
    snapshots = db.execute(
        "SELECT object_key, status FROM backups WHERE kind = 'model_repository' ORDER BY started_at DESC"
    ).fetchall()
    live = [key for key, s in snapshots if s == "succeeded"]
    assert len(live) == 5 and live[0].startswith("rag_model_repository_2026")  # this run's is the newest
    assert ("rag_model_repository_20200101_000000.tar.gz", "expired") in snapshots
    assert not blobs.exists(bucket, "rag_model_repository_20200101_000000.tar.gz")
    assert all(blobs.exists(bucket, key) for key in live)


def test_restore_drill_matches_the_catalogue_and_searches(
    backup: dict[str, Any], admin_connection: str, db: psycopg.Connection
) -> None:
    scratch = f"rag_drill_{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    run = load_dag("restore_database").test(run_conf={"target_database": scratch, "sample_searches": 3})
    assert str(run.state) == "success", _states(run)
    print(f"restore_database drill DAG run: {time.monotonic() - began:.1f}s")
    record = backup["record"]
    drill = db.execute("SELECT details->'last_drill' FROM backups WHERE id = %s", (record.id,)).fetchone()
    assert drill is not None and drill[0]["passed"] is True and drill[0]["target"] == scratch
    assert drill[0]["tables"] == record.row_counts
    assert len(drill[0]["search"]) == 3 and all(c["dense_ok"] and c["bm25_ok"] for c in drill[0]["search"])
    print(f"drill recovery time {drill[0]['recovery_seconds']}s: {drill[0]['seconds']}")
    with psycopg.connect(admin_connection) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (scratch,)).fetchone() is None


def test_restore_refuses_the_live_database_without_confirmation(
    backup: dict[str, Any], admin_connection: str, settings: Settings, db: psycopg.Connection
) -> None:
    live = tools.database_name(settings.DATABASE_URL)
    documents = db.execute("SELECT count(*) FROM documents").fetchone()
    run = load_dag("restore_database").test(run_conf={"target_database": live, "drill": False})
    assert str(run.state) == "failed"
    assert _states(run) == {"plan": "failed", "restore": "upstream_failed"}
    assert db.execute("SELECT count(*) FROM documents").fetchone() == documents

    pool = create_pool(settings, min_size=1)
    try:
        catalogue = BackupCatalogue(pool)
        refusal = f"refusing to restore over the live database '{live}'.*confirm_overwrite_live=true"
        with pytest.raises(FailedPrecondition, match=refusal):
            plan_restore(settings, catalogue, target=live, drill=False)
        with pytest.raises(InvalidInput, match="never into the live database"):
            plan_restore(settings, catalogue, target=live, drill=True, confirm_overwrite_live=True)
    finally:
        pool.close()


@pytest.mark.parametrize(
    ("lie", "refusal"), [("size", "bytes the catalogue says"), ("sha256", "has sha256 .* the catalogue says")]
)
def test_a_tampered_dump_is_refused_before_psql_runs_any_of_it(
    lie: str, refusal: str, admin_connection: str, settings: Settings, blobs: BlobStore, tmp_path: Path
) -> None:
    """A plain dump is a psql script: a replaced object must not run a line of it (here a
    ``\\!`` shell command) before its size and sha256 are found wrong."""
    marker = tmp_path / "psql-ran-the-dump"
    genuine = gzip.compress(b"SELECT 1;\n")
    # The shell command first, then more than a pipe holds: psql has run it by the time a
    # restore that streams could have written the rest (and only then compared the sha256).
    filler = ("-- filler " * 100 + "\n") * 4000  # 4 MB of comments, a few KB compressed
    tampered = gzip.compress(f"\\! touch {marker}\n{filler}SELECT 1;\n".encode())
    bucket, key = settings.S3_BUCKET_BACKUPS, f"tampered_{uuid.uuid4().hex[:8]}.sql.gz"
    blobs.put(bucket, key, tampered)
    now = datetime.now(UTC)
    record = BackupRecord(
        id=0,
        kind="database",
        bucket=bucket,
        object_key=key,
        # The catalogue's size is the tampered object's when only the sha256 tells them apart.
        size_bytes=len(genuine) if lie == "size" else len(tampered),
        sha256=hashlib.sha256(genuine).hexdigest(),
        status="succeeded",
        row_counts={},
        checksums={},
        details={},
        error_reason=None,
        started_at=now,
        finished_at=now,
    )
    restorer = Restorer(settings, blobs, admin_dsn=admin_connection)
    scratch = f"rag_tampered_{uuid.uuid4().hex[:8]}"
    restorer.recreate(scratch)
    try:
        with pytest.raises((FailedPrecondition, OSError)) as refused:
            restorer.load(record, scratch)
        assert not marker.exists()  # psql never ran a line of it
        assert refused.type is FailedPrecondition
        assert re.search(rf"{refusal}.*corrupt or was replaced; nothing was restored", str(refused.value))
        # The same object, catalogued as it is, does run: the marker proves psql would have.
        honest = BackupRecord(
            **{**record.__dict__, "size_bytes": len(tampered), "sha256": hashlib.sha256(tampered).hexdigest()}
        )
        restorer.load(honest, scratch)
        assert marker.exists()
    finally:
        restorer.drop(scratch)
        blobs.delete(bucket, key)


def test_confirmed_restore_over_live_swaps_databases_keeps_the_previous_and_empties_the_caches(
    backup: dict[str, Any],
    admin_connection: str,
    settings: Settings,
    blobs: BlobStore,
    topics_tenant: tuple[str, dict[str, str]],
    tmp_path: Path,
) -> None:
    """Over a stand-in for the live database (a copy), not the session's own. A search cached
    (in memory, Redis and on disk) while the copy is damaged is served by none of the three
    levels once the restore has repaired it: tenant generation and index version are the same
    as before, only the cache epoch the restore renews tells the results apart."""
    record = backup["record"]
    name = f"rag_live_{uuid.uuid4().hex[:8]}"
    live_settings = settings.model_copy(
        update={"DATABASE_URL": tools.with_database(settings.DATABASE_URL, name)}
    )
    restorer = Restorer(settings, blobs, admin_dsn=admin_connection)
    pool = create_pool(settings, min_size=1)
    try:
        restorer.run(plan_restore(settings, BackupCatalogue(pool), target=name, drill=False))
    finally:
        pool.close()
    try:
        with psycopg.connect(live_settings.DATABASE_URL, autocommit=True) as conn:
            # The copy's catalogue says this backup succeeded, and knows one taken after it.
            conn.execute(
                "UPDATE backups SET status = 'succeeded', sha256 = %s, size_bytes = %s, row_counts = %s,"
                " checksums = %s WHERE object_key = %s",
                (
                    record.sha256,
                    record.size_bytes,
                    Jsonb(record.row_counts),
                    Jsonb(record.checksums),
                    record.object_key,
                ),
            )
            conn.execute(
                "INSERT INTO backups (kind, bucket, object_key, status) VALUES ('database', 'x', 'later', 'succeeded')"
            )
            conn.execute("DELETE FROM chunks")  # the damage the restore repairs
            # The copy is the database the dump was taken from: same cache epoch as the dump.
            conn.execute("UPDATE cache_epoch SET epoch = %s", (_epoch_in_dump(blobs, record),))
        live_pool = create_pool(live_settings, min_size=1)
        try:
            plan = plan_restore(
                live_settings,
                BackupCatalogue(live_pool),
                drill=False,
                target=name,
                confirm_overwrite_live=True,
            )
        finally:
            live_pool.close()
        restore = Restorer(live_settings, blobs, admin_dsn=admin_connection)
        report, before, after = asyncio.run(
            _cached_across(restore, plan, live_settings, topics_tenant[0], tmp_path)
        )
        # The damage (no chunks) is cached in memory, in Redis and on disk.
        assert [(r.hits, r.cache_hit) for r in before] == [((), False), ((), True), ((), True), ((), True)]
        for level, result in after.items():
            assert result.hits and result.hits[0].document_title == "Vitamin D and bone health", level
        assert report.previous_database and report.previous_database.startswith(f"{name}_before_restore_")
        with psycopg.connect(live_settings.DATABASE_URL) as conn:
            assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (record.row_counts["chunks"],)
            assert conn.execute("SELECT count(*) FROM backups WHERE object_key = 'later'").fetchone() == (1,)
        previous = tools.with_database(settings.DATABASE_URL, report.previous_database)
        with psycopg.connect(previous) as conn:
            assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (0,)
    finally:
        with psycopg.connect(admin_connection, autocommit=True) as conn:
            for (db_name,) in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{name}%",)
            ):
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db_name)))


def _epoch_in_dump(blobs: BlobStore, record: BackupRecord) -> str:
    dump = gzip.decompress(blobs.get(record.bucket, record.object_key)).decode()
    rows = dump.split("COPY public.cache_epoch (singleton, epoch, changed_at) FROM stdin;\n", 1)[1]
    return rows.split("\t")[1]


async def _cached_across(
    restore: Restorer, plan: Any, live: Settings, tenant: str, tmp_path: Path
) -> tuple[Any, list[SearchResult], dict[str, SearchResult]]:
    """Search the damaged copy (cached in every level), restore it, search again per level."""
    request = SearchRequest.validated(query="vitamin D rickets", top_k=3, mode=SearchMode.FULLTEXT)
    disk = tmp_path / "query-cache"
    pool = create_pool(live, min_size=1, name="restore-cache-test", autocommit=True)
    caches = {
        "l1": TieredCache(redis_url=live.REDIS_URL, disk_dir=disk),
        "l2": TieredCache(redis_url=live.REDIS_URL, disk_dir=tmp_path / "empty"),
        "l3": TieredCache(redis_url=None, disk_dir=disk),
    }
    listening = SearchVersions(pool, conninfo=live.DATABASE_URL)
    await listening.start()
    try:
        async with TritonClient(TritonOptions(live.TRITON_GRPC_URL)) as triton:

            def service(
                level: str, versions: SearchVersions | None = None, on: ConnectionPool = pool
            ) -> RetrievalService:
                return RetrievalService(pool=on, triton=triton, cache=caches[level], versions=versions)

            async def until_cached(level: str) -> SearchResult:
                for _ in range(250):  # the lower levels are written in the background
                    result = await service(level).search(Caller(tenant), request)
                    if result.cache_hit:
                        return result
                    await asyncio.sleep(0.02)
                return result

            live_service = service("l1", listening)
            before = [await live_service.search(Caller(tenant), request) for _ in range(2)]
            before += [await until_cached("l3"), await until_cached("l2")]
            report = await asyncio.to_thread(restore.run, plan)
            # Other processes (the first pool's connections went with the old database).
            fresh = create_pool(live, min_size=1, name="restore-cache-test-after", autocommit=True)
            try:
                after = {
                    "l3": await service("l3", on=fresh).search(Caller(tenant), request),
                    "l2": await service("l2", on=fresh).search(Caller(tenant), request),
                }
            finally:
                fresh.close()
            # The API process that cached it: its listener lost the swapped-out database and
            # reads the new epoch (a pooled connection may still be the old one's, once).
            for _ in range(250):
                with contextlib.suppress(Unavailable):
                    after["l1"] = await live_service.search(Caller(tenant), request)
                    if after["l1"].hits:
                        break
                await asyncio.sleep(0.02)
            return report, before, after
    finally:
        await listening.close()
        for cache in caches.values():
            await cache.close()
        pool.close()
