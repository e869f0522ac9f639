"""The three cache levels on the session stack's real Redis and a disk cache per test."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from rag.adapters.cache import TieredCache
from rag.core.search import cache_key
from rag.settings import Settings

pytestmark = pytest.mark.integration

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def errors() -> float:
    return REGISTRY.get_sample_value("rag_cache_requests_total", {"level": "l2", "result": "error"}) or 0.0


def test_a_value_is_found_below_and_copied_up(settings: Settings, tmp_path: Path) -> None:
    key, value = cache_key("test", [uuid.uuid4().hex], epoch="e"), uuid.uuid4().bytes

    async def go() -> list[str | None]:
        levels = []
        writer = TieredCache(redis_url=settings.REDIS_URL, disk_dir=tmp_path / "a")
        await writer.set(key, value)
        assert await writer.get(key) == (value, "l1")
        await writer.close()
        # Another process (no L1 of its own) finds it in Redis, then in its own L1.
        reader = TieredCache(redis_url=settings.REDIS_URL, disk_dir=tmp_path / "b")
        for _ in range(2):
            found, level = await reader.get(key)
            assert found == value
            levels.append(level)
        await reader.close()
        # Redis gone: the disk of the first process still has it.
        offline = TieredCache(redis_url=UNREACHABLE_REDIS, disk_dir=tmp_path / "a")
        found, level = await offline.get(key)
        assert found == value
        levels.append(level)
        await offline.close()
        return levels

    assert asyncio.run(go()) == ["l2", "l1", "l3"]


def test_set_soon_answers_from_memory_at_once_and_reaches_redis_and_disk(
    settings: Settings, tmp_path: Path
) -> None:
    key, value = cache_key("test", [uuid.uuid4().hex], epoch="e"), uuid.uuid4().bytes

    async def go() -> None:
        cache = TieredCache(redis_url=settings.REDIS_URL, disk_dir=tmp_path / "a")
        cache.set_soon(key, value)
        assert await cache.get(key) == (value, "l1")
        await cache.close()  # waits for the background writes
        elsewhere = TieredCache(redis_url=settings.REDIS_URL, disk_dir=None)
        assert await elsewhere.get(key) == (value, "l2")
        await elsewhere.close()
        disk_only = TieredCache(redis_url=None, disk_dir=tmp_path / "a")
        assert await disk_only.get(key) == (value, "l3")
        await disk_only.close()

    asyncio.run(go())


def test_an_unreachable_redis_is_a_miss_and_is_skipped_for_a_while(tmp_path: Path) -> None:
    before = errors()

    async def go() -> tuple[bytes | None, str | None]:
        cache = TieredCache(redis_url=UNREACHABLE_REDIS, disk_dir=tmp_path / "a")
        try:
            for n in range(5):
                assert await cache.get(cache_key("test", [n], epoch="e")) == (None, None)
            await cache.set("rag:test:kept", b"v")
            return await TieredCache(redis_url=None, disk_dir=tmp_path / "a").get("rag:test:kept")
        finally:
            await cache.close()

    assert asyncio.run(go()) == (b"v", "l3")
    assert errors() - before == 1  # the first lookup failed; the breaker skipped Redis after


def test_clear_drops_a_prefix_from_every_level(settings: Settings, tmp_path: Path) -> None:
    prefix = f"rag:test-{uuid.uuid4().hex[:8]}:"

    async def go() -> tuple[int, list[tuple[bytes | None, str | None]], tuple[bytes | None, str | None]]:
        cache = TieredCache(redis_url=settings.REDIS_URL, disk_dir=tmp_path / "a")
        for n in range(3):
            await cache.set(f"{prefix}{n}", b"x")
        await cache.set("rag:test:other", b"y")
        removed = await cache.clear(prefix)
        gone = [await cache.get(f"{prefix}{n}") for n in range(3)]
        other = await cache.get("rag:test:other")
        await cache.close()
        return removed, gone, other

    removed, gone, other = asyncio.run(go())
    assert removed == 9  # three keys in each of three levels
    assert gone == [(None, None)] * 3
    assert other == (b"y", "l1")


def test_get_many_reads_each_level_once_and_keeps_the_order(settings: Settings, tmp_path: Path) -> None:
    keys = [cache_key("test", [uuid.uuid4().hex], epoch="e") for _ in range(4)]

    async def go() -> tuple[list[bytes | None], list[str | None]]:
        writer = TieredCache(redis_url=settings.REDIS_URL, disk_dir=tmp_path / "a")
        writer.set_many_soon({keys[0]: b"zero", keys[2]: b"two"})  # one pipeline
        await writer.close()
        # keys[3] only on this process's disk; keys[1] nowhere.
        reader = TieredCache(redis_url=settings.REDIS_URL, disk_dir=tmp_path / "b")
        await TieredCache(redis_url=None, disk_dir=tmp_path / "b").set(keys[3], b"three")
        first = await reader.get_many(keys)
        second = [(await reader.get(k))[1] for k in keys]  # where each is now
        await reader.close()
        return first, second

    first, levels = asyncio.run(go())
    assert first == [b"zero", None, b"two", b"three"]
    assert levels == ["l1", None, "l1", "l1"]  # found values were copied up into L1
