"""Connection pools built once per process from the settings (SPEC: 20 + 30 overflow, 30 s, 3600 s)."""

from __future__ import annotations

from typing import Any

import psycopg
from pgvector.psycopg import register_vector, register_vector_async
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from rag.settings import Settings


def _kwargs(settings: Settings) -> dict[str, object]:
    return {
        "connect_timeout": 10,
        "options": f"-c statement_timeout={settings.DATABASE_STATEMENT_TIMEOUT_MS}",
        "application_name": "rag-system",
    }


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)


async def _configure_async(conn: psycopg.AsyncConnection) -> None:
    await register_vector_async(conn)


def _sizing(settings: Settings, *, autocommit: bool = False) -> dict[str, Any]:
    """What both pools share: ``max_size`` = pool size + overflow, timeout, recycling."""
    return {
        "max_size": settings.DATABASE_POOL_SIZE + settings.DATABASE_POOL_MAX_OVERFLOW,
        "timeout": settings.DATABASE_POOL_TIMEOUT,
        "max_lifetime": settings.DATABASE_POOL_RECYCLE,
        "kwargs": {**_kwargs(settings), "autocommit": autocommit},
    }


def create_pool(
    settings: Settings, *, min_size: int = 1, name: str = "rag", autocommit: bool = False
) -> ConnectionPool:
    """A blocking pool (Airflow tasks, CLIs, the services' blocking repositories).

    ``autocommit`` pools suit read paths of single statements (search): no BEGIN and COMMIT
    round trips around each query; a block that needs atomicity opens ``conn.transaction()``.
    """
    return ConnectionPool(
        settings.DATABASE_URL,
        min_size=min_size,
        configure=_configure,
        name=name,
        open=True,
        **_sizing(settings, autocommit=autocommit),
    )


async def create_async_pool(
    settings: Settings, *, min_size: int = 2, name: str = "rag-async"
) -> AsyncConnectionPool:
    """The gRPC services' pool."""
    pool = AsyncConnectionPool(
        settings.DATABASE_URL,
        min_size=min_size,
        configure=_configure_async,
        name=name,
        open=False,
        **_sizing(settings),
    )
    await pool.open(wait=True, timeout=settings.DATABASE_POOL_TIMEOUT)
    return pool
