"""What a search reads and writes besides the index, on the real PostgreSQL of the session stack:
the in-memory index version / tenant generation kept fresh by LISTEN/NOTIFY (migration 0004),
and the batched query_history writer."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import pytest
from prometheus_client import REGISTRY
from psycopg_pool import ConnectionPool

from rag.adapters.cache import TieredCache
from rag.adapters.postgres.cache_epoch import renew as renew_cache_epoch
from rag.adapters.postgres.history import QueryHistory
from rag.adapters.postgres.search_versions import SearchVersions
from rag.adapters.triton import TritonClient, TritonOptions
from rag.core.search import QueryRecord, SearchRequest, SearchResult
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Pipeline
from rag.retrieval.service import Caller, RetrievalService
from rag.settings import Settings

pytestmark = pytest.mark.integration


def lookups(source: str) -> float:
    return REGISTRY.get_sample_value("rag_search_version_lookups_total", {"source": source}) or 0.0


def bump(settings: Settings, tenant: str) -> None:
    """What any change to a tenant's documents does (the statement triggers of migration 0002)."""
    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tenant_generations (tenant) VALUES (%s)"
            " ON CONFLICT (tenant) DO UPDATE SET generation = tenant_generations.generation + 1",
            (tenant,),
        )


def cache_epoch(settings: Settings) -> str:
    with psycopg.connect(settings.DATABASE_URL) as conn:
        row = conn.execute("SELECT epoch FROM cache_epoch").fetchone()
    assert row is not None
    return str(row[0])


def generation(settings: Settings, tenant: str) -> int:
    with psycopg.connect(settings.DATABASE_URL) as conn:
        row = conn.execute(
            "SELECT generation FROM tenant_generations WHERE tenant = %s", (tenant,)
        ).fetchone()
    return int(row[0]) if row else 0


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.02)
    return False


def test_versions_come_from_memory_while_listening_and_follow_every_change(
    settings: Settings, pool: ConnectionPool, index_version: str
) -> None:
    tenant = f"versions-{uuid.uuid4().hex[:8]}"
    bump(settings, tenant)

    async def go() -> None:
        versions = SearchVersions(pool, conninfo=settings.DATABASE_URL)
        await versions.start()
        try:
            assert versions.listening
            first = await versions.current(tenant)
            assert first == (index_version, generation(settings, tenant), cache_epoch(settings))
            from_db, from_memory = lookups("database"), lookups("memory")
            for _ in range(5):
                assert await versions.current(tenant) == first
            assert lookups("memory") - from_memory == 5 and lookups("database") == from_db

            # Another connection changes the tenant: the next lookups see the new generation.
            bump(settings, tenant)
            expected = (index_version, first[1] + 1, first[2])

            async def seen() -> bool:
                return await versions.current(tenant) == expected

            assert await eventually(seen)
            # A statement on embedding_indexes (even one touching no row) forgets everything.
            await versions.current(tenant)
            with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
                conn.execute("UPDATE embedding_indexes SET status = status WHERE false")
            before = lookups("database")

            async def reread() -> bool:
                await versions.current(tenant)
                return lookups("database") > before

            assert await eventually(reread)
        finally:
            await versions.close()

    asyncio.run(go())


def test_a_lost_listener_connection_falls_back_to_the_database_and_recovers(
    settings: Settings, pool: ConnectionPool, index_version: str
) -> None:
    tenant = f"versions-{uuid.uuid4().hex[:8]}"
    bump(settings, tenant)

    async def go() -> None:
        versions = SearchVersions(pool, conninfo=settings.DATABASE_URL, reconnect_s=0.5)
        await versions.start()
        try:
            await versions.current(tenant)
            with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
                killed = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = 'rag-search-versions' AND pid <> pg_backend_pid()"
                ).fetchone()
            assert killed is not None and killed[0] >= 1

            async def stopped() -> bool:
                return not versions.listening

            assert await eventually(stopped)
            # While deaf, a change made meanwhile is still seen: every lookup reads the database.
            bump(settings, tenant)
            before = lookups("database")
            assert (await versions.current(tenant))[1] == generation(settings, tenant)
            assert lookups("database") == before + 1

            async def listening_again() -> bool:
                return versions.listening

            assert await eventually(listening_again)
            await versions.current(tenant)
            memory = lookups("memory")
            assert await versions.current(tenant) == (
                index_version,
                generation(settings, tenant),
                cache_epoch(settings),
            )
            assert lookups("memory") == memory + 1
        finally:
            await versions.close()

    asyncio.run(go())


def test_without_a_listener_every_lookup_reads_the_database(
    settings: Settings, pool: ConnectionPool, index_version: str
) -> None:
    tenant = f"versions-{uuid.uuid4().hex[:8]}"

    async def go() -> None:
        versions = SearchVersions(pool)
        await versions.start()
        before = lookups("database")
        assert await versions.current(tenant) == (index_version, 0, cache_epoch(settings))
        bump(settings, tenant)
        assert await versions.current(tenant) == (index_version, 1, cache_epoch(settings))
        assert lookups("database") == before + 2

    asyncio.run(go())


def test_a_read_that_races_with_a_notification_is_not_kept(pool: ConnectionPool) -> None:
    versions = SearchVersions(pool, conninfo="unused")
    versions._listening = True  # as if LISTEN succeeded
    reads = []

    def racing_read(tenant: str) -> tuple[str | None, int, str]:
        reads.append(tenant)
        versions._notified(f"tenant:{tenant}")  # the change commits while we read
        return "m@sha256:old", 7, "e"

    versions._read = racing_read  # type: ignore[method-assign]

    async def go() -> None:
        await versions.current("t")
        await versions.current("t")

    asyncio.run(go())
    assert reads == ["t", "t"]  # the raced value was not kept: read again


def test_a_renewed_cache_epoch_reaches_a_listening_process(
    settings: Settings, pool: ConnectionPool, index_version: str
) -> None:
    """What a restore does to the live database (``cache_epoch.renew``) is heard at once."""
    tenant = f"versions-{uuid.uuid4().hex[:8]}"

    async def go() -> tuple[str, str]:
        versions = SearchVersions(pool, conninfo=settings.DATABASE_URL)
        await versions.start()
        try:
            before = (await versions.current(tenant))[2]
            renewed = renew_cache_epoch(settings.DATABASE_URL)
            assert renewed is not None and renewed != before

            async def seen() -> bool:
                return (await versions.current(tenant))[2] == renewed

            assert await eventually(seen)
            return before, renewed
        finally:
            await versions.close()

    asyncio.run(go())


def record(tenant: str, n: int) -> QueryRecord:
    return QueryRecord(tenant, "alice", f"req-{n}", "search", f"query {n}", 5, 3, 1.5, False, "m@sha256:x")


def history_rows(settings: Settings, tenant: str) -> list[tuple[str, str]]:
    with psycopg.connect(settings.DATABASE_URL) as conn:
        return [
            (str(r[0]), str(r[1]))
            for r in conn.execute(
                "SELECT request_id, query FROM query_history WHERE tenant = %s ORDER BY id", (tenant,)
            )
        ]


def test_history_is_written_in_batches_and_flushed_on_close(settings: Settings, pool: ConnectionPool) -> None:
    tenant = f"history-{uuid.uuid4().hex[:8]}"
    written = REGISTRY.get_sample_value("rag_query_history_written_total") or 0.0

    async def go() -> None:
        history = QueryHistory(pool, flush_interval_s=0.05, max_batch=100)
        await history.start()
        for n in range(250):
            await history.record(record(tenant, n))
        await history.close()

    asyncio.run(go())
    rows = history_rows(settings, tenant)
    assert [r[0] for r in rows] == [f"req-{n}" for n in range(250)]
    assert (REGISTRY.get_sample_value("rag_query_history_written_total") or 0.0) - written == 250


def test_history_not_started_writes_at_once(settings: Settings, pool: ConnectionPool) -> None:
    tenant = f"history-{uuid.uuid4().hex[:8]}"
    asyncio.run(QueryHistory(pool).record(record(tenant, 1)))
    assert history_rows(settings, tenant) == [("req-1", "query 1")]


def test_history_beyond_its_queue_is_dropped_and_counted(settings: Settings, pool: ConnectionPool) -> None:
    tenant = f"history-{uuid.uuid4().hex[:8]}"
    dropped = REGISTRY.get_sample_value("rag_query_history_dropped_total") or 0.0

    async def go() -> None:
        history = QueryHistory(pool, max_pending=10, flush_interval_s=0.05)
        await history.start()
        for n in range(25):  # record() never suspends: the writer cannot run in between
            await history.record(record(tenant, n))
        await history.close()

    asyncio.run(go())
    assert (REGISTRY.get_sample_value("rag_query_history_dropped_total") or 0.0) - dropped == 15
    assert len(history_rows(settings, tenant)) == 10


def test_a_listening_search_service_never_serves_results_cached_before_a_change(
    settings: Settings, pool: ConnectionPool, intake: Intake, pipeline: Pipeline, tmp_path: Path
) -> None:
    """End to end: results cached under the in-memory generation are not served once another
    process changed the tenant (here: ingestion through the pipeline's own pool)."""
    tenant = f"versions-{uuid.uuid4().hex[:8]}"
    first = intake.receive(
        b"Tea\n\nGreen tea contains catechins.", tenant=tenant, source_uri="file:///tea.txt"
    )
    pipeline.process(first.document.id)
    request = SearchRequest.validated(query="zinc lozenges and the common cold", top_k=1)

    async def go() -> tuple[SearchResult, SearchResult, SearchResult]:
        cache = TieredCache(redis_url=settings.REDIS_URL, disk_dir=tmp_path / "l3")
        versions = SearchVersions(pool, conninfo=settings.DATABASE_URL)
        await versions.start()
        try:
            async with TritonClient(TritonOptions(settings.TRITON_GRPC_URL)) as triton:
                service = RetrievalService(pool=pool, triton=triton, cache=cache, versions=versions)
                before = await service.search(Caller(tenant), request)
                cached = await service.search(Caller(tenant), request)
                zinc = intake.receive(
                    b"Zinc and colds\n\nZinc lozenges taken early may shorten the common cold.",
                    tenant=tenant,
                    source_uri="file:///zinc.txt",
                )
                await asyncio.to_thread(pipeline.process, zinc.document.id)
                deadline = time.monotonic() + 5
                while True:
                    after = await service.search(Caller(tenant), request)
                    if not after.cache_hit or time.monotonic() > deadline:
                        return before, cached, after
                    await asyncio.sleep(0.02)
        finally:
            await versions.close()
            await cache.close()

    before, cached, after = asyncio.run(go())
    assert not before.cache_hit and cached.cache_hit
    assert before.hits[0].document_title == "Tea"
    assert not after.cache_hit
    assert after.hits[0].document_title == "Zinc and colds"
