"""Readiness of PostgreSQL for the services' health checks."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from rag.core.errors import RagError

log = logging.getLogger(__name__)


async def database_ready(pool: AsyncConnectionPool[Any], timeout_s: float = 2.0) -> bool:
    """True when a pooled connection answers a query within ``timeout_s``."""
    try:
        async with pool.connection(timeout=timeout_s) as conn:
            await conn.execute("SELECT 1")
    except (RagError, psycopg.Error) as exc:  # translated by the pool, or a pool of another kind
        log.info("database not ready: %s", exc)
        return False
    return True
