"""Embedding index versions: which embedder version the chunks being searched were made with."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import ConnectionPool


@dataclass(frozen=True)
class IndexVersion:
    model_version: str
    dimension: int
    status: str


class IndexRegistry:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def active(self) -> IndexVersion | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT model_version, dimension, status FROM embedding_indexes WHERE status = 'active'"
            ).fetchone()
        return IndexVersion(*row) if row else None

    def ensure_active(self, model_version: str, dimension: int) -> IndexVersion:
        """The active version; on a fresh database, make ``model_version`` the first one."""
        with self.pool.connection() as conn:
            conn.execute(
                """
                INSERT INTO embedding_indexes (model_version, dimension, status, activated_at)
                SELECT %s, %s, 'active', now()
                WHERE NOT EXISTS (SELECT 1 FROM embedding_indexes WHERE status = 'active')
                ON CONFLICT DO NOTHING
                """,
                (model_version, dimension),
            )
        active = self.active()
        assert active is not None
        return active
