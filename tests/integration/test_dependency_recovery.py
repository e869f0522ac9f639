"""Every client of a dependency recovers by itself (issue 13, item 3), against the real stack.

Faults go only to what a test owns: the backends of its own pool or listener (selected by a
unique ``application_name``), or a :class:`TcpProxy` in front of Redis, the object store or
Triton that the test stops (connections reset, new ones refused, as after kill -9) and starts
again. While a dependency is down a call fails fast with Unavailable (or, for the cache, a
miss); once it is back, the next call of the same client object succeeds.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from rag.adapters.cache import CachePolicy, TieredCache
from rag.adapters.objectstore import ATTEMPTS, BlobStore
from rag.adapters.postgres.pool import (
    UNREACHABLE_WAIT_S,
    application_name,
    create_pool,
)
from rag.adapters.postgres.search_versions import SearchVersions
from rag.adapters.postgres.token_versions import TokenVersionMap
from rag.adapters.postgres.users import UserRepository
from rag.adapters.triton import TritonClient, TritonOptions
from rag.core.auth import Role
from rag.core.errors import Unavailable
from rag.settings import Settings
from tests.fixtures.proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

POOL_SIZE = 4


def terminate(settings: Settings, name: str) -> list[int]:
    """Terminate every backend whose application_name is ``name``; their pids, once gone."""
    pids = sorted(backends(settings, name))
    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    return pids


def backends(settings: Settings, name: str) -> set[int]:
    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
    return {int(pid) for (pid,) in rows}


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


def proxied(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}{netloc[1]}{proxy.address}"))


# -- PostgreSQL pools -------------------------------------------------------------------------


def test_a_pool_replaces_every_connection_the_server_terminated(settings: Settings) -> None:
    name = f"recovery-{uuid.uuid4().hex[:8]}"
    with create_pool(settings, min_size=POOL_SIZE, name=name) as pool:
        pool.wait(timeout=30)
        assert len(terminate(settings, application_name(name))) == POOL_SIZE
        for _ in range(POOL_SIZE):
            with pool.connection() as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        assert len(backends(settings, application_name(name))) >= 1


def test_a_pool_answers_unavailable_while_the_server_is_down_and_heals_once_it_is_back(
    settings: Settings,
) -> None:
    """The pool timeout stays at its default (30 s): a checkout while the server is down ends in
    Unavailable after about UNREACHABLE_WAIT_S, long before it."""
    parts = urlsplit(settings.DATABASE_URL)
    assert parts.hostname is not None and parts.port is not None
    with TcpProxy(parts.hostname, parts.port) as proxy:
        through = settings.model_copy(
            update={"DATABASE_URL": proxied(settings.DATABASE_URL, proxy), "DATABASE_POOL_TIMEOUT": 30.0}
        )
        with create_pool(through, min_size=POOL_SIZE, name=f"recovery-{uuid.uuid4().hex[:8]}") as pool:
            pool.wait(timeout=30)
            proxy.stop()  # killed: every connection reset, new ones refused
            for _ in range(3):  # the first checkout meets a dead connection, the next ones none
                started = time.monotonic()
                with pytest.raises(Unavailable), pool.connection() as conn:
                    conn.execute("SELECT 1")
                assert time.monotonic() - started < through.DATABASE_POOL_TIMEOUT / 3
            proxy.start()  # back: the next checkout connects and goes through
            for _ in range(POOL_SIZE):
                with pool.connection() as conn:
                    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_busy_pool_with_the_server_up_still_waits_its_whole_timeout(settings: Settings) -> None:
    """Only a server known to be down shortens the wait: a checkout queued behind a connection
    that is lent for longer than UNREACHABLE_WAIT_S gets it when it comes back."""
    one = settings.model_copy(
        update={"DATABASE_POOL_SIZE": 1, "DATABASE_POOL_MAX_OVERFLOW": 0, "DATABASE_POOL_TIMEOUT": 30.0}
    )
    with create_pool(one, min_size=1, name=f"recovery-{uuid.uuid4().hex[:8]}") as pool:
        pool.wait(timeout=30)
        lent = pool.getconn()
        timer = threading.Timer(UNREACHABLE_WAIT_S * 2, pool.putconn, args=(lent,))
        timer.start()
        try:
            with pool.connection() as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            timer.join()


# -- LISTEN connections -----------------------------------------------------------------------


def test_the_search_version_listener_comes_back_and_nothing_is_missed_meanwhile(settings: Settings) -> None:
    tenant = f"recovery-{uuid.uuid4().hex[:8]}"
    listener = f"recovery-listener-{uuid.uuid4().hex[:8]}"

    def bump() -> None:
        with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO tenant_generations (tenant) VALUES (%s) ON CONFLICT (tenant)"
                " DO UPDATE SET generation = tenant_generations.generation + 1",
                (tenant,),
            )

    async def go() -> None:
        with create_pool(settings, min_size=1, name=f"{listener}-reads", autocommit=True) as pool:
            versions = SearchVersions(
                pool, conninfo=settings.DATABASE_URL, reconnect_s=0.2, application_name=listener
            )
            await versions.start()
            try:
                bump()
                first = (await versions.current(tenant))[1]
                (old,) = await asyncio.to_thread(terminate, settings, listener)
                await asyncio.to_thread(bump)

                async def seen() -> bool:  # through the database while deaf, or the new listener
                    return (await versions.current(tenant))[1] == first + 1

                assert await eventually(seen)

                async def listening_again() -> bool:
                    found = await asyncio.to_thread(backends, settings, listener)
                    return versions.listening and bool(found - {old})

                assert await eventually(listening_again)
                await asyncio.to_thread(bump)

                async def notified() -> bool:
                    return (await versions.current(tenant))[1] == first + 2

                assert await eventually(notified)
            finally:
                await versions.close()

    asyncio.run(go())


def test_the_token_version_listener_comes_back_and_no_revocation_is_missed(settings: Settings) -> None:
    username = f"recovery-{uuid.uuid4().hex[:8]}"
    listener = f"recovery-listener-{uuid.uuid4().hex[:8]}"

    async def go() -> None:
        pool = await asyncio.to_thread(create_pool, settings, min_size=1, name=f"{listener}-reads")
        users = UserRepository(pool)
        versions = TokenVersionMap(
            users, conninfo=settings.DATABASE_URL, reconnect_s=0.2, application_name=listener
        )
        try:
            await users.add(username, "not-a-hash", Role.USER, "recovery")
            await versions.start()
            assert versions.listening and await versions.current(username) == 0
            (old,) = await asyncio.to_thread(terminate, settings, listener)
            raised = await users.revoke_tokens(username)

            async def seen() -> bool:
                return await versions.current(username) == raised

            assert await eventually(seen)

            async def listening_again() -> bool:
                found = await asyncio.to_thread(backends, settings, listener)
                return versions.listening and bool(found - {old})

            assert await eventually(listening_again)
            raised = await users.revoke_tokens(username)
            assert await eventually(seen)
        finally:
            await versions.close()
            with pool.connection() as conn:
                conn.execute("DELETE FROM users WHERE username = %s", (username,))
            pool.close()

    asyncio.run(go())


# -- Triton -----------------------------------------------------------------------------------


def test_the_triton_client_fails_fast_while_triton_is_down_and_recovers_after(settings: Settings) -> None:
    host, _, port = settings.TRITON_GRPC_URL.rpartition(":")

    async def go() -> None:
        with TcpProxy(host, int(port)) as proxy:
            client = TritonClient(TritonOptions(proxy.address, timeout_s=30.0))
            try:
                assert (await client.embed(["before"])).shape[0] == 1
                proxy.stop()
                with pytest.raises(Unavailable, match="Triton is unreachable"):
                    async with asyncio.timeout(15):  # a hang guard: the retry window is 2 s
                        await client.embed(["while down"])
                # Long enough for gRPC's default reconnect backoff (x1.6 from 1 s) to pass 4 s.
                await asyncio.sleep(9)
                proxy.start()
                assert (await client.embed(["after"])).shape[0] == 1
            finally:
                await client.close()

    asyncio.run(go())


# -- Redis ------------------------------------------------------------------------------------


def test_the_redis_cache_survives_a_restart_and_misses_fast_while_redis_is_down(settings: Settings) -> None:
    parts = urlsplit(settings.REDIS_URL)
    host, port = parts.hostname or "", parts.port or 6379

    async def go() -> None:
        with TcpProxy(host, port) as proxy:
            # No pause after an error: every lookup goes to Redis, so the test sees each one.
            cache = TieredCache(
                redis_url=proxied(settings.REDIS_URL, proxy),
                disk_dir=None,
                policy=CachePolicy(redis_backoff_s=0),
            )
            key, value = f"rag:recovery:{uuid.uuid4().hex}", b"cached"
            try:
                await cache.set(key, value)
                cache._l1.clear()
                assert await cache.get(key) == (value, "l2")
                cache._l1.clear()
                proxy.stop()  # restarted: the pooled connection is dead, the next lookup hits
                proxy.start()
                assert await cache.get(key) == (value, "l2")
                cache._l1.clear()
                proxy.blackhole()  # hung: one bounded timeout, then a miss
                async with asyncio.timeout(2):  # a hang guard: redis_timeout_s is 0.25 s
                    assert await cache.get(key) == (None, None)
                proxy.stop()  # down: a miss at once
                assert await cache.get(key) == (None, None)
                proxy.start()  # back
                cache._l1.clear()
                assert await cache.get(key) == (value, "l2")
            finally:
                await cache.close()

    asyncio.run(go())


# -- object storage ---------------------------------------------------------------------------


def test_the_object_store_survives_a_restart_and_gives_up_after_bounded_attempts(settings: Settings) -> None:
    parts = urlsplit(settings.S3_ENDPOINT_URL)
    assert parts.hostname is not None and parts.port is not None
    with TcpProxy(parts.hostname, parts.port) as proxy:
        proxied_settings = settings.model_copy(update={"S3_ENDPOINT_URL": f"http://{proxy.address}"})
        store = BlobStore(proxied_settings, read_timeout=0.5)
        bucket, key = settings.S3_BUCKET_DOCUMENTS, f"recovery/{uuid.uuid4().hex}"
        store.put(bucket, key, b"stored")
        try:
            assert store.get(bucket, key) == b"stored"
            proxy.stop()  # restarted: the pooled connection is dead
            proxy.start()
            assert store.get(bucket, key) == b"stored"
            proxy.stop()  # down
            with pytest.raises(Unavailable, match="object storage is unreachable"):
                store.get(bucket, key)
            proxy.blackhole()  # hung: each attempt ends at the read timeout, and they are bounded
            before = proxy.accepted
            with pytest.raises(Unavailable, match="Read timeout"):
                store.get(bucket, key)
            assert proxy.accepted - before == ATTEMPTS
            proxy.start()  # back
            assert store.get(bucket, key) == b"stored"
        finally:
            BlobStore(settings).delete(bucket, key)
