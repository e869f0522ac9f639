"""What a cached search result depends on: the active embedding model version, the tenant's
document generation and the global cache epoch (migration 0009, renewed by every restore), kept
in memory while PostgreSQL tells us about every change.

Reading them takes a database round trip, which was half of a cached search's time. Migration
0004 makes PostgreSQL send ``tenant:<name>``, ``index`` or ``all`` on ``rag_search_changes``
whenever they change; one LISTEN connection per process hears them. A value is kept only while
that connection is up and was read after it started listening (an epoch counter drops a read
that raced with a notification). When the connection drops (database restart, restore swap)
everything kept is forgotten and every lookup reads the database until it listens again (the
listener reconnects with capped backoff, :mod:`.listening`), so a lost connection costs speed,
never correctness. ``max_age_s`` bounds how long any value lives
even so. Without a connection string nothing is kept: every lookup reads the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Unpack

import psycopg
from prometheus_client import Counter
from psycopg_pool import ConnectionPool

from rag.adapters.postgres.listening import Listener, ListenOptions

log = logging.getLogger(__name__)

CHANNEL = "rag_search_changes"

LOOKUPS = Counter(
    "rag_search_version_lookups_total",
    "Index version / tenant generation lookups by source (memory, database)",
    ["source"],
)


class SearchVersions(Listener):
    task_name = "search-versions-listener"
    channel = CHANNEL
    changes = "search changes"
    default_application_name = "rag-search-versions"

    def __init__(
        self, pool: ConnectionPool, *, max_age_s: float = 60.0, **listen: Unpack[ListenOptions]
    ) -> None:
        super().__init__(**listen)
        self._pool = pool
        self._max_age_s = max_age_s
        self._epoch = 0
        # (active model version, cache epoch, read at)
        self._index: tuple[str | None, str, float] | None = None
        self._tenants: dict[str, tuple[int, float]] = {}  # tenant -> (generation, read at)

    def _stopped(self) -> None:
        self._forget(listening=False)

    async def current(self, tenant: str) -> tuple[str | None, int, str]:
        """(active embedding model version or None, the tenant's generation, 0 if it has none,
        the cache epoch)."""
        now = time.monotonic()
        index, generation = self._index, self._tenants.get(tenant)
        if (
            self._listening
            and index is not None
            and generation is not None
            and now - index[2] < self._max_age_s
            and now - generation[1] < self._max_age_s
        ):
            LOOKUPS.labels("memory").inc()
            return index[0], generation[0], index[1]
        LOOKUPS.labels("database").inc()
        epoch = self._epoch
        version, gen, cache = await asyncio.to_thread(self._read, tenant)
        if self._listening and epoch == self._epoch:
            self._index = (version, cache, now)
            self._tenants[tenant] = (gen, now)
        return version, gen, cache

    def invalidate(self, tenant: str | None = None) -> None:
        """Forget a tenant's generation (or everything): this process changed it."""
        self._epoch += 1
        if tenant is None:
            self._index = None
            self._tenants.clear()
        else:
            self._tenants.pop(tenant, None)

    def _read(self, tenant: str) -> tuple[str | None, int, str]:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT (SELECT model_version FROM embedding_indexes WHERE status = 'active'),"
                " (SELECT generation FROM tenant_generations WHERE tenant = %s),"
                " (SELECT epoch FROM cache_epoch)",
                (tenant,),
            ).fetchone()
        assert row is not None
        return (None if row[0] is None else str(row[0])), int(row[1] or 0), str(row[2] or "")

    def _forget(self, *, listening: bool) -> None:
        self._listening = listening
        self.invalidate()

    def _notified(self, payload: str) -> None:
        if payload.startswith("tenant:"):
            self.invalidate(payload.removeprefix("tenant:"))
        else:  # "index", "all", or anything a later migration adds
            self.invalidate()

    async def _follow(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._forget(listening=True)
        self._trusted()
        async for notify in conn.notifies():
            self._notified(notify.payload)
