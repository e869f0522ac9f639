"""PostgreSQL records of model deployments (``model_deployments``) and of embedding index
versions made stale by a new embedder (``embedding_indexes``).

A deployment moves ``deploying -> serving -> retired``, or ``deploying -> failed`` with an
error reason; at most one row per Triton model is ``serving`` (a partial unique index).
Promotions of one model are serialized across processes by a PostgreSQL advisory lock, so a
CLI promotion and a webhook-triggered one never interleave.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from rag.core.errors import Overloaded, Unavailable


@dataclass(frozen=True)
class Deployment:
    id: int
    model_name: str
    kind: str
    registered_model: str
    mlflow_version: str
    triton_version: int | None
    status: str
    error_reason: str | None
    details: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> Deployment:
        """From a ``SELECT *`` row (columns added by later migrations are ignored)."""
        return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls)})


@contextlib.contextmanager
def _database(what: str) -> Iterator[None]:
    """Say what was being done when the pool found PostgreSQL unreachable (the CLIs print it)."""
    try:
        yield
    except Unavailable as exc:
        raise Unavailable(f"PostgreSQL is unreachable while {what} ({exc}); is DATABASE_URL right?") from exc


class DeploymentRecords:
    """The ``model_deployments`` and ``embedding_indexes`` tables."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    @contextlib.contextmanager
    def exclusive(self, model_name: str, timeout_s: float = 900.0) -> Iterator[None]:
        """Hold the promotion lock of ``model_name`` (waits up to ``timeout_s``)."""
        key = f"rag-promote:{model_name}"
        with _database(f"locking {model_name} for a promotion"), self.pool.connection() as conn:
            conn.autocommit = True
            deadline = time.monotonic() + timeout_s
            # Polling pg_try_advisory_lock, not pg_advisory_lock: the pool's statement_timeout
            # would cancel a long wait, and a poll lets us name the holder's model in the error.
            while not conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()[0]:  # type: ignore[index]
                if time.monotonic() > deadline:
                    raise Overloaded(
                        f"another promotion of {model_name} has been running for over {timeout_s:.0f}s; "
                        "retry when it has finished"
                    )
                time.sleep(0.5)
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))

    def serving(self, model_name: str) -> Deployment | None:
        return self._one(
            "SELECT * FROM model_deployments WHERE model_name = %s AND status = 'serving'",
            (model_name,),
        )

    def previous(self, model_name: str, *, other_than: str) -> Deployment | None:
        """The most recently retired deployment of ``model_name`` with another MLflow version."""
        return self._one(
            """SELECT * FROM model_deployments
                WHERE model_name = %s AND status = 'retired' AND mlflow_version <> %s
                ORDER BY updated_at DESC, id DESC LIMIT 1""",
            (model_name, other_than),
        )

    def history(self, model_name: str, limit: int = 20) -> list[Deployment]:
        with _database("reading model deployments"), self.pool.connection() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM model_deployments WHERE model_name = %s ORDER BY id DESC LIMIT %s",
                (model_name, limit),
            )
            return [Deployment.of_row(row) for row in rows]

    def start(
        self,
        *,
        model_name: str,
        kind: str,
        registered_model: str,
        mlflow_version: str,
        triton_version: int,
        details: Mapping[str, Any],
    ) -> Deployment:
        row = self._one(
            """INSERT INTO model_deployments
                    (model_name, kind, registered_model, mlflow_version, triton_version, status, details)
                VALUES (%s, %s, %s, %s, %s, 'deploying', %s)
                RETURNING *""",
            (model_name, kind, registered_model, mlflow_version, triton_version, Jsonb(dict(details))),
        )
        assert row is not None
        return row

    def mark_serving(self, deployment: Deployment) -> Deployment:
        """Retire what served ``deployment.model_name`` and make ``deployment`` serve, at once."""
        with _database("recording a deployment"), self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "UPDATE model_deployments SET status = 'retired' "
                "WHERE model_name = %s AND status = 'serving'",
                (deployment.model_name,),
            )
            row = (
                conn.cursor(row_factory=dict_row)
                .execute(
                    "UPDATE model_deployments SET status = 'serving', error_reason = NULL "
                    "WHERE id = %s RETURNING *",
                    (deployment.id,),
                )
                .fetchone()
            )
        assert row is not None
        return Deployment.of_row(row)

    def move(self, deployment: Deployment, triton_version: int, note: str) -> None:
        """Record that ``deployment`` now serves as ``triton_version`` (and why)."""
        with _database("recording a deployment"), self.pool.connection() as conn:
            conn.execute(
                "UPDATE model_deployments SET triton_version = %s, details = details || %s WHERE id = %s",
                (triton_version, Jsonb({"moved": note}), deployment.id),
            )

    def mark_failed(self, deployment: Deployment, reason: str) -> None:
        with _database("recording a failed deployment"), self.pool.connection() as conn:
            conn.execute(
                "UPDATE model_deployments SET status = 'failed', error_reason = %s WHERE id = %s",
                (reason, deployment.id),
            )

    def mark_index_building(self, model_version: str, dimension: int) -> str:
        """Record that chunks must be re-embedded with ``model_version``; return its status.

        A new version gets a ``building`` row (the shadow index the re-embedding DAG fills);
        a retired or failed one is set back to ``building``; the active row (the index that
        serves queries) and a row already building are left as they are.
        """
        with _database("recording a stale embedding index"), self.pool.connection() as conn:
            row = conn.execute(
                """INSERT INTO embedding_indexes (model_version, dimension, status)
                   VALUES (%s, %s, 'building')
                   ON CONFLICT (model_version) DO UPDATE
                       SET status = 'building', reason = NULL, dimension = EXCLUDED.dimension
                       WHERE embedding_indexes.status IN ('retired', 'failed')
                   RETURNING status""",
                (model_version, dimension),
            ).fetchone()
            if row is None:  # the conflict row was left alone
                row = conn.execute(
                    "SELECT status FROM embedding_indexes WHERE model_version = %s", (model_version,)
                ).fetchone()
        assert row is not None
        return str(row[0])

    def _one(self, query: str, params: tuple[Any, ...]) -> Deployment | None:
        with _database("reading model deployments"), self.pool.connection() as conn:
            row = conn.cursor(row_factory=dict_row).execute(query, params).fetchone()
        return Deployment.of_row(row) if row else None
