"""Connection pools built once per process from the settings (SPEC: 20 + 30 overflow, 30 s, 3600 s).

Their ``connection()`` translates driver errors (:mod:`rag.adapters.postgres.errors`): every
repository borrows its connections here, so none sees a psycopg error it did not expect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from pgvector.psycopg import register_vector, register_vector_async
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from rag.adapters.postgres.errors import database_errors
from rag.core.errors import Unavailable
from rag.settings import Settings


class TranslatingPool(ConnectionPool):
    """A :class:`ConnectionPool` whose connections raise :mod:`rag.core.errors`."""

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        with database_errors(), super().connection(timeout) as conn:
            yield conn


class TranslatingAsyncPool(AsyncConnectionPool):
    """An :class:`AsyncConnectionPool` whose connections raise :mod:`rag.core.errors`."""

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        with database_errors():
            async with super().connection(timeout) as conn:
                yield conn


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
    return TranslatingPool(
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
    """The gRPC services' pool; :class:`Unavailable` when PostgreSQL does not answer in time."""
    pool = TranslatingAsyncPool(
        settings.DATABASE_URL,
        min_size=min_size,
        configure=_configure_async,
        name=name,
        open=False,
        **_sizing(settings),
    )
    try:
        await pool.open(wait=True, timeout=settings.DATABASE_POOL_TIMEOUT)
    except PoolTimeout:
        await pool.close()
        raise Unavailable(
            f"PostgreSQL did not answer within {settings.DATABASE_POOL_TIMEOUT:g} s (DATABASE_URL)"
        ) from None
    return pool
