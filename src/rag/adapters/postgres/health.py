"""Readiness of PostgreSQL for the services' health checks, and what the operators' check reports."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from rag.core.errors import RagError

log = logging.getLogger(__name__)


async def database_ready(pool: ConnectionPool[Any], timeout_s: float = 2.0) -> bool:
    """True when a pooled connection answers a query within ``timeout_s`` (the checkout's wait;
    the query runs in a worker thread)."""

    def ping() -> None:
        with pool.connection(timeout=timeout_s) as conn:
            conn.execute("SELECT 1")

    try:
        await asyncio.to_thread(ping)
    except (RagError, psycopg.Error) as exc:  # translated by the pool, or a pool of another kind
        log.info("database not ready: %s", exc)
        return False
    return True


@dataclass(frozen=True)
class ServerVersions:
    server: str
    vector: str | None  # None: the extension is not installed
    schema_revision: str | None  # Alembic's revision; None: never migrated


def server_versions(database_url: str, timeout_s: float = 5.0) -> ServerVersions:
    """PostgreSQL's version, pgvector's and the schema's migration, over a fresh connection."""
    with psycopg.connect(database_url, connect_timeout=max(1, int(timeout_s))) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'),"
            " (SELECT extversion FROM pg_extension WHERE extname = 'vector'),"
            " (SELECT version_num FROM alembic_version LIMIT 1)"
        ).fetchone()
    assert row is not None
    return ServerVersions(str(row[0]), row[1], row[2])
