"""The database connection of a command: one small pool, opened at once or failing with one line."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from rag.settings import Settings


def command_pool(settings: Settings, name: str) -> ConnectionPool[Any]:
    """A one-connection pool named ``name`` (``application_name`` in PostgreSQL); close it, or
    use it as a context manager. :class:`~rag.core.errors.Unavailable` when PostgreSQL is not up."""
    from rag.adapters.postgres.pool import create_pool

    return create_pool(settings, min_size=1, name=name, wait=True)
