"""Three-level cache for query embeddings and search results (SPEC §2).

L1 is in-process (1,000 entries, 5 min), L2 is Redis (1 h), L3 is a disk cache (24 h). A hit in
a lower level is copied into the levels above it. Redis trouble makes the cache slower, never
the request broken: errors count as misses, and after one the cache skips Redis for a few
seconds instead of paying a timeout on every request. Each Redis call is bounded: one timeout
(``redis_timeout_s``), never retried (redis-py's default retries a timeout ten times), and a
lost connection (Redis restarted) is retried once, at once, on a new one, so a restart of Redis
costs no miss once it is back. Values are bytes (JSON or raw float32),
never pickles, since Redis is shared. Every key carries the global cache epoch,
so a restore, which renews the epoch, empties all three levels in every process at once
(the keys are made by :func:`rag.core.search.cache_key`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache
import redis.asyncio as aioredis
from cachetools import TTLCache
from prometheus_client import Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# The L3 (disk) query cache's folder under HF_CACHE_DIR: the API keeps it there, maintenance
# expires it, the model-cache cleanup ages it out.
QUERY_CACHE_SUBDIR = "query-cache"

CACHE_REQUESTS = Counter(
    "rag_cache_requests_total", "Cache lookups by level and result (hit, miss, error)", ["level", "result"]
)


@dataclass(frozen=True)
class CachePolicy:
    l1_entries: int = 1000
    l1_ttl_s: float = 300.0
    l2_ttl_s: int = 3600
    l3_ttl_s: int = 86400
    l3_size_bytes: int = 1 * 2**30
    redis_timeout_s: float = 0.25
    redis_backoff_s: float = 5.0


class TieredCache:
    def __init__(
        self, *, redis_url: str | None, disk_dir: Path | None, policy: CachePolicy | None = None
    ) -> None:
        self.policy = policy or CachePolicy()
        self._l1: TTLCache[str, bytes] = TTLCache(maxsize=self.policy.l1_entries, ttl=self.policy.l1_ttl_s)
        self._redis = (
            aioredis.Redis.from_url(
                redis_url,
                socket_timeout=self.policy.redis_timeout_s,
                socket_connect_timeout=self.policy.redis_timeout_s,
                retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            )
            if redis_url
            else None
        )
        self._redis_down_until = 0.0
        self._pending: set[asyncio.Task[None]] = set()
        self._disk = (
            diskcache.Cache(str(disk_dir), size_limit=self.policy.l3_size_bytes) if disk_dir else None
        )

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()
        if self._disk is not None:
            self._disk.close()

    def _redis_usable(self) -> bool:
        return self._redis is not None and time.monotonic() >= self._redis_down_until

    def _redis_failed(self, exc: Exception) -> None:
        if time.monotonic() >= self._redis_down_until:
            log.warning(
                "Redis cache unavailable, skipping it for %.0fs: %s", self.policy.redis_backoff_s, exc
            )
        self._redis_down_until = time.monotonic() + self.policy.redis_backoff_s
        CACHE_REQUESTS.labels("l2", "error").inc()

    async def get(self, key: str) -> tuple[bytes | None, str | None]:
        """(value, level that had it) or (None, None)."""
        return (await self._lookup([key]))[0]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """``get`` for several keys with one Redis round trip (MGET) for those L1 lacks."""
        return [value for value, _ in await self._lookup(keys)]

    async def _lookup(self, keys: Sequence[str]) -> list[tuple[bytes | None, str | None]]:
        """Each key from the highest level that has it; a hit below is copied up."""
        found: list[tuple[bytes | None, str | None]] = [(None, None)] * len(keys)
        for i, key in enumerate(keys):
            value = self._l1.get(key)
            CACHE_REQUESTS.labels("l1", "hit" if value is not None else "miss").inc()
            if value is not None:
                found[i] = (value, "l1")
        missing = [i for i, (value, _) in enumerate(found) if value is None]
        if missing and self._redis_usable():
            assert self._redis is not None
            try:
                answers = await self._redis.mget([keys[i] for i in missing])
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
            else:
                for i, answer in zip(missing, answers, strict=True):
                    CACHE_REQUESTS.labels("l2", "hit" if isinstance(answer, bytes) else "miss").inc()
                    if isinstance(answer, bytes):
                        self._l1[keys[i]] = answer
                        found[i] = (answer, "l2")
        if self._disk is not None:
            for i in [i for i in missing if found[i][0] is None]:
                disk_value = self._disk.get(keys[i])
                CACHE_REQUESTS.labels("l3", "hit" if isinstance(disk_value, bytes) else "miss").inc()
                if isinstance(disk_value, bytes):
                    self._l1[keys[i]] = disk_value
                    self._in_background(self._set_lower({keys[i]: disk_value}, disk=False))
                    found[i] = (disk_value, "l3")
        return found

    async def set(self, key: str, value: bytes) -> None:
        self._l1[key] = value
        await self._set_lower({key: value})

    def set_soon(self, key: str, value: bytes) -> None:
        """``set`` without waiting: L1 now, Redis and disk in the background (off the request
        path: ~0.6 ms of every cache miss here). ``close`` waits for what is still running."""
        self.set_many_soon({key: value})

    def set_many_soon(self, items: Mapping[str, bytes]) -> None:
        """``set_soon`` for several keys: one Redis round trip (a pipeline) for all of them."""
        if not items:
            return
        for key, value in items.items():
            self._l1[key] = value
        self._in_background(self._set_lower(dict(items)))

    def _in_background(self, write: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(write)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _set_lower(self, items: Mapping[str, bytes], *, disk: bool = True) -> None:
        if self._redis_usable():
            assert self._redis is not None
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, value in items.items():
                        pipe.set(key, value, ex=self.policy.l2_ttl_s)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        if disk and self._disk is not None:
            for key, value in items.items():
                self._disk.set(key, value, expire=self.policy.l3_ttl_s)

    async def clear(self, prefix: str = "rag:") -> int:
        """Drop entries whose key starts with ``prefix`` from every level; returns how many."""
        removed = 0
        for key in [k for k in self._l1 if k.startswith(prefix)]:
            self._l1.pop(key, None)
            removed += 1
        if self._redis_usable():
            assert self._redis is not None
            try:
                batch: list[bytes] = []
                async for key in self._redis.scan_iter(match=prefix + "*", count=500):
                    batch.append(key)
                    if len(batch) >= 500:
                        removed += int(await self._redis.delete(*batch))
                        batch = []
                if batch:
                    removed += int(await self._redis.delete(*batch))
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
        if self._disk is not None:
            for key in [k for k in self._disk.iterkeys() if isinstance(k, str) and k.startswith(prefix)]:
                removed += int(self._disk.delete(key))
        return removed

    def expire_disk(self) -> int:
        """Remove expired L3 entries (maintenance); returns how many."""
        return int(self._disk.expire()) if self._disk is not None else 0
