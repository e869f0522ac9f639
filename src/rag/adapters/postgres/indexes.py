"""Embedding index versions: which embedder version the chunks being searched were made with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
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

    def get(self, model_version: str) -> IndexVersion | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT model_version, dimension, status FROM embedding_indexes WHERE model_version = %s",
                (model_version,),
            ).fetchone()
        return IndexVersion(*row) if row else None

    def newest_building(self) -> IndexVersion | None:
        """The most recently recorded version waiting for its re-embedding (a promotion's)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT model_version, dimension, status FROM embedding_indexes WHERE status = 'building'"
                " ORDER BY created_at DESC LIMIT 1"
            ).fetchone()
        return IndexVersion(*row) if row else None

    def start_building(self, model_version: str, dimension: int) -> IndexVersion:
        """Record ``model_version`` as the shadow index being built (a failed or retired one
        starts over); the active version is returned unchanged."""
        with self.pool.connection() as conn:
            conn.execute(
                """
                INSERT INTO embedding_indexes (model_version, dimension, status)
                VALUES (%s, %s, 'building')
                ON CONFLICT (model_version) DO UPDATE
                    SET status = 'building', reason = NULL, quality = '{}'::jsonb
                    WHERE embedding_indexes.status IN ('failed', 'retired')
                """,
                (model_version, dimension),
            )
        version = self.get(model_version)
        assert version is not None
        return version

    def mark_failed(self, model_version: str, reason: str, quality: dict[str, Any] | None = None) -> None:
        """A shadow index that will not serve, and why (the active version is never failed)."""
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE embedding_indexes SET status = 'failed', reason = %s, quality = quality || %s"
                " WHERE model_version = %s AND status = 'building'",
                (reason[:2000], Jsonb(quality or {}), model_version),
            )
